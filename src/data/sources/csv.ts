/**
 * CSV files: one sample per row, a label column (by name, or by index from 0; default the last
 * column) and feature columns. A feature column is numeric unless `data.categorical` lists it;
 * a categorical column's values become their index among the column's sorted distinct training
 * values, and that mapping is kept in the checkpoint so evaluation and prediction read new files
 * the same way. A label column with any non-numeric value is a class: its sorted distinct values
 * are the class names (class id = index). Missing values (empty, NA, N/A, NaN, null) are refused
 * with their row and column; ringtrain does not guess them.
 *
 * `data.path` (and `data.testPath`) is a file or a folder, whose *.csv files (and *.csv.gz) are
 * read in name order and must share one header.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { z } from 'zod';
import { DataError } from '../../errors.js';
import type { DataInfo } from '../data-info.js';
import { createSharedDataset } from '../dataset.js';
import type { FileSource } from '../file-source.js';
import type { LoadDataOptions } from '../load-data.js';
import { expandPath, readMaybeGzip } from './files.js';

const pathSchema = (what: string) => z.string({ error: `a non-empty string (${what})` }).min(1, { error: `a non-empty string (${what})` });
const columnSchema = z.union([z.string().min(1), z.int().min(0)], { error: 'a column name or an index from 0' });
const limitSchema = z.int({ error: 'an integer >= 1' }).min(1, { error: 'an integer >= 1' });

export const csvDataSchema = z.strictObject(
  {
    source: z.literal('csv'),
    path: pathSchema('a CSV file or a folder of CSV files'),
    testPath: pathSchema('a CSV file or a folder of CSV files').optional(),
    header: z.boolean({ error: 'true or false' }).optional(),
    label: columnSchema.optional(),
    categorical: z.array(columnSchema, { error: 'an array of column names or indices' }).optional(),
    delimiter: z.string({ error: 'one character, e.g. ";"' }).length(1, { error: 'one character, e.g. ";"' }).optional(),
    trainLimit: limitSchema.optional(),
    testLimit: limitSchema.optional(),
  },
  { error: 'an object such as {"source": "csv", "path": "data/train.csv", "label": "species"}' },
);

export type CsvDataConfig = z.output<typeof csvDataSchema>;

const MISSING = new Set(['', 'NA', 'N/A', 'NaN', 'nan', 'null', 'NULL', 'None']);
/** Missing values listed in one message at most. */
const MISSING_LISTED = 5;

interface Row {
  file: string;
  /** 1-based data row of its file (the header not counted) and the file line it ends on. */
  row: number;
  line: number;
  values: string[];
}

interface Table {
  /** Column names: the header, or the indices as text. */
  columns: string[];
  rows: Row[];
}

async function csvFiles(path: string, what: string): Promise<string[]> {
  let isDir: boolean;
  try {
    isDir = (await stat(path)).isDirectory();
  } catch (error) {
    throw new DataError(`${what} ${path} does not exist (${(error as NodeJS.ErrnoException).code ?? String(error)})`, { cause: error });
  }
  if (!isDir) return [path];
  const names = (await readdir(path)).filter((n) => /\.csv(\.gz)?$/i.test(n)).sort();
  if (names.length === 0) throw new DataError(`${what} ${path}: expected CSV files (*.csv) in the folder, found none`);
  return names.map((n) => join(path, n));
}

async function readTable(path: string, config: CsvDataConfig, what: string): Promise<Table> {
  const header = config.header ?? true;
  let columns: string[] | undefined;
  const rows: Row[] = [];
  for (const file of await csvFiles(path, what)) {
    const text = new TextDecoder().decode((await readMaybeGzip(file)).bytes);
    let records: { record: string[]; info: { lines: number } }[];
    try {
      records = parse(text, { delimiter: config.delimiter ?? ',', skip_empty_lines: true, trim: true, info: true, bom: true }) as unknown as typeof records;
    } catch (error) {
      throw new DataError(`${file}: not a valid CSV file: ${(error as Error).message}`, { cause: error });
    }
    if (records.length === 0) throw new DataError(`${file}: expected ${header ? 'a header and ' : ''}rows of values, found an empty file`);
    let first = 0;
    const width = records[0]!.record.length;
    const fileColumns = header ? records[0]!.record : Array.from({ length: width }, (_, i) => String(i));
    if (header) first = 1;
    if (columns === undefined) columns = fileColumns;
    else if (fileColumns.join('\u0000') !== columns.join('\u0000')) {
      throw new DataError(`${file}: expected the columns of the first file (${columns.join(', ')}), found ${fileColumns.join(', ')}`);
    }
    for (let i = first; i < records.length; i++) rows.push({ file, row: i - first + 1, line: records[i]!.info.lines, values: records[i]!.record });
  }
  return { columns: columns!, rows };
}

function columnIndex(columns: string[], column: string | number, field: string, header: boolean): number {
  if (typeof column === 'number') {
    if (column >= columns.length) throw new DataError(`${field}: column index ${column} is outside the ${columns.length} columns (0 to ${columns.length - 1})`);
    return column;
  }
  if (!header) throw new DataError(`${field}: "${column}" names a column, but data.header is false (give an index from 0)`);
  const index = columns.indexOf(column);
  if (index < 0) throw new DataError(`${field}: expected one of the columns ${columns.join(', ')}, found "${column}"`);
  return index;
}

const where = (r: Row, column: string) => `${r.file} row ${r.row} (line ${r.line}), column "${column}"`;

/** Refuses the table when any of `columns` has a missing value, listing the first few. */
function checkMissing(table: Table, indices: number[]): void {
  const found: string[] = [];
  let count = 0;
  for (const r of table.rows) {
    for (const c of indices) {
      if (!MISSING.has(r.values[c]!)) continue;
      count++;
      if (found.length < MISSING_LISTED) found.push(`row ${r.row} (line ${r.line}) column "${table.columns[c]}"`);
    }
  }
  if (count === 0) return;
  const file = table.rows.find((r) => indices.some((c) => MISSING.has(r.values[c]!)))!.file;
  throw new DataError(
    `${file}: ${count} missing value${count === 1 ? '' : 's'} (expected a value in every used column), at ${found.join(', ')}${count > found.length ? ', ...' : ''}`,
    { hint: 'ringtrain does not fill in missing values: fill or drop those rows' },
  );
}

function isNumber(text: string): boolean {
  return text.trim() !== '' && Number.isFinite(Number(text));
}

/** How the columns of a training table become features and labels. */
function describeTable(table: Table, config: CsvDataConfig): DataInfo & { featureColumns: string[]; labelColumn: string } {
  const header = config.header ?? true;
  const { columns } = table;
  if (columns.length < 2) throw new DataError(`data.path: expected at least 2 columns (features and a label), found ${columns.length}`);
  const label = columnIndex(columns, config.label ?? columns.length - 1, 'data.label', header);
  const categorical = new Set((config.categorical ?? []).map((c, i) => columnIndex(columns, c, `data.categorical[${i}]`, header)));
  const featureIdx = columns.map((_, i) => i).filter((i) => i !== label);
  const info: DataInfo & { featureColumns: string[]; labelColumn: string } = { featureColumns: featureIdx.map((i) => columns[i]!), labelColumn: columns[label]! };
  const categories: Record<string, string[]> = {};
  for (const c of featureIdx.filter((i) => categorical.has(i))) {
    categories[columns[c]!] = [...new Set(table.rows.map((r) => r.values[c]!))].sort();
  }
  if (Object.keys(categories).length > 0) info.categories = categories;
  if (categorical.has(label) || table.rows.some((r) => !isNumber(r.values[label]!))) {
    info.classNames = [...new Set(table.rows.map((r) => r.values[label]!))].sort();
  }
  return info;
}

/** The features (and labels, when the table has the label column) of a table, as `info` says. */
function encodeTable(table: Table, info: DataInfo, withLabels: boolean): { features: Float32Array; labels: Float32Array } {
  const featureColumns = info.featureColumns!;
  const indices = featureColumns.map((name) => {
    const i = table.columns.indexOf(name);
    if (i < 0) throw new DataError(`${table.rows[0]?.file ?? 'the CSV file'}: expected a column "${name}" (the model was trained on ${featureColumns.join(', ')}), found ${table.columns.join(', ')}`);
    return i;
  });
  const labelIndex = withLabels ? table.columns.indexOf(info.labelColumn!) : -1;
  if (withLabels && labelIndex < 0) throw new DataError(`${table.rows[0]?.file}: expected the label column "${info.labelColumn}", found ${table.columns.join(', ')}`);
  checkMissing(table, withLabels ? [...indices, labelIndex] : indices);
  const features = new Float32Array(table.rows.length * indices.length);
  const labels = new Float32Array(withLabels ? table.rows.length : 0);
  const lookups = featureColumns.map((name) => {
    const values = info.categories?.[name];
    return values && new Map(values.map((v, i) => [v, i]));
  });
  const classIds = info.classNames && new Map(info.classNames.map((v, i) => [v, i]));
  table.rows.forEach((r, n) => {
    indices.forEach((c, j) => {
      const text = r.values[c]!;
      const lookup = lookups[j];
      if (lookup) {
        const id = lookup.get(text);
        if (id === undefined) throw new DataError(`${where(r, featureColumns[j]!)}: expected one of the training data's categories (${info.categories![featureColumns[j]!]!.join(', ')}), found "${text}"`);
        features[n * indices.length + j] = id;
      } else {
        if (!isNumber(text)) throw new DataError(`${where(r, featureColumns[j]!)}: expected a number, found "${text}"`, { hint: 'a column of categories must be listed in data.categorical' });
        features[n * indices.length + j] = Number(text);
      }
    });
    if (!withLabels) return;
    const text = r.values[labelIndex]!;
    if (classIds) {
      const id = classIds.get(text);
      if (id === undefined) throw new DataError(`${where(r, info.labelColumn!)}: expected one of the training data's classes (${info.classNames!.join(', ')}), found "${text}"`);
      labels[n] = id;
    } else {
      if (!isNumber(text)) throw new DataError(`${where(r, info.labelColumn!)}: expected a number, found "${text}"`);
      labels[n] = Number(text);
    }
  });
  return { features, labels };
}

function limited(data: { features: Float32Array; labels: Float32Array }, perSample: number, limit: number | undefined) {
  if (limit === undefined || data.labels.length <= limit) return data;
  return { features: data.features.subarray(0, limit * perSample), labels: data.labels.subarray(0, limit) };
}

export const csvSource: FileSource<CsvDataConfig> = {
  schema: csvDataSchema,
  dataDirField: 'path',
  fields: Object.keys(csvDataSchema.shape),

  async load(config: CsvDataConfig, options: LoadDataOptions) {
    const path = expandPath(options.dataDir ?? config.path);
    const table = await readTable(path, config, 'data.path:');
    if (table.rows.length === 0) throw new DataError(`${path}: expected rows of values, found only a header`);
    const info = describeTable(table, config);
    const width = info.featureColumns.length;
    const share = (name: string, data: { features: Float32Array; labels: Float32Array }) =>
      createSharedDataset({ name, featureShape: [width], labelShape: [1], features: data.features, labels: data.labels });
    const train = share('csv/train', limited(encodeTable(table, info, true), width, config.trainLimit));
    options.log?.(`csv: ${train.size} rows of ${width} features from ${path}${info.classNames ? `, ${info.classNames.length} classes` : ''}`);
    let test;
    if (config.testPath !== undefined) {
      const testTable = await readTable(expandPath(config.testPath), config, 'data.testPath:');
      test = share('csv/test', limited(encodeTable(testTable, info, true), width, config.testLimit));
    }
    return { train, ...(test ? { test } : {}), ...(info.classNames ? { classes: info.classNames.length } : {}), info };
  },

  async readInputs(path: string, config: CsvDataConfig, info: DataInfo) {
    const table = await readTable(expandPath(path), config, 'input');
    const { features } = encodeTable(table, info, false);
    return { names: table.rows.map((r) => `${r.file}:${r.row}`), features };
  },

  async readLabelled(path: string | undefined, config: CsvDataConfig, info: DataInfo) {
    const from = path ?? config.testPath;
    if (from === undefined) return undefined;
    const table = await readTable(expandPath(from), config, path === undefined ? 'data.testPath:' : 'data');
    const data = encodeTable(table, info, true);
    return createSharedDataset({ name: `csv:${from}`, featureShape: [info.featureColumns!.length], labelShape: [1], ...data });
  },
};
