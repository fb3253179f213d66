/**
 * UnsortedSegmentSum for wasm, which has none; it is the gradient of a gather (embedding
 * layers). out[s, ...] = sum of x[i, ...] over the i with segmentIds[i] = s; ids outside
 * [0, numSegments) are dropped, as in TF. Plain JS over the heap: one pass over x, accumulated
 * in float64 like the cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { markOurs, type TensorInfo } from './util.js';

export function unsortedSegmentSum(args: {
  inputs: { x: TensorInfo; segmentIds: TensorInfo };
  backend: BackendWasm;
  attrs: tf.UnsortedSegmentSumAttrs;
}): TensorInfo {
  const { inputs: { x, segmentIds }, backend, attrs: { numSegments } } = args;
  const idsRank = segmentIds.shape.length;
  const rows = tf.util.sizeFromShape(segmentIds.shape);
  const innerShape = x.shape.slice(idsRank);
  const inner = tf.util.sizeFromShape(innerShape);
  if (tf.util.sizeFromShape(x.shape.slice(0, idsRank)) !== rows) {
    throw new Error(`UnsortedSegmentSum: segmentIds shape ${segmentIds.shape} is not a prefix of x shape ${x.shape}`);
  }
  const out = backend.makeOutput([numSegments, ...innerShape], x.dtype);
  const src = backend.typedArrayFromHeap(x);
  const ids = backend.typedArrayFromHeap(segmentIds);
  const dst = backend.typedArrayFromHeap(out);
  const acc = new Float64Array(numSegments * inner);
  for (let r = 0; r < rows; r++) {
    const s = ids[r]!;
    if (!(s >= 0 && s < numSegments)) continue;
    const o = s * inner;
    const i0 = r * inner;
    for (let k = 0; k < inner; k++) acc[o + k] = acc[o + k]! + src[i0 + k]!;
  }
  dst.set(acc);
  return out;
}

export const unsortedSegmentSumConfig: tf.KernelConfig = {
  kernelName: tf.UnsortedSegmentSum,
  backendName: 'wasm',
  kernelFunc: markOurs(unsortedSegmentSum as unknown as tf.KernelFunc),
};
