/** The data sources that read the user's own files, by `data.source` name: one line each. */
import type { FileSource } from './file-source.js';
import { csvSource } from './sources/csv.js';
import { imageFolderSource } from './sources/image-folder.js';

export const FILE_SOURCES = {
  csv: csvSource,
  'image-folder': imageFolderSource,
} as const;

export type FileSourceName = keyof typeof FILE_SOURCES;

export function isFileSource(name: string): name is FileSourceName {
  return Object.hasOwn(FILE_SOURCES, name);
}

/** The file source of a config, typed loosely (each module checks its own config). */
export function fileSource(name: FileSourceName): FileSource<{ source: string }> {
  return FILE_SOURCES[name] as unknown as FileSource<{ source: string }>;
}
