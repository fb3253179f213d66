/**
 * BatchMatMul for wasm, wrapping the built-in one. The built-in runs XNNPACK only for a single
 * matrix product without transposes; with transposeA or transposeB (every dense-layer gradient)
 * it falls back to a naive triple loop. Transposing the operand explicitly first (one cheap
 * pass) keeps the product on XNNPACK.
 *
 * The built-in caches its XNNPACK operator (with b packed as [K, N] weights) under b's data id
 * alone, so one buffer passed as b under two shapes (a reshape, or a transpose that only moves a
 * size-1 axis, both share data) reuses the first shape's operator: wrong results, out-of-bounds
 * reads. Every b therefore goes in with its buffer's own last dimension, or as a fresh copy.
 *
 * Where the product has a multiple of 8 columns it runs on this project's SIMD gather kernel
 * instead (gather.ts): no operator, no cache, and no packing of b, which XNNPACK redoes on every
 * call (~4 ns a value: a dense layer's weights cost more to pack than to multiply at small
 * batches).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { gatherFits, gatherMatMul } from './gather.js';
import { builtinKernel, dispose, markOurs, transpose, type TensorInfo } from './util.js';

function batchOf(shape: number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length - 2; i++) n *= shape[i]!;
  return n;
}

/** The last two axes swapped, as a 3-d [batch, cols, rows] tensor. */
function swapLastTwo(backend: BackendWasm, x: TensorInfo): TensorInfo {
  const r = x.shape[x.shape.length - 2]!;
  const c = x.shape[x.shape.length - 1]!;
  const x3 = { dataId: x.dataId, shape: [batchOf(x.shape), r, c], dtype: x.dtype };
  return transpose(backend, x3, [0, 2, 1]);
}

/** a x b for 2-d float32 a and b, on XNNPACK whatever the transposes. */
export function matMul2d(backend: BackendWasm, a: TensorInfo, b: TensorInfo, transposeA = false, transposeB = false): TensorInfo {
  const out = batchMatMul({ inputs: { a, b }, backend, attrs: { transposeA, transposeB } });
  return { dataId: out.dataId, shape: out.shape.slice(-2), dtype: out.dtype };
}

/** b itself if its shape splits its buffer as the buffer's own shape does ([K, N] by the last dim), else a copy. */
function canonicalWeights(backend: BackendWasm, b: TensorInfo): TensorInfo {
  const stored = backend.dataIdMap.get(b.dataId)!.shape;
  if (stored[stored.length - 1] === b.shape[b.shape.length - 1]) return b;
  const copy = backend.makeOutput(b.shape.slice(), b.dtype);
  (backend.typedArrayFromHeap(copy) as Float32Array).set(backend.typedArrayFromHeap(b) as Float32Array);
  return copy;
}

export function batchMatMul(args: {
  inputs: { a: TensorInfo; b: TensorInfo };
  backend: BackendWasm;
  attrs: tf.BatchMatMulAttrs;
}): TensorInfo {
  const { inputs: { a, b }, backend, attrs } = args;
  const builtin = builtinKernel(tf.BatchMatMul);
  const { transposeA, transposeB } = attrs;
  const xnnpackEligible = batchOf(a.shape) === 1 && batchOf(b.shape) === 1 && a.dtype === 'float32' && b.dtype === 'float32';
  if (!xnnpackEligible) {
    return builtin({ inputs: { a, b }, backend, attrs: attrs as unknown as tf.NamedAttrMap }) as TensorInfo;
  }
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const rows = transposeA ? a.shape[a.shape.length - 1]! : a.shape[a.shape.length - 2]!;
  const cols = transposeB ? b.shape[b.shape.length - 2]! : b.shape[b.shape.length - 1]!;
  // Only explicit transposes: a transposed product (packing the smaller operand) was tried and
  // dropped after it hit the operator-cache problem above (xor model, [n, 1] operand).
  const a2 = transposeA ? swapLastTwo(backend, a) : a;
  const b1 = transposeB ? swapLastTwo(backend, b) : b;
  if (gatherFits(backend, cols)) {
    const inner = b1.shape[b1.shape.length - 2]!;
    const product = gatherMatMul(backend, { ...a2, shape: [rows, inner] }, { ...b1, shape: [inner, cols] });
    if (a2 !== a) dispose(backend, a2);
    if (b1 !== b) dispose(backend, b1);
    return { dataId: product.dataId, shape: [...outer, rows, cols], dtype: product.dtype };
  }
  const b2 = canonicalWeights(backend, b1);
  const out = builtin({ inputs: { a: a2, b: b2 }, backend, attrs: { transposeA: false, transposeB: false } }) as TensorInfo;
  if (a2 !== a) dispose(backend, a2);
  if (b1 !== b) dispose(backend, b1);
  if (b2 !== b1) dispose(backend, b2);
  // The built-in reports a 3-d result; keep the caller's rank as it would have.
  return { dataId: out.dataId, shape: [...outer, rows, cols], dtype: out.dtype };
}

export const batchMatMulConfig: tf.KernelConfig = {
  kernelName: tf.BatchMatMul,
  backendName: 'wasm',
  kernelFunc: markOurs(batchMatMul as unknown as tf.KernelFunc),
};
