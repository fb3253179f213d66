/**
 * Gradient clipping as Keras's optimizer arguments, applied to the averaged gradient after the
 * reduce (so it sees the global gradient, as one replica would). At most one of the three, as
 * Keras allows. Keras's float32 arithmetic, op by op:
 *   clipNorm (per tensor t, tf.clip_by_norm):
 *     n = sqrt(sum over t of g²);  g = g * clipNorm / max(n, clipNorm)
 *   globalClipNorm (Keras global_clipnorm, tf.clip_by_global_norm; PyTorch clip_grad_norm_):
 *     n = sqrt(sum over every tensor of g²);  scale = clipNorm * min(1/n, 1/clipNorm);  g = g * scale
 *     (a non-finite n makes scale NaN, as Keras; PyTorch divides by n + 1e-6 instead of n)
 *   clipValue (tf.clip_by_value): g = min(max(g, -clipValue), clipValue)
 * Sums of squares run in double precision in element order over the whole tensor (or vector),
 * whichever replica owns which chunk: every replica gets the same norm bit for bit, for any N.
 */
import { z } from 'zod';

export interface GradientClippingSpec {
  /** Each tensor's gradient is scaled down to this L2 norm if larger (Keras clipnorm). */
  clipNorm?: number;
  /** Each gradient element is clipped to [-clipValue, clipValue] (Keras clipvalue). */
  clipValue?: number;
  /** The whole gradient is scaled down to this L2 norm if larger (Keras global_clipnorm). */
  globalClipNorm?: number;
}

export const CLIPPING_OPTIONS = ['clipNorm', 'clipValue', 'globalClipNorm'] as const;

const positive = () => z.number({ error: 'a number > 0' }).gt(0, { error: 'a number > 0' });

/** The optimizer fields clipping adds to every optimizer's config (config/schema.ts spreads them in). */
export const clippingFields = {
  clipNorm: positive().optional(),
  clipValue: positive().optional(),
  globalClipNorm: positive().optional(),
};

/** The clipping options set in `spec` (Keras refuses more than one; so does the config). */
export function clippingOptionsSet(spec: GradientClippingSpec): (keyof GradientClippingSpec)[] {
  return CLIPPING_OPTIONS.filter((key) => spec[key] !== undefined);
}

/**
 * The averaged gradient as the reduce-scatter leaves it: chunk c of the flat vector is valid
 * in slots[c] (the replica that owns it), nowhere else.
 */
export interface ChunkedVector {
  readonly slots: readonly Float32Array[];
  readonly length: number;
  /** [from, to) of chunk c. */
  chunk(c: number): readonly [number, number];
}

/** Sum of squares of vector[from, to), in double precision and element order. */
export function sumOfSquares(vector: ChunkedVector, from: number, to: number): number {
  let sum = 0;
  for (let c = 0; c < vector.slots.length && from < to; c++) {
    const [chunkFrom, chunkTo] = vector.chunk(c);
    const end = Math.min(to, chunkTo);
    if (end <= from || chunkFrom > from) continue;
    const slot = vector.slots[c]!;
    for (let i = from; i < end; i++) sum += slot[i]! * slot[i]!;
    from = end;
  }
  return sum;
}

export class GradientClipper {
  private readonly clipNorm: number | undefined;
  private readonly clipValue: number | undefined;
  private readonly globalClipNorm: number | undefined;

  constructor(
    spec: GradientClippingSpec,
    /** The tensors of the flat vector (clipNorm is per tensor). */
    private readonly tensors: readonly { offset: number; size: number }[],
  ) {
    const set = clippingOptionsSet(spec);
    if (set.length > 1) throw new RangeError(`only one of clipNorm, clipValue, globalClipNorm may be set, found ${set.join(' and ')}`);
    const f32 = (v: number | undefined) => (v === undefined ? undefined : Math.fround(v));
    this.clipNorm = f32(spec.clipNorm);
    this.clipValue = f32(spec.clipValue);
    this.globalClipNorm = f32(spec.globalClipNorm);
  }

  /** Whether any clipping is configured. */
  get active(): boolean {
    return this.clipNorm !== undefined || this.clipValue !== undefined || this.globalClipNorm !== undefined;
  }

  /** Whether clip() reads other chunks than its own (then every chunk must be final first). */
  get readsOtherChunks(): boolean {
    return this.clipNorm !== undefined || this.globalClipNorm !== undefined;
  }

  /**
   * Writes the clipped values of chunk [from, to) of `gradient` into out[from, to). `out` may be
   * the owning slot itself only when readsOtherChunks is false.
   */
  clip(gradient: ChunkedVector, own: Float32Array, from: number, to: number, out: Float32Array): void {
    if (this.clipValue !== undefined) {
      const v = this.clipValue;
      for (let i = from; i < to; i++) out[i] = Math.min(Math.max(own[i]!, -v), v);
    } else if (this.globalClipNorm !== undefined) {
      const c = this.globalClipNorm;
      const norm = Math.fround(Math.sqrt(sumOfSquares(gradient, 0, gradient.length)));
      let scale = Math.fround(c * Math.min(Math.fround(1 / norm), Math.fround(1 / c)));
      scale += norm - norm; // NaN for a non-finite norm, as Keras
      for (let i = from; i < to; i++) out[i] = own[i]! * scale;
    } else if (this.clipNorm !== undefined) {
      const c = this.clipNorm;
      for (const t of this.tensors) {
        const start = Math.max(from, t.offset);
        const end = Math.min(to, t.offset + t.size);
        if (start >= end) continue;
        const norm = Math.fround(Math.sqrt(sumOfSquares(gradient, t.offset, t.offset + t.size)));
        const divisor = Math.fround(Math.max(norm, c));
        for (let i = start; i < end; i++) out[i] = Math.fround(own[i]! * c) / divisor;
      }
    } else if (out !== own) {
      out.set(own.subarray(from, to), from);
    }
  }
}
