/**
 * What a run must remember about its data to read new data the same way later (evaluate,
 * predict): the names of the classes, the CSV columns and the index of every category. It is
 * stored in the checkpoint (field `data_info_json`) and shown by `inspect`.
 */
import { DataError } from '../errors.js';

export interface DataInfo {
  /** Class names by class id (image folders: the subfolder names; CSV: the label's categories). */
  classNames?: string[];
  /** CSV: the feature columns in the order they form a sample (names, or indices as text without a header). */
  featureColumns?: string[];
  /** CSV: the label column's name (or index as text). */
  labelColumn?: string;
  /** CSV: each categorical feature column's categories; a value is stored as its index here. */
  categories?: Record<string, string[]>;
  /** Image folders: the size images are resized to, and their channels. */
  imageSize?: [number, number];
  channels?: number;
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** Checks a decoded data_info_json object; `where` names the file in messages. */
export function parseDataInfo(value: unknown, where: string): DataInfo {
  const fail = (what: string): never => {
    throw new DataError(`${where}: the data info is malformed: ${what}`);
  };
  if (value === null || typeof value !== 'object' || Array.isArray(value)) fail('expected a JSON object');
  const v = value as Record<string, unknown>;
  const info: DataInfo = {};
  if (v.classNames !== undefined) info.classNames = isStringArray(v.classNames) ? v.classNames : fail('classNames is not an array of strings');
  if (v.featureColumns !== undefined) info.featureColumns = isStringArray(v.featureColumns) ? v.featureColumns : fail('featureColumns is not an array of strings');
  if (v.labelColumn !== undefined) info.labelColumn = typeof v.labelColumn === 'string' ? v.labelColumn : fail('labelColumn is not a string');
  if (v.categories !== undefined) {
    const c = v.categories;
    if (c === null || typeof c !== 'object' || Array.isArray(c) || !Object.values(c).every(isStringArray)) fail('categories is not an object of string arrays');
    info.categories = c as Record<string, string[]>;
  }
  if (v.imageSize !== undefined) {
    const s = v.imageSize;
    if (!Array.isArray(s) || s.length !== 2 || !s.every((d) => Number.isInteger(d) && d > 0)) fail('imageSize is not [height, width]');
    info.imageSize = s as [number, number];
  }
  if (v.channels !== undefined) info.channels = v.channels === 1 || v.channels === 3 ? v.channels : fail('channels is not 1 or 3');
  return info;
}

/** JSON text of `info` with its keys (and its categories' columns) in sorted order: equal infos give equal text. */
export function canonicalDataInfo(info: DataInfo | undefined): string {
  const sorted = (o: object): Record<string, unknown> => Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  const top = sorted(info ?? {});
  if (info?.categories) top.categories = sorted(info.categories);
  return JSON.stringify(top);
}
