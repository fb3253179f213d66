/**
 * A CSV run from the command line: train, a second run into the same folder, evaluate and
 * predict on the run folder, checked against a forward pass computed here in plain JavaScript.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { CheckpointStore } from '../../src/checkpoint/store.js';
import { mainJs, root } from '../helpers/processes.js';

function ringtrain(...args: string[]) {
  const result = spawnSync(process.execPath, [mainJs, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const dir = mkdtempSync(join(tmpdir(), 'ringtrain-csv-cli-'));
const COLORS = ['red', 'blue'];
/** Rows x, color, y, kind with kind = pos when x + y (+ 0.5 for red) > 0; deterministic. */
function rows(n: number, offset: number): string[][] {
  return Array.from({ length: n }, (_, i) => {
    const x = Math.sin(i * 1.7 + offset) * 2;
    const y = Math.cos(i * 0.9 + offset * 3) * 2;
    const color = COLORS[(i + offset) % 2]!;
    return [x.toFixed(3), color, y.toFixed(3), x + y + (color === 'red' ? 0.5 : -0.5) > 0 ? 'pos' : 'neg'];
  });
}
const csv = (header: string[], body: string[][]) => [header, ...body].map((r) => r.join(',')).join('\n') + '\n';
const trainRows = rows(60, 0);
const testRows = rows(20, 7);
writeFileSync(join(dir, 'train.csv'), csv(['x', 'color', 'y', 'kind'], trainRows));
writeFileSync(join(dir, 'test.csv'), csv(['x', 'color', 'y', 'kind'], testRows));
const config = join(dir, 'tab.json');
writeFileSync(
  config,
  JSON.stringify({
    name: 'tab',
    model: { inputShape: [3], layers: [{ type: 'dense', units: 4, activation: 'relu' }, { type: 'dense', units: 2, activation: 'softmax' }] },
    data: { source: 'csv', path: join(dir, 'train.csv'), testPath: join(dir, 'test.csv'), label: 'kind', categorical: ['color'] },
    loss: 'sparseCategoricalCrossentropy',
    metrics: ['accuracy'],
    optimizer: { name: 'adam', learningRate: 0.05 },
    training: { epochs: 3, batchSize: 20 },
  }),
);

/** Softmax outputs of the 3-4-2 MLP of `params` (layout: kernel [3,4], bias [4], kernel [4,2], bias [2]) for one row. */
function forward(params: Float32Array, features: number[]): number[] {
  const hidden = [0, 1, 2, 3].map((j) => Math.max(0, features.reduce((s, v, i) => s + v * params[i * 4 + j]!, params[12 + j]!)));
  const logits = [0, 1].map((k) => hidden.reduce((s, h, j) => s + h * params[16 + j * 2 + k]!, params[24 + k]!));
  const max = Math.max(...logits);
  const e = logits.map((l) => Math.exp(l - max));
  return e.map((v) => v / (e[0]! + e[1]!));
}

/** The features as the run encodes them: the category's index among the sorted categories (blue 0, red 1). */
const encode = (r: string[]) => [Number(r[0]), r[1] === 'blue' ? 0 : 1, Number(r[2])];

describe('a CSV run from the command line', () => {
  const out = join(dir, 'run');
  it('trains, says where it writes; a second new run into the same folder goes to <out>-2 and leaves the first as it was', () => {
    const first = ringtrain('train', config, '--out', out, '--workers', '1');
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain(`run folder ${out}: metrics log ${join(out, 'metrics.jsonl')}, checkpoints ${join(out, 'checkpoints')}, TensorBoard events ${join(out, 'tensorboard')}\n`);
    const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8');
    const checkpoints = new CheckpointStore(join(out, 'checkpoints')).list().map((e) => e.name);
    const second = ringtrain('train', config, '--out', out, '--workers', '1', '--epochs', '1');
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toContain(`run folder ${out}-2 (${out} holds an earlier run): metrics log ${join(`${out}-2`, 'metrics.jsonl')}, checkpoints ${join(`${out}-2`, 'checkpoints')}, TensorBoard events ${join(`${out}-2`, 'tensorboard')}\n`);
    expect(readFileSync(join(out, 'metrics.jsonl'), 'utf8')).toBe(log);
    expect(new CheckpointStore(join(out, 'checkpoints')).list().map((e) => e.name)).toEqual(checkpoints);
    // The start record, one epoch and the summary.
    const records = readFileSync(join(`${out}-2`, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string });
    expect(records.map((r) => r.event)).toEqual(['start', 'epoch', 'summary']);
  }, 300_000); // node processes starting replicas on a busy 2-core machine can take minutes

  it('evaluate <run folder> --json gives the loss and accuracy of the latest checkpoint on the test file', async () => {
    const run = ringtrain('evaluate', out, '--json', '--workers', '2') /* sharded over 2 replicas */;
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { checkpoint: string; samples: number; loss: number; metrics: { accuracy: number } };
    const state = await readCheckpointFile(result.checkpoint);
    expect(state.position.epoch).toBe(3);
    // What the checkpoint keeps of the data, which predict and inspect use.
    expect(state.dataInfo).toEqual({ featureColumns: ['x', 'color', 'y'], labelColumn: 'kind', categories: { color: ['blue', 'red'] }, classNames: ['neg', 'pos'] });
    let loss = 0;
    let correct = 0;
    for (const r of testRows) {
      const p = forward(state.params, encode(r));
      const label = r[3] === 'neg' ? 0 : 1;
      loss -= Math.log(p[label]!);
      correct += Number((p[1]! > p[0]! ? 1 : 0) === label);
    }
    expect(result.samples).toBe(20);
    expect(result.loss).toBeCloseTo(loss / 20, 5);
    expect(result.metrics.accuracy).toBeCloseTo(correct / 20, 6);
  }, 300_000); // node processes starting replicas on a busy 2-core machine can take minutes

  it('predict <run folder> <csv> gives each row\'s class by name and its probabilities; the columns may come in any order', async () => {
    const input = join(dir, 'new.csv');
    writeFileSync(input, 'color,y,x\nred,2,2\nblue,-2,-2\n');
    const run = ringtrain('predict', out, input, '--workers', '1');
    expect(run.code, run.stderr).toBe(0);
    const state = await readCheckpointFile(new CheckpointStore(join(out, 'checkpoints')).resolve('latest'));
    const lines = run.stdout.trim().split('\n');
    expect(lines[0]).toBe('input,prediction,p_neg,p_pos');
    [[2, 1, 2], [-2, 0, -2]].forEach((features, i) => {
      const p = forward(state.params, features);
      const [name, predicted, pNeg, pPos] = lines[i + 1]!.split(',');
      expect(name).toBe(`${input}:${i + 1}`);
      expect(predicted).toBe(p[1]! > p[0]! ? 'pos' : 'neg');
      expect(Number(pNeg)).toBeCloseTo(p[0]!, 5);
      expect(Number(pPos)).toBeCloseTo(p[1]!, 5);
    });
  }, 300_000); // node processes starting replicas on a busy 2-core machine can take minutes
});
