/**
 * Add for wasm, wrapping the built-in one. Adding a per-channel bias to an activation (every
 * conv layer's forward pass) goes through the built-in's general broadcasting loop, 5x slower
 * than a same-shape add. Here the bias is first repeated to the activation's shape (by doubling
 * copies) and the built-in same-shape add does the rest: the same IEEE sums, NaN included.
 * With a multiple of 4 channels the SIMD kernel bias_add (simd.wat) does it in one pass instead.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffset, simdKernels } from './simd.js';
import { builtinKernel, dispose, markOurs, type TensorInfo } from './util.js';

/** Smaller inputs stay on the built-in, where the extra buffer would not pay off. */
const MIN_SIZE = 16384;

/** True when `bias` holds one value per channel (last axis) of the larger `x`. */
function isChannelBias(x: TensorInfo, bias: TensorInfo): boolean {
  const channels = x.shape[x.shape.length - 1]!;
  return x.dtype === 'float32' && bias.dtype === 'float32' && x.shape.length >= 2 &&
    tf.util.sizeFromShape(x.shape) >= MIN_SIZE && tf.util.sizeFromShape(bias.shape) === channels &&
    bias.shape.length <= x.shape.length && bias.shape[bias.shape.length - 1] === channels;
}

export function add(args: { inputs: { a: TensorInfo; b: TensorInfo }; backend: BackendWasm; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { inputs: { a, b }, backend } = args;
  const builtin = builtinKernel(tf.Add);
  const [x, bias] = isChannelBias(a, b) ? [a, b] : isChannelBias(b, a) ? [b, a] : [undefined, undefined];
  if (!x || !bias) return builtin({ inputs: { a, b }, backend, attrs: {} }) as TensorInfo;
  const channels = x.shape[x.shape.length - 1]!;
  const simd = simdKernels(backend);
  if (simd && channels % 4 === 0) {
    const out = backend.makeOutput(x.shape.slice(), 'float32');
    simd.bias_add(heapOffset(backend, x), heapOffset(backend, bias), heapOffset(backend, out), tf.util.sizeFromShape(x.shape) / channels, channels);
    return out;
  }
  const tiled = backend.makeOutput(x.shape.slice(), 'float32');
  const t = backend.typedArrayFromHeap(tiled) as Float32Array;
  t.set(backend.typedArrayFromHeap(bias) as Float32Array);
  for (let filled = bias.shape[bias.shape.length - 1]!; filled < t.length; filled *= 2) {
    t.copyWithin(filled, 0, Math.min(filled, t.length - filled));
  }
  // Keep the caller's operand order (IEEE addition commutes, but be literal).
  const out = builtin({ inputs: x === a ? { a: x, b: tiled } : { a: tiled, b: x }, backend, attrs: {} }) as TensorInfo;
  dispose(backend, tiled);
  return out;
}

export const addConfig: tf.KernelConfig = {
  kernelName: tf.Add,
  backendName: 'wasm',
  kernelFunc: markOurs(add as unknown as tf.KernelFunc),
};
