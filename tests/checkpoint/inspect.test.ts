import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c, formatCrc } from '../../src/checkpoint/crc32c.js';
import { encodeCheckpoint, readCheckpointFile } from '../../src/checkpoint/format.js';
import { describeCheckpoint, formatCheckpoint } from '../../src/checkpoint/inspect.js';
import type { CheckpointState } from '../../src/checkpoint/state.js';
import { bytesOf, makeState } from './fixtures.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-inspect-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('describeCheckpoint and formatCheckpoint', () => {
  it('describe a checkpoint read from a file', async () => {
    const state = makeState();
    const file = path.join(dir, 'ckpt-e0002-s001234.rtckpt');
    const bytes = encodeCheckpoint(state);
    await writeFile(file, bytes);
    const desc = describeCheckpoint(await readCheckpointFile(file), file);
    const crcOf = (values: Float32Array) => formatCrc(crc32c(bytesOf(values)));

    expect(desc).toMatchObject({
      file,
      fileBytes: bytes.length,
      format: 'ringtrain.checkpoint',
      formatVersion: 1,
      ringtrainVersion: '0.1.0',
      replicas: 2,
      config: {
        name: 'mnist-mlp',
        modelKind: 'layers',
        modelClass: 'Sequential',
        layers: 3,
        optimizer: 'adam (learningRate: 0.001)',
        batchSize: 32,
        epochs: 5,
      },
      position: { epoch: 2, stepInEpoch: 17, globalStep: 1234, samplesSeen: 39488 },
      parameters: 12720,
      optimizer: { name: 'adam', step: 1234, stateNames: ['m', 'v'] },
      rngStates: [{ name: 'dropout', bytes: 12 }],
      history: { length: 2 },
    });
    expect(desc.tensors).toEqual([
      { name: 'params', role: 'params', shape: [12720], dtype: 'float32', bytes: 50880, crc32c: crcOf(state.params) },
      { name: 'm', role: 'optimizer state', shape: [12720], dtype: 'float32', bytes: 50880, crc32c: crcOf(state.optimizer.state[0]!.values) },
      { name: 'v', role: 'optimizer state', shape: [12720], dtype: 'float32', bytes: 50880, crc32c: crcOf(state.optimizer.state[1]!.values) },
    ]);
    expect(desc.history.last).toMatchObject({ epoch: 1, note: 'diverged' });
    // JSON-ready: nothing but plain data.
    expect(JSON.parse(JSON.stringify(desc)).tensors).toEqual(desc.tensors);

    const [params, m, v] = desc.tensors.map((t) => t.crc32c);
    expect(formatCheckpoint(desc)).toBe(
      [
        `checkpoint   ${file} (154.4 kB)`,
        'format       ringtrain.checkpoint v1, written by ringtrain 0.1.0 at 2025-01-02T03:04:05.678Z (2 replicas)',
        'run          mnist-mlp',
        'model        Sequential on [28, 28, 1]: flatten, dense(units: 16, activation: relu), dense(units: 10, activation: softmax)',
        'optimizer    adam, step 1,234; learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, amsgrad: false',
        '             state: m, v',
        'loss         sparseCategoricalCrossentropy',
        'data         mnist',
        'training     batch size 32, 5 epochs',
        'position     next step: epoch 2, step 17 of the epoch; global step 1,234, 39,488 samples seen',
        'sampler      seed 42, shuffle on',
        'rng states   dropout (12 bytes)',
        'parameters   12,720 in 3 weights',
        '  dense_Dense1/kernel  [784, 16]  offset 0       size 12,544',
        '  dense_Dense1/bias    [16]       offset 12,544  size 16',
        '  dense_Dense2/kernel  [16, 10]   offset 12,560  size 160',
        'tensors',
        `  params  parameters       [12720]  float32  50.9 kB  crc32c ${params}`,
        `  m       optimizer state  [12720]  float32  50.9 kB  crc32c ${m}`,
        `  v       optimizer state  [12720]  float32  50.9 kB  crc32c ${v}`,
        'history      2 records; last: {"epoch":1,"loss":NaN,"metrics":{"accuracy":0.9},"note":"diverged","extra":[Infinity,-1e+308]}',
        '',
      ].join('\n'),
    );
  });

  it('copes with a topology model, no optimizer state, no history and a file that is gone', () => {
    const base = makeState({ units: 2 });
    const state: CheckpointState = {
      ...base,
      config: { ...base.config, model: { topology: '/models/net/model.json' }, optimizer: { name: 'sgd' } },
      modelTopology: { class_name: 'Model', config: {} },
      optimizer: { name: 'sgd', hyperParameters: { learningRate: 0.01 }, step: 0, state: [] },
      rngStates: [],
      history: [],
      replicas: 1,
    };
    const desc = describeCheckpoint(state, path.join(dir, 'gone.rtckpt'));
    expect(desc.fileBytes).toBeUndefined();
    expect(desc.config).toMatchObject({ modelKind: 'topology', model: 'topology /models/net/model.json', modelClass: 'Model', optimizer: 'sgd' });
    const text = formatCheckpoint(desc);
    expect(text).toContain(`checkpoint   ${path.join(dir, 'gone.rtckpt')}\n`);
    expect(text).toContain('(1 replica)');
    expect(text).toContain('model        topology /models/net/model.json\n');
    expect(text).toContain('optimizer    sgd, step 0; learningRate: 0.01\n             state: none\n');
    expect(text).toContain('rng states   none\n');
    expect(text).toContain('history      0 records\n');
  });
});
