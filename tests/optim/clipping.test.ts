/**
 * Gradient clipping against its formulas on gradients whose norms are known by hand, and the
 * same bits whichever way the vector is cut into replica chunks (N = 1, 2, 3).
 */
import { describe, expect, it } from 'vitest';
import { chunkRange } from '../../src/collective/ring.js';
import { GradientClipper, sumOfSquares, type ChunkedVector } from '../../src/optim/clipping.js';

/**
 * Two tensors: t0 = 3, 4 (norm 5) padded to 20 values with zeros, and t1 = 1, 2, 2 (norm 3)
 * padded to 20 with zeros: 40 values, so 16-float chunks put each tensor across two chunks.
 */
const tensors = [
  { offset: 0, size: 20 },
  { offset: 20, size: 20 },
];
function gradient(): Float32Array {
  const g = new Float32Array(40);
  g.set([3, 4], 18); // the end of t0, across the chunk boundary at 16
  g.set([1, 2, 2], 30);
  return g;
}

/** The vector as N replicas hold it after the reduce-scatter: chunk c valid in slot c only (the rest NaN). */
function chunked(values: Float32Array, parts: number): ChunkedVector {
  const slots = Array.from({ length: parts }, (_, c) => {
    const slot = new Float32Array(values.length).fill(Number.NaN);
    const [from, to] = chunkRange(values.length, parts, c);
    slot.set(values.subarray(from, to), from);
    return slot;
  });
  return { slots, length: values.length, chunk: (c) => chunkRange(values.length, parts, c) };
}

/** Every replica clips its own chunk; the chunks together are the clipped vector. */
function clipAll(clipper: GradientClipper, values: Float32Array, parts: number): Float32Array {
  const vector = chunked(values, parts);
  const out = new Float32Array(values.length);
  for (let c = 0; c < parts; c++) {
    const [from, to] = vector.chunk(c);
    clipper.clip(vector, vector.slots[c]!, from, to, out);
  }
  return out;
}

describe('gradient clipping', () => {
  it('sums squares over chunks held by different replicas', () => {
    for (const parts of [1, 2, 3]) {
      const v = chunked(gradient(), parts);
      expect(sumOfSquares(v, 0, 40)).toBe(34);
      expect(sumOfSquares(v, 0, 20)).toBe(25);
      expect(sumOfSquares(v, 19, 31)).toBe(16 + 1);
    }
  });

  it('clipNorm scales each tensor to the norm when above it (Keras clipnorm)', () => {
    const clipped = clipAll(new GradientClipper({ clipNorm: 2.5 }, tensors), gradient(), 2);
    // t0 has norm 5 > 2.5: halved; t1 has norm 3 > 2.5: times 2.5/3.
    expect(clipped[18]).toBeCloseTo(1.5, 6);
    expect(clipped[19]).toBeCloseTo(2, 6);
    expect(clipped[30]).toBeCloseTo(2.5 / 3, 6);
    expect(clipped[31]).toBeCloseTo(5 / 3, 6);
    const norm = (from: number, to: number) => Math.hypot(...clipped.subarray(from, to));
    expect(norm(0, 20)).toBeCloseTo(2.5, 6);
    expect(norm(20, 40)).toBeCloseTo(2.5, 6);
    // Below the norm a tensor keeps its values (g * c / c in float32).
    const loose = clipAll(new GradientClipper({ clipNorm: 4 }, tensors), gradient(), 3);
    expect(Array.from(loose.subarray(20))).toEqual(Array.from(gradient().subarray(20)));
    expect(loose[18]).toBeCloseTo(3 * 0.8, 6);
  });

  it('globalClipNorm scales the whole gradient to the norm when above it (Keras global_clipnorm, torch clip_grad_norm_)', () => {
    const clipped = clipAll(new GradientClipper({ globalClipNorm: 1 }, tensors), gradient(), 3);
    const scale = 1 / Math.sqrt(34);
    gradient().forEach((g, i) => expect(clipped[i]).toBeCloseTo(g * scale, 7));
    expect(Math.hypot(...clipped)).toBeCloseTo(1, 6);
    // PyTorch's max_norm / (norm + 1e-6) agrees to float32 precision.
    expect(clipped[18]! / 3).toBeCloseTo(1 / (Math.sqrt(34) + 1e-6), 6);
    // Above the norm: unchanged.
    expect(Array.from(clipAll(new GradientClipper({ globalClipNorm: 10 }, tensors), gradient(), 2))).toEqual(Array.from(gradient()));
  });

  it('a non-finite global norm makes the update NaN, as Keras (a skipped or stopped step in ringtrain)', () => {
    const g = gradient();
    g[0] = Infinity;
    expect(Number.isNaN(clipAll(new GradientClipper({ globalClipNorm: 1 }, tensors), g, 1)[30])).toBe(true);
  });

  it('clipValue clips each element to [-v, v] (Keras clipvalue)', () => {
    const g = gradient();
    g[5] = -7;
    const clipped = clipAll(new GradientClipper({ clipValue: 2.5 }, tensors), g, 2);
    expect(clipped[5]).toBe(-2.5);
    expect(clipped[19]).toBe(2.5);
    expect(clipped[18]).toBe(2.5);
    expect(clipped[31]).toBe(2);
  });

  it('gives the same bits for 1, 2 and 3 replicas', () => {
    const g = Float32Array.from({ length: 40 }, (_, i) => Math.sin(i * 1.7) * (i % 7));
    for (const spec of [{ clipNorm: 0.8 }, { globalClipNorm: 2 }, { clipValue: 0.3 }]) {
      const clipper = new GradientClipper(spec, tensors);
      const one = clipAll(clipper, g, 1);
      expect(clipAll(clipper, g, 2)).toEqual(one);
      expect(clipAll(clipper, g, 3)).toEqual(one);
      expect(one).not.toEqual(g);
    }
  });

  it('refuses two clipping options together', () => {
    expect(() => new GradientClipper({ clipNorm: 1, globalClipNorm: 1 }, tensors)).toThrow('only one of clipNorm, clipValue, globalClipNorm may be set, found clipNorm and globalClipNorm');
  });
});
