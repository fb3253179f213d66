import { describe, expect, it } from 'vitest';
import { linearData, xorData } from '../../src/data/sources/synthetic.js';
import { loadData } from '../../src/data/load-data.js';
import { ConfigError } from '../../src/errors.js';

function values(buffer: SharedArrayBuffer): number[] {
  return [...new Float32Array(buffer)];
}

/** Ordinary least squares y = a x + b. */
function fit(x: Float32Array, y: Float32Array): { slope: number; intercept: number } {
  const n = x.length;
  let sx = 0;
  let sy = 0;
  for (let i = 0; i < n; i++) {
    sx += x[i]!;
    sy += y[i]!;
  }
  const mx = sx / n;
  const my = sy / n;
  let sxy = 0;
  let sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i]! - mx) * (y[i]! - my);
    sxx += (x[i]! - mx) ** 2;
  }
  const slope = sxy / sxx;
  return { slope, intercept: my - slope * mx };
}

describe('xor', () => {
  it('is the four points, train and test', async () => {
    const data = await loadData({ source: 'xor', samples: 1000 }, { seed: 7 });
    expect(data.classes).toBeUndefined();
    for (const ds of [data.train, data.test!]) {
      expect(ds.size).toBe(4);
      expect(ds.featureShape).toEqual([2]);
      expect(ds.labelShape).toEqual([1]);
      expect(ds.featureType).toBe('float32');
      expect(ds.featureScale).toBe(1);
      expect(values(ds.features)).toEqual([0, 0, 0, 1, 1, 0, 1, 1]);
      expect(values(ds.labels)).toEqual([0, 1, 1, 0]);
    }
    expect(data.train.name).toBe('xor/train');
    expect(data.test!.name).toBe('xor/test');
    expect(xorData().labels).toEqual(Float32Array.from([0, 1, 1, 0]));
  });
});

describe('linear', () => {
  it('defaults to 100 points of shape [1] → [1], train and test differ', async () => {
    const data = await loadData({ source: 'linear' }, { seed: 1 });
    expect(data.classes).toBeUndefined();
    expect(data.train.size).toBe(100);
    expect(data.test!.size).toBe(100);
    expect(data.train.featureShape).toEqual([1]);
    expect(data.train.labelShape).toEqual([1]);
    expect(data.train.featureType).toBe('float32');
    expect(values(data.train.features)).not.toEqual(values(data.test!.features));
  });

  it('same seed → same data; different seed → different data', async () => {
    const a = await loadData({ source: 'linear', samples: 50 }, { seed: 42 });
    const b = await loadData({ source: 'linear', samples: 50 }, { seed: 42 });
    const c = await loadData({ source: 'linear', samples: 50 }, { seed: 43 });
    expect(values(a.train.features)).toEqual(values(b.train.features));
    expect(values(a.train.labels)).toEqual(values(b.train.labels));
    expect(values(a.test!.labels)).toEqual(values(b.test!.labels));
    expect(values(a.train.features)).not.toEqual(values(c.train.features));
    expect(values(a.test!.features)).not.toEqual(values(c.test!.features));
  });

  it('least squares recovers slope 2 and intercept 1', () => {
    for (const seed of [1, 2, 3]) {
      const { features, labels } = linearData(5000, seed, 0);
      const { slope, intercept } = fit(features, labels);
      // Standard errors with n = 5000 and unit noise are about 0.014.
      expect(Math.abs(slope - 2)).toBeLessThan(0.08);
      expect(Math.abs(intercept - 1)).toBeLessThan(0.08);
    }
    // The default 100 points are still roughly on the line.
    const { features, labels } = linearData(100, 1, 0);
    const { slope, intercept } = fit(features, labels);
    expect(Math.abs(slope - 2)).toBeLessThan(0.5);
    expect(Math.abs(intercept - 1)).toBeLessThan(0.5);
  });

  it('x is standard normal', () => {
    const { features } = linearData(20000, 9, 1);
    const mean = features.reduce((a, b) => a + b, 0) / features.length;
    const variance = features.reduce((a, b) => a + (b - mean) ** 2, 0) / features.length;
    expect(Math.abs(mean)).toBeLessThan(0.05);
    expect(Math.abs(variance - 1)).toBeLessThan(0.05);
  });

  it('trainLimit/testLimit take the first samples; bad counts are config errors', async () => {
    const full = await loadData({ source: 'linear', samples: 30 }, { seed: 5 });
    const cut = await loadData({ source: 'linear', samples: 30, trainLimit: 10, testLimit: 3 }, { seed: 5 });
    expect(cut.train.size).toBe(10);
    expect(cut.test!.size).toBe(3);
    expect(values(cut.train.labels)).toEqual(values(full.train.labels).slice(0, 10));
    await expect(loadData({ source: 'linear', samples: 0 }, { seed: 1 })).rejects.toThrow(ConfigError);
    await expect(loadData({ source: 'linear', trainLimit: 2.5 }, { seed: 1 })).rejects.toThrow(
      'data.trainLimit: expected a whole number of at least 1, found 2.5',
    );
  });
});
