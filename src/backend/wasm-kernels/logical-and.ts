/**
 * LogicalAnd for wasm, wrapping the built-in: for two bool tensors of the same shape (the
 * gradient of clipByValue, so of an LSTM's or GRU's default hardSigmoid, makes two per gate and
 * step) a loop over the heap bytes, 5-20x faster than the built-in on [32, 64]. Other shapes go
 * to the built-in.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { builtinKernel, markOurs, type TensorInfo } from './util.js';

export function logicalAnd(args: { inputs: { a: TensorInfo; b: TensorInfo }; backend: BackendWasm; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { inputs: { a, b }, backend } = args;
  if (a.dtype !== 'bool' || b.dtype !== 'bool' || !tf.util.arraysEqual(a.shape, b.shape)) {
    return builtinKernel(tf.LogicalAnd)({ inputs: { a, b }, backend, attrs: {} }) as TensorInfo;
  }
  const out = backend.makeOutput(a.shape.slice(), 'bool');
  // Views after makeOutput: allocation may grow (and detach) the wasm memory.
  const x = backend.typedArrayFromHeap(a) as Uint8Array;
  const y = backend.typedArrayFromHeap(b) as Uint8Array;
  const z = backend.typedArrayFromHeap(out) as Uint8Array;
  for (let i = 0; i < z.length; i++) z[i] = x[i]! & y[i]!;
  return out;
}

export const logicalAndConfig: tf.KernelConfig = {
  kernelName: tf.LogicalAnd,
  backendName: 'wasm',
  kernelFunc: markOurs(logicalAnd as unknown as tf.KernelFunc),
};
