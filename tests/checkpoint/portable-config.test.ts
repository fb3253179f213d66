/**
 * A checkpoint written on one machine is read on another: the config embedded in it is checked
 * for its structure and typo bounds, not against the cores and memory of the machine reading it
 * (validate.ts: parseRunConfig with machineChecks: false). The run that resumes from it is
 * still checked against this machine, with its own (effective) config.
 *
 * The machine is made small with the limits module's test-only variables (RINGTRAIN_TEST_CORES,
 * RINGTRAIN_TEST_TOTALMEM), so these outcomes are the same on every machine.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { encodeCheckpoint, readCheckpointFile } from '../../src/checkpoint/format.js';
import { describeCheckpoint, formatCheckpoint } from '../../src/checkpoint/inspect.js';
import type { CheckpointState } from '../../src/checkpoint/state.js';
import { checkCheckpointContents } from '../../src/checkpoint/validate.js';
import { applyOverrides, parseRunConfig } from '../../src/config/load.js';
import { TEST_CORES_ENV, TEST_TOTALMEM_ENV, maxWorkers } from '../../src/config/limits.js';
import type { RunConfig } from '../../src/config/schema.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { Trainer } from '../../src/train/trainer.js';
import { configErrorOf } from '../helpers/config-error.js';
import { makeState } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-portable-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env[TEST_CORES_ENV];
  delete process.env[TEST_TOTALMEM_ENV];
});

/** The fixture with a config of its own (makeState shares one) and 64 workers. */
function stateWith64Workers(): CheckpointState {
  const state = makeState();
  state.config = structuredClone(state.config);
  state.config.parallel = { ...state.config.parallel, workers: 64 };
  return state;
}

describe('the config of a checkpoint is not checked against the machine reading it', () => {
  it('64 workers, on a machine of 2 cores (at most 8): inspect reads the checkpoint', async () => {
    process.env[TEST_CORES_ENV] = '2';
    expect(maxWorkers()).toBe(8);
    const state = stateWith64Workers();
    // As a config file on this machine, it is refused...
    expect(configErrorOf(() => parseRunConfig(state.config)).message).toMatch(/^parallel\.workers: expected an integer from 1 to 8 or "auto", found 64 \(at most 4 replicas per core and this machine has 2:/);
    // ...as a checkpoint's config, it is not.
    expect(() => checkCheckpointContents(state, 'x.rtckpt')).not.toThrow();
    const file = path.join(dir, 'ckpt-e0002-s001234.rtckpt');
    await writeFile(file, encodeCheckpoint(state));
    const text = formatCheckpoint(describeCheckpoint(await readCheckpointFile(file), file));
    expect(text).toContain('written by ringtrain 0.1.0');
  });

  it('past the bound whatever the machine (256 workers), or a structural mistake, it is still refused', () => {
    const state = stateWith64Workers();
    state.config.parallel.workers = 257;
    expect(() => checkCheckpointContents(state, 'x.rtckpt')).toThrow(
      'x.rtckpt: invalid contents: config.parallel.workers: expected an integer from 1 to 256 or "auto", found 257 (the bound whatever the machine)',
    );
    state.config.parallel.workers = 0;
    expect(() => checkCheckpointContents(state, 'x.rtckpt')).toThrow('x.rtckpt: invalid contents: config.parallel.workers: expected an integer from 1 to 256 or "auto", found 0');
  });

  it('the memory estimate is not applied at read', () => {
    process.env[TEST_TOTALMEM_ENV] = String(1e6); // a 1 MB machine: the fixture's model (12,730 parameters, 2 replicas) does not fit
    const state = makeState();
    expect(configErrorOf(() => parseRunConfig(state.config)).message).toMatch(/^model\.layers\[1\]: the model would have 12,730 parameters .* the limit is 500 KB, half of this machine's memory$/);
    expect(() => checkCheckpointContents(state, 'x.rtckpt')).not.toThrow();
  });

  it('a run resumes with --workers 1 from a checkpoint whose config has 64 workers', async () => {
    const random = (() => {
      let x = 7;
      return () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    })();
    const data = {
      train: createSharedDataset({
        name: 'generated',
        featureShape: [4],
        labelShape: [],
        features: new Uint8Array(32 * 4).map(() => Math.floor(random() * 256)),
        labels: Float32Array.from({ length: 32 }, () => Math.floor(random() * 2)),
        featureScale: 1 / 255,
      }),
    };
    const raw = (workers: number, out: string) => ({
      name: 'portable',
      model: { inputShape: [4], layers: [{ type: 'dense', units: 2, activation: 'softmax' }] },
      data: 'xor',
      loss: 'sparseCategoricalCrossentropy',
      optimizer: 'sgd',
      training: { epochs: 2, batchSize: 8, seed: 5, validationSplit: 0 },
      parallel: { workers },
      backend: 'cpu',
      output: { dir: out, metricsLog: false },
      checkpoint: { everySteps: 2, keepLast: 100 },
    });
    // The big machine writes a checkpoint (one worker here, its config then says 64, as it would have).
    const first: RunConfig = parseRunConfig(raw(1, path.join(dir, 'first')));
    const trainer = await Trainer.create({ ...first, training: { ...first.training, epochs: 1 } }, { data, checkpoints: true });
    try {
      await trainer.fit();
    } finally {
      await trainer.close();
    }
    const name = (await readdir(first.checkpoint.dir)).filter((f) => f.endsWith('.rtckpt')).sort()[0]!;
    const state = await readCheckpointFile(path.join(first.checkpoint.dir, name));
    state.config = { ...state.config, parallel: { ...state.config.parallel, workers: 64 } };
    const moved = path.join(dir, name);
    await writeFile(moved, encodeCheckpoint(state));

    // The laptop (2 cores: at most 8 workers) reads it; the run's own, effective config (after
    // --workers) is what is checked against this machine, as the train command does.
    process.env[TEST_CORES_ENV] = '2';
    const resumeFrom = { file: moved, state: await readCheckpointFile(moved) };
    const onLaptop = path.join(dir, 'laptop');
    const fromFile = parseRunConfig(raw(2, onLaptop));
    expect(configErrorOf(() => applyOverrides(fromFile, { workers: 64 })).message).toMatch(/^--workers: expected an integer from 1 to 8 or "auto", found 64 /);
    const effective = applyOverrides(fromFile, { workers: 1 });
    const resumed = await Trainer.create(effective, { data, checkpoints: false, resume: resumeFrom });
    try {
      await resumed.fit();
      expect(resumed.captureState().position.epoch).toBe(2);
    } finally {
      await resumed.close();
    }
  });
});
