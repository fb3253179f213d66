/**
 * The contents of a checkpoint that passes its checksums: each nonsense is refused with one
 * line naming the file, the field, what was expected and what was found.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import { exportTfjs } from '../../src/checkpoint/export-tfjs.js';
import { encodeCheckpoint, readCheckpointFile } from '../../src/checkpoint/format.js';
import type { CheckpointState } from '../../src/checkpoint/state.js';
import { checkCheckpointContents } from '../../src/checkpoint/validate.js';
import { checkpointErrorOf, makeState } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-validate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const FILE = 'runs/x/checkpoints/ckpt-e0002-s001234.rtckpt';

/** The fixture with a config of its own (makeState shares one). */
function freshState(): CheckpointState {
  const state = makeState();
  state.config = structuredClone(state.config);
  return state;
}

/** The message checkCheckpointContents gives for the fixture changed by `edit` (undefined if it passes). */
function messageFor(edit: (s: CheckpointState) => void): string | undefined {
  const state = freshState();
  edit(state);
  try {
    checkCheckpointContents(state, FILE);
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    expect((error as CheckpointError).problem).toBe('contents');
    return (error as Error).message;
  }
  return undefined;
}

describe('checkCheckpointContents', () => {
  it('accepts the fixture (a realistic checkpoint)', () => {
    expect(messageFor(() => undefined)).toBeUndefined();
  });

  it('checks the embedded config with the config schema', () => {
    expect(messageFor((s) => ((s.config as { training: { batchSize: number } }).training.batchSize = 0))).toBe(
      `${FILE}: invalid contents: config.training.batchSize: expected an integer >= 1, found 0`,
    );
    expect(messageFor((s) => ((s.config as unknown as { optimizer: object }).optimizer = { name: 'adma' }))).toMatch(
      new RegExp(`^${FILE}: invalid contents: config\\.optimizer\\.name: expected one of sgd, adam, adamw, rmsprop, found "adma"`),
    );
    expect(messageFor((s) => ((s as { config: unknown }).config = [1]))).toBe(`${FILE}: invalid contents: config: expected a run config (a JSON object), found [1]`);
  });

  it('checks the optimizer state against the optimizer', () => {
    expect(messageFor((s) => (s.optimizer.state[0]!.name = 'mean'))).toBe(`${FILE}: invalid contents: optimizer.state: expected the adam state m, v, found mean, v`);
    expect(messageFor((s) => s.optimizer.state.pop())).toBe(`${FILE}: invalid contents: optimizer.state: expected the adam state m, v, found m`);
    expect(messageFor((s) => (s.optimizer.hyperParameters.learningRate = Number.NaN))).toBe(
      `${FILE}: invalid contents: optimizer.hyperParameters.learningRate: expected a finite number or true/false, found NaN`,
    );
    expect(messageFor((s) => delete s.optimizer.hyperParameters.beta2)).toBe(`${FILE}: invalid contents: optimizer.hyperParameters.beta2: expected a value (adam keeps one), found nothing`);
    expect(messageFor((s) => (s.optimizer.name = 'sgd'))).toBe(`${FILE}: invalid contents: optimizer.name: expected "adam" (config.optimizer.name), found "sgd"`);
    expect(messageFor((s) => (s.optimizer.step = 7))).toBe(`${FILE}: invalid contents: optimizer.step: expected 1234 (position.globalStep), found 7`);
  });

  it('checks the layout, position, sampler and history', () => {
    expect(messageFor((s) => (s.layout[1]!.offset += 1))).toBe(`${FILE}: invalid contents: layout[1].offset: expected 12544 (right after the previous weight), found 12545`);
    expect(messageFor((s) => (s.position.samplesSeen = 10 ** 9))).toBe(
      `${FILE}: invalid contents: position.samplesSeen: expected at most 39488 (globalStep x config.training.batchSize), found 1000000000`,
    );
    expect(messageFor((s) => (s.sampler.seed = 1))).toBe(`${FILE}: invalid contents: sampler.seed: expected 42 (config.training.seed), found 1`);
    expect(messageFor((s) => ((s as { history: unknown[] }).history = [3]))).toBe(`${FILE}: invalid contents: history[0]: expected an epoch record (a JSON object), found 3`);
    expect(messageFor((s) => s.history.push({ type: 'epoch', epoch: 0, loss: 1, samples: 3 }))).toBe(`${FILE}: invalid contents: history[2].epoch: expected an integer >= 1, found 0`);
    expect(messageFor((s) => s.history.push({ event: 'partial-epoch', samples: 1, lossSum: 1, seconds: 1, metricSums: [], times: [] }))).toBe(
      `${FILE}: invalid contents: history[2].metricSums: expected 1 numbers (one per metric of config.metrics), found []`,
    );
    expect(messageFor((s) => (s.layout[0]!.name = 'a\nb'))).toBe(`${FILE}: invalid contents: layout[0].name: expected a weight name (no control characters), found "a\\nb"`);
  });

  it('readCheckpointFile applies it: a file with valid checksums and a bad config is refused', async () => {
    const state = freshState();
    (state.config as { training: { epochs: number } }).training.epochs = -1;
    const file = path.join(dir, 'bad-config.rtckpt');
    await writeFile(file, encodeCheckpoint(state));
    const e = await checkpointErrorOf(() => readCheckpointFile(file));
    expect(e.message).toBe(`${file}: invalid contents: config.training.epochs: expected an integer >= 1, found -1`);
  });
});

describe('exportTfjs', () => {
  it('names a model topology that does not build, and weights that do not fit it', async () => {
    const state = makeState({ units: 2 });
    const bogus = { ...state, modelTopology: { class_name: 'Sequential', config: { name: 's', layers: [{ class_name: 'NoSuchLayer', config: {} }] } } };
    const e1 = await checkpointErrorOf(() => exportTfjs(bogus, path.join(dir, 'export-1'), FILE));
    expect(e1.message).toMatch(new RegExp(`^${FILE}: invalid contents: modelTopology: expected a TensorFlow.js model topology, found one that does not build \\(.+\\)$`));
    const topology = {
      class_name: 'Sequential',
      config: { name: 's', layers: [{ class_name: 'Dense', config: { name: 'd', units: 3, use_bias: false, batch_input_shape: [null, 4], dtype: 'float32' } }] },
    };
    const e2 = await checkpointErrorOf(() => exportTfjs({ ...state, modelTopology: topology }, path.join(dir, 'export-2'), FILE));
    expect(e2.message).toBe(`${FILE}: invalid contents: layout: expected the weights of modelTopology [4,3], found [784,2] [2] [2,10]`);
  });
});
