/**
 * Several processes equal one: 20 steps of the mnist-mlp shape and of a small CNN trained as
 * 1 process x 1 thread, 1 x 2, 2 x 1 and 2 x 2 end with the same weights (1e-5 relative);
 * every process of a world ends with bitwise the same weights, and a second run of 2 x 1
 * is bitwise equal to the first. The processes are real (node), joined over TCP on loopback.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bitwiseEqual, mlpEquivalenceConfig, relativeDifference } from '../helpers/equivalence.js';
import { freePort, killAll, root, start } from '../helpers/processes.js';

const script = join(root, 'tests/helpers/world-train.mjs');

interface RankResult {
  rank: number;
  params: Float32Array;
  loss: number;
  samples: number;
  steps: number;
}

const mlp = { ...mlpEquivalenceConfig, name: 'mlp-world' };

const cnn = {
  name: 'cnn-world',
  model: {
    inputShape: [8, 8, 1],
    layers: [
      { type: 'conv2d', filters: 8, kernelSize: 3, activation: 'relu' },
      { type: 'maxPooling2d', poolSize: 2 },
      { type: 'flatten' },
      { type: 'dense', units: 10, activation: 'softmax' },
    ],
  },
  data: { source: 'embedded-mnist' },
  loss: 'sparseCategoricalCrossentropy',
  optimizer: { name: 'adam', learningRate: 0.01 },
  training: { epochs: 1, batchSize: 10, seed: 9 },
  backend: 'wasm',
  output: { metricsLog: false },
};

async function trainWorld(config: object, samples: number, shape: number[], processes: number, workers: number): Promise<RankResult[]> {
  const port = await freePort();
  const ranks = Array.from({ length: processes }, (_, rank) =>
    start(process.execPath, [script, JSON.stringify({ config, samples, shape, workers, rank, worldSize: processes, port, dataSeed: 1 })]),
  );
  const codes = await Promise.all(ranks.map((r) => r.exited(90_000)));
  codes.forEach((code, rank) => expect(code, `rank ${rank}: ${ranks[rank]!.stderr()}`).toBe(0));
  return ranks.map((r) => {
    const result = JSON.parse(r.stdout().trim().split('\n').pop()!) as Omit<RankResult, 'params'> & { params: string };
    const bytes = Buffer.from(result.params, 'base64');
    return { ...result, params: new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4) };
  });
}

afterEach(killAll);

describe.each([
  { name: 'mnist-mlp shape', config: mlp, samples: 630, shape: [28, 28, 1] },
  { name: 'a small CNN', config: cnn, samples: 195, shape: [8, 8, 1] },
])('several processes equal one: $name', ({ config, samples, shape }) => {
  it('1x1, 1x2, 2x1 and 2x2 (processes x threads) agree within 1e-5 after 20 steps; every rank holds the same bits; 2x1 repeats bitwise', async () => {
    const worlds: [number, number][] = [
      [1, 1],
      [1, 2],
      [2, 1],
      [2, 2],
    ];
    const results: RankResult[][] = [];
    for (const [processes, workers] of worlds) results.push(await trainWorld(config, samples, shape, processes, workers));
    const reference = results[0]![0]!;
    expect(reference.steps).toBe(20);
    for (const [i, ranks] of results.entries()) {
      for (const rank of ranks) {
        expect(bitwiseEqual(rank.params, ranks[0]!.params), `world ${worlds[i]}: rank ${rank.rank} differs from rank 0`).toBe(true);
        // Every rank reports the epoch of the whole world.
        expect(rank.samples).toBe(samples);
        expect(rank.steps).toBe(20);
        expect(Math.abs(rank.loss - reference.loss)).toBeLessThan(1e-5 * reference.loss);
      }
      expect(relativeDifference(ranks[0]!.params, reference.params), `world ${worlds[i]}`).toBeLessThan(1e-5);
    }
    // The same world again: bitwise the same weights.
    const again = await trainWorld(config, samples, shape, 2, 1);
    expect(bitwiseEqual(again[0]!.params, results[2]![0]!.params)).toBe(true);
  });
});
