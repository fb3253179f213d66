/**
 * BatchNormalization across processes: with parallel.syncBatchNorm a world of 2 processes x 2
 * threads equals 1 x 1 within 1e-5 (weights and moving statistics), and every rank of a world
 * ends with bitwise the same weights and moving statistics.
 * The processes are real (node), joined over TCP on loopback.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bitwiseEqual } from '../helpers/equivalence.js';
import { freePort, killAll, root, start } from '../helpers/processes.js';

const script = join(root, 'tests/helpers/world-train.mjs');

const config = (syncBatchNorm: boolean) => ({
  name: 'bn-world',
  model: {
    inputShape: [6, 6, 1],
    layers: [
      // No bias before a normalisation (it cancels): its true gradient is 0, and Adam would turn
      // the float noise around 0 into full steps, different for every reduction order.
      { type: 'conv2d', filters: 4, kernelSize: 3, useBias: false },
      { type: 'batchNormalization', momentum: 0.5 },
      { type: 'flatten' },
      { type: 'dense', units: 10, activation: 'softmax' },
    ],
  },
  data: { source: 'embedded-mnist' },
  loss: 'sparseCategoricalCrossentropy',
  optimizer: { name: 'adam', learningRate: 0.01 },
  // 50 samples at 16: batches of 16, 16, 16 and 2 (with 4 replicas, two get none of the last).
  training: { epochs: 1, batchSize: 16, seed: 4 },
  parallel: { syncBatchNorm },
  output: { metricsLog: false },
});

const floats = (base64: string) => {
  const bytes = Buffer.from(base64, 'base64');
  return new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
};

async function trainWorld(syncBatchNorm: boolean, processes: number, workers: number) {
  const port = await freePort();
  const ranks = Array.from({ length: processes }, (_, rank) =>
    start(process.execPath, [script, JSON.stringify({ config: config(syncBatchNorm), samples: 50, shape: [6, 6, 1], workers, rank, worldSize: processes, port, dataSeed: 2 })]),
  );
  const codes = await Promise.all(ranks.map((r) => r.exited(90_000)));
  codes.forEach((code, rank) => expect(code, `rank ${rank}: ${ranks[rank]!.stderr()}`).toBe(0));
  return ranks.map((r) => {
    const result = JSON.parse(r.stdout().trim().split('\n').pop()!) as { params: string; nonTrainable: string; steps: number };
    return { steps: result.steps, params: floats(result.params), nonTrainable: floats(result.nonTrainable) };
  });
}

const maxDifference = (a: Float32Array, b: Float32Array) => a.reduce((worst, v, i) => Math.max(worst, Math.abs(v - b[i]!)), 0);

afterEach(killAll);

describe('BatchNormalization across processes', () => {
  it('syncBatchNorm: 2 processes x 2 threads equal 1 x 1 within 1e-5; both ranks hold the same bits', async () => {
    const [single] = await trainWorld(true, 1, 1);
    const world = await trainWorld(true, 2, 2);
    expect(single!.steps).toBe(4);
    expect(single!.nonTrainable.length).toBe(8);
    expect(bitwiseEqual(world[1]!.params, world[0]!.params)).toBe(true);
    expect(bitwiseEqual(world[1]!.nonTrainable, world[0]!.nonTrainable)).toBe(true);
    expect(maxDifference(world[0]!.params, single!.params)).toBeLessThan(1e-5);
    expect(maxDifference(world[0]!.nonTrainable, single!.nonTrainable)).toBeLessThan(1e-5);
    // The moving statistics did move from their start (mean 0, variance 1).
    expect(maxDifference(single!.nonTrainable, Float32Array.from([0, 0, 0, 0, 1, 1, 1, 1]))).toBeGreaterThan(1e-2);
  });
});
