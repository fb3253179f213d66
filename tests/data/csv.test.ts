import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import { DatasetReader } from '../../src/data/dataset.js';
import { loadData } from '../../src/data/load-data.js';
import { csvSource } from '../../src/data/sources/csv.js';
import { ConfigError } from '../../src/errors.js';
import { dataErrorOf } from '../helpers/data-error.js';
import { tempDir } from './fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ dir, cleanup } = await tempDir());
});
afterAll(async () => cleanup());

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, text);
  return path;
}

function gathered(ds: import('../../src/data/dataset.js').SharedDataset) {
  const reader = new DatasetReader(ds);
  const x = new Float32Array(ds.size * reader.perSample);
  const y = new Float32Array(ds.size * reader.perLabel);
  reader.gatherRange(0, ds.size, x, y);
  return { x: [...x], y: [...y] };
}

describe('csv data source', () => {
  it('reads a header, a label by name, numeric and categorical features, and indexes categories and classes in sorted order', async () => {
    const path = await file('iris.csv', 'length,color,width,species\n1.5,red,0.25,setosa\n2,blue,-1,virginica\n"3",green,4e1,setosa\n');
    const test = await file('iris-test.csv', 'length,color,width,species\n7,green,8,virginica\n');
    const data = await loadData({ source: 'csv', path, testPath: test, label: 'species', categorical: ['color'] }, { seed: 1 });
    expect(data.info).toEqual({ featureColumns: ['length', 'color', 'width'], labelColumn: 'species', categories: { color: ['blue', 'green', 'red'] }, classNames: ['setosa', 'virginica'] });
    expect(data.classes).toBe(2);
    expect(data.train.featureShape).toEqual([3]);
    expect(data.train.labelShape).toEqual([1]);
    expect(gathered(data.train)).toEqual({ x: [1.5, 2, 0.25, 2, 0, -1, 3, 1, 40], y: [0, 1, 0] });
    expect(gathered(data.test!)).toEqual({ x: [7, 1, 8], y: [1] });
  });

  it('reads a file without a header, the label by index, numeric labels as they are', async () => {
    const path = await file('plain.csv', '5,1,2\n6,3,4\n');
    const data = await loadData({ source: 'csv', path, header: false, label: 0 }, { seed: 1 });
    expect(data.info).toEqual({ featureColumns: ['1', '2'], labelColumn: '0' });
    expect(data.classes).toBeUndefined();
    expect(gathered(data.train)).toEqual({ x: [1, 2, 3, 4], y: [5, 6] });
  });

  it('reads a folder of CSV files in name order; files with other columns are refused', async () => {
    await file('parts/b.csv', 'x,y\n3,1\n');
    await file('parts/a.csv', 'x,y\n1,0\n2,1\n');
    await file('parts/notes.txt', 'not read');
    const data = await loadData({ source: 'csv', path: join(dir, 'parts') }, { seed: 1 });
    expect(gathered(data.train)).toEqual({ x: [1, 2, 3], y: [0, 1, 1] });
    await file('parts/c.csv', 'y,x\n1,3\n');
    const error = await dataErrorOf(loadData({ source: 'csv', path: join(dir, 'parts') }, { seed: 1 }));
    expect(error.message).toBe(`${join(dir, 'parts', 'c.csv')}: expected the columns of the first file (x, y), found y, x`);
  });

  it('reports missing values with their row, line and column', async () => {
    const path = await file('missing.csv', 'a,b,label\n1,2,0\n,3,1\n4,NA,0\n');
    const error = await dataErrorOf(loadData({ source: 'csv', path }, { seed: 1 }));
    expect(error.message).toBe(`${path}: 2 missing values (expected a value in every used column), at row 2 (line 3) column "a", row 3 (line 4) column "b"`);
  });

  it('names file, row, column and value for a non-number, an unknown category and an unknown column', async () => {
    const path = await file('words.csv', 'a,b,label\n1,2,0\n1,two,1\n');
    let error = await dataErrorOf(loadData({ source: 'csv', path }, { seed: 1 }));
    expect(error.message).toBe(`${path} row 2 (line 3), column "b": expected a number, found "two"`);
    expect(error.hint).toBe('a column of categories must be listed in data.categorical');

    const train = await file('cat.csv', 'c,label\nred,0\nblue,1\n');
    const test = await file('cat-test.csv', 'c,label\npurple,0\n');
    error = await dataErrorOf(loadData({ source: 'csv', path: train, testPath: test, categorical: ['c'] }, { seed: 1 }));
    expect(error.message).toBe(`${test} row 1 (line 2), column "c": expected one of the training data's categories (blue, red), found "purple"`);

    error = await dataErrorOf(loadData({ source: 'csv', path: train, label: 'species' }, { seed: 1 }));
    expect(error.message).toBe('data.label: expected one of the columns c, label, found "species"');
    error = await dataErrorOf(loadData({ source: 'csv', path: train, label: 5 }, { seed: 1 }));
    expect(error.message).toBe('data.label: column index 5 is outside the 2 columns (0 to 1)');
  });

  it('reads inputs to predict with the training columns and categories, the label column optional', async () => {
    const input = await file('predict.csv', 'color,length,width\nred,1,2\nblue,3,4\n');
    const info = { featureColumns: ['length', 'color', 'width'], labelColumn: 'species', categories: { color: ['blue', 'green', 'red'] } };
    const read = await csvSource.readInputs(input, { source: 'csv', path: 'unused' }, info);
    expect([...read.features]).toEqual([1, 2, 2, 3, 0, 4]);
    expect(read.names).toEqual([`${input}:1`, `${input}:2`]);
  });

  it('is a data source of the run config, with its own fields checked', () => {
    const base = { name: 't', model: { inputShape: [2], layers: [{ type: 'dense', units: 1 }] }, loss: 'mse', optimizer: 'sgd', training: { epochs: 1, batchSize: 2 } };
    const config = parseRunConfig({ ...base, data: { source: 'csv', path: 'x.csv', label: 'y', categorical: ['c'] } });
    expect(config.data).toEqual({ source: 'csv', path: 'x.csv', label: 'y', categorical: ['c'] });
    const error = (() => {
      try {
        parseRunConfig({ ...base, data: { source: 'csv', path: 'x.csv', lable: 'y' } });
      } catch (e) {
        return e as ConfigError;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.message).toContain('data.lable');
    expect(error!.message).toContain('"label"');
  });
});
