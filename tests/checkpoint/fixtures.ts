/** A realistic checkpoint state (3 weights, Adam m and v, history, an RNG state) and file helpers. */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { expect } from 'vitest';
import type { RunConfig } from '../../src/config/schema.js';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import type { CheckpointState } from '../../src/checkpoint/state.js';

export const CONFIG: RunConfig = {
  name: 'mnist-mlp',
  model: {
    inputShape: [28, 28, 1],
    layers: [{ type: 'flatten' }, { type: 'dense', units: 16, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }],
  },
  data: { source: 'mnist' },
  loss: { name: 'sparseCategoricalCrossentropy', fromLogits: false },
  metrics: ['accuracy'],
  optimizer: { name: 'adam', learningRate: 0.001 },
  training: { epochs: 5, batchSize: 32, shuffle: true, seed: 42, validationSplit: 0.1, validateOnTest: false },
  evaluation: { on: 'test' },
  parallel: { workers: 2, stepTimeoutMs: 60_000 },
  backend: 'cpu',
  output: { dir: 'runs/mnist-mlp', metricsLog: true },
};

/** Values with every kind of float32 a training run can hold, including NaN, -0 and denormals. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = (x / 2 ** 32 - 0.5) * 0.2;
  }
  if (n > 8) {
    out[1] = -0;
    out[2] = 1e-42; // denormal
    out[3] = 3.4028234663852886e38;
    out[4] = Number.NaN;
    out[5] = Number.NEGATIVE_INFINITY;
  }
  return out;
}

export function makeState(options: { units?: number; epoch?: number; globalStep?: number } = {}): CheckpointState {
  const units = options.units ?? 16;
  const shapes: [string, number[]][] = [
    ['dense_Dense1/kernel', [784, units]],
    ['dense_Dense1/bias', [units]],
    ['dense_Dense2/kernel', [units, 10]],
  ];
  let offset = 0;
  const layout = shapes.map(([name, shape]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    const entry = { name, shape, offset, size };
    offset += size;
    return entry;
  });
  const epoch = options.epoch ?? 2;
  const globalStep = options.globalStep ?? 1234;
  return {
    ringtrainVersion: '0.1.0',
    config: CONFIG,
    modelTopology: {
      class_name: 'Sequential',
      config: {
        name: 'sequential_1',
        layers: [
          { class_name: 'Flatten', config: { name: 'flatten_Flatten1', batch_input_shape: [null, 28, 28, 1], dtype: 'float32' } },
          { class_name: 'Dense', config: { name: 'dense_Dense1', units, activation: 'relu', use_bias: true } },
          { class_name: 'Dense', config: { name: 'dense_Dense2', units: 10, activation: 'softmax', use_bias: false } },
        ],
      },
      keras_version: 'tfjs-layers 4.22.0',
      backend: 'tensor_flow.js',
    },
    layout,
    params: values(offset, 1),
    optimizer: {
      name: 'adam',
      hyperParameters: { learningRate: 0.001, beta1: 0.9, beta2: 0.999, epsilon: 1e-7, amsgrad: false },
      step: globalStep,
      state: [
        { name: 'm', shape: [offset], values: values(offset, 2) },
        { name: 'v', shape: [offset], values: values(offset, 3).map(Math.abs) },
      ],
    },
    position: { epoch, stepInEpoch: 17, globalStep, samplesSeen: globalStep * 32 },
    sampler: { seed: 42, shuffle: true },
    rngStates: [{ name: 'dropout', state: Uint8Array.from([1, 2, 3, 4, 250, 251, 252, 253, 0, 0, 0, 7]) }],
    history: [
      { epoch: 0, loss: 0.61, metrics: { accuracy: 0.83 }, validation: { loss: 0.4, metrics: { accuracy: 0.88 } } },
      { epoch: 1, loss: Number.NaN, metrics: { accuracy: 0.9 }, note: 'diverged', extra: [Number.POSITIVE_INFINITY, -1e308] },
    ],
    replicas: 2,
    createdAt: '2025-01-02T03:04:05.678Z',
  };
}

export function bytesOf(a: Float32Array | Uint8Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Runs fn and returns the CheckpointError it throws (failing the test if it throws something else). */
export async function checkpointErrorOf(fn: () => unknown): Promise<CheckpointError> {
  try {
    await fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    return error as CheckpointError;
  }
  throw new Error('expected a CheckpointError, but nothing was thrown');
}

/** Every file of a directory with its bytes, to show that something left them alone. */
export async function snapshotDir(dir: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const name of (await readdir(dir)).sort()) out.set(name, await readFile(path.join(dir, name)));
  return out;
}
