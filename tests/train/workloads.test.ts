/** The xor and linear reference workloads, trained through the library with their configs. */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyOverrides, loadRunConfig } from '../../src/config/load.js';
import { train } from '../../src/train/run.js';

const configPath = (name: string) => fileURLToPath(new URL(`../../configs/${name}.json`, import.meta.url));

describe('reference workloads', () => {
  it('xor: classifies all 4 points correctly with 2 replicas', async () => {
    const config = applyOverrides(await loadRunConfig(configPath('xor')), { workers: 2 });
    const summary = await train({ ...config, output: { ...config.output, metricsLog: false } });
    expect(summary.evaluation.on).toBe('train');
    expect(summary.evaluation.samples).toBe(4);
    expect(summary.evaluation.metrics.accuracy).toBe(1);
    expect(summary.epochs).toBe(1000);
    expect(summary.params?.map((p) => p.name)).toEqual(['dense_1/kernel', 'dense_1/bias', 'dense_2/kernel', 'dense_2/bias']);
  });

  it('linear: learns θ0 ≈ 1 and θ1 ≈ 2 with SGD on full batches', async () => {
    const config = applyOverrides(await loadRunConfig(configPath('linear')), { workers: 2 });
    const summary = await train({ ...config, output: { ...config.output, metricsLog: false } });
    const kernel = summary.params!.find((p) => p.name.endsWith('/kernel'))!.values[0]!;
    const bias = summary.params!.find((p) => p.name.endsWith('/bias'))!.values[0]!;
    expect(Math.abs(bias - 1)).toBeLessThan(0.15);
    expect(Math.abs(kernel - 2)).toBeLessThan(0.1);
    expect(summary.epochs).toBe(1000);
  });
});
