/** The seeded sequence tasks: labels recomputed from the tokens, determinism, loading by name. */
import { describe, expect, it } from 'vitest';
import { loadData } from '../../src/data/load-data.js';
import { sequenceData } from '../../src/data/sources/sequences.js';

describe('sequence sources', () => {
  it('majority: 16 tokens of 0..9, labelled with their one most frequent token', () => {
    const data = sequenceData('majority', 300, 4, 0);
    expect(data.features.length).toBe(300 * 16);
    const labelsSeen = new Set<number>();
    for (let s = 0; s < 300; s++) {
      const row = Array.from(data.features.subarray(s * 16, (s + 1) * 16));
      expect(row.every((t) => Number.isInteger(t) && t >= 0 && t < 10)).toBe(true);
      const counts = row.reduce((c, t) => c.set(t, (c.get(t) ?? 0) + 1), new Map<number, number>());
      const top = Math.max(...counts.values());
      const leaders = [...counts].filter(([, c]) => c === top).map(([t]) => t);
      expect(leaders).toEqual([data.labels[s]]);
      labelsSeen.add(data.labels[s]!);
    }
    expect(labelsSeen.size).toBe(10);
  });

  it('recall: five distinct keys 10..19 with digits, a query among the keys, labelled with its digit', () => {
    const data = sequenceData('recall', 300, 4, 0);
    for (let s = 0; s < 300; s++) {
      const row = Array.from(data.features.subarray(s * 11, (s + 1) * 11));
      const keys = [0, 2, 4, 6, 8].map((i) => row[i]!);
      expect(new Set(keys).size).toBe(5);
      expect(keys.every((k) => k >= 10 && k < 20)).toBe(true);
      expect([1, 3, 5, 7, 9].every((i) => row[i]! >= 0 && row[i]! < 10)).toBe(true);
      expect(row[2 * keys.indexOf(row[10]!) + 1]).toBe(data.labels[s]);
    }
  });

  it('follows the seed: same seed same data, another seed or split other data; loads by name with a test fifth', async () => {
    expect(sequenceData('recall', 50, 9, 0).features).toEqual(sequenceData('recall', 50, 9, 0).features);
    expect(sequenceData('recall', 50, 9, 0).features).not.toEqual(sequenceData('recall', 50, 10, 0).features);
    expect(sequenceData('recall', 50, 9, 0).features).not.toEqual(sequenceData('recall', 50, 9, 1).features);
    const loaded = await loadData({ source: 'majority', samples: 100 }, { seed: 3 });
    expect([loaded.train.size, loaded.test!.size, loaded.classes]).toEqual([100, 20, 10]);
    expect(loaded.train.featureShape).toEqual([16]);
    const features = new Float32Array(loaded.train.features, 0, 16 * 100);
    expect(features).toEqual(sequenceData('majority', 100, 3, 0).features);
  });
});
