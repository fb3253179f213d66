/**
 * A data source that reads the user's own files (CSV, image folders). Each is one module in
 * sources/ that owns its config schema and is registered in file-sources.ts with one line.
 */
import type { z } from 'zod';
import type { DataInfo } from './data-info.js';
import type { SharedDataset } from './dataset.js';
import type { LoadDataOptions, LoadedData } from './load-data.js';

/** Samples to predict on, read as the run's training data was. */
export interface PredictInputs {
  /** One name per sample: "row 3" of a CSV, an image's path. */
  names: string[];
  /** Features as the model takes them (scaled), samples one after another. */
  features: Float32Array;
}

export interface FileSource<C extends { source: string }> {
  /** The `data` section of a run config for this source (with `source` a literal). */
  readonly schema: z.ZodType<C>;
  /** The field --data-dir replaces (the train data's file or folder). */
  readonly dataDirField: keyof C & string;
  /** The fields that schema knows (for suggestions on a misspelt field). */
  readonly fields: readonly string[];
  /** The train set (and the test set when the config names one), with what the checkpoint keeps of them. */
  load(config: C, options: LoadDataOptions): Promise<LoadedData & { info: DataInfo }>;
  /** Reads `path` (a file or folder of this source's kind) the way `info` says the training data was read. */
  readInputs(path: string, config: C, info: DataInfo): Promise<PredictInputs>;
  /** Labelled data at `path` (or the config's test data when path is undefined; none: undefined), read as `info` says. */
  readLabelled(path: string | undefined, config: C, info: DataInfo): Promise<SharedDataset | undefined>;
}
