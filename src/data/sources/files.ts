/**
 * File helpers shared by the data sources: reading a file that may be gzip-compressed (detected
 * by its magic bytes, not its name) and finding the first existing file among candidate names.
 */
import { promisify } from 'node:util';
import { gunzip as gunzipCallback } from 'node:zlib';
import { stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { DataError } from '../../errors.js';
import { FileRefusedError, READ_LIMITS, readRegularFile } from '../../util/read-regular-file.js';

const gunzip = promisify(gunzipCallback);

/** True when the bytes start with the gzip magic 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

function reason(error: unknown): string {
  if (error instanceof Error) return (error as NodeJS.ErrnoException).code ?? error.message;
  return String(error);
}

/** Reads a whole file, gunzipping it when it starts with the gzip magic bytes. */
export async function readMaybeGzip(file: string): Promise<{ bytes: Uint8Array; gzipped: boolean }> {
  let raw: Buffer;
  try {
    raw = await readRegularFile(file, { what: 'a data file', maxBytes: READ_LIMITS.data });
  } catch (error) {
    const code = ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    const why = error instanceof FileRefusedError && code === undefined ? error.reason : `cannot read the file (${code ?? reason(error)})`;
    throw new DataError(`${file}: ${why}`, { cause: error });
  }
  if (!isGzip(raw)) return { bytes: new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength), gzipped: false };
  try {
    // Bounded like the files themselves: a small gzip file can unpack to any size.
    const out = await gunzip(raw, { maxOutputLength: READ_LIMITS.data });
    return { bytes: new Uint8Array(out.buffer, out.byteOffset, out.byteLength), gzipped: true };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') throw new DataError(`${file}: unpacks to more than the 4 GiB ringtrain reads of a data file`, { cause: error });
    throw new DataError(`${file}: starts with the gzip magic bytes but is not a valid gzip file (${reason(error)})`, {
      cause: error,
    });
  }
}

/** True when `file` exists and is a regular file. */
export async function isFile(file: string): Promise<boolean> {
  try {
    return (await stat(file)).isFile();
  } catch {
    return false;
  }
}

/** The first of `names` that is a file in `dir`, or undefined. */
export async function findFirst(dir: string, names: readonly string[]): Promise<string | undefined> {
  for (const name of names) {
    const file = join(dir, name);
    if (await isFile(file)) return file;
  }
  return undefined;
}

/** Decimal byte count for messages, e.g. "9.9 MB". */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}

/** `~` or `~/…` → the home folder; then absolute. */
export function expandPath(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return join(homedir(), path.slice(2));
  return resolve(path);
}
