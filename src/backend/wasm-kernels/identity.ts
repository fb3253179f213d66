/**
 * Identity for wasm, replacing the built-in one, which copies the data. TF.js clones every tensor
 * it saves for the backward pass (engine.clone runs Identity), so a training step copied each
 * activation once more. Tensors are immutable and the wasm backend already reference-counts
 * shared data (its Reshape shares), so this shares like the cpu backend's Identity. Cast to the
 * tensor's own dtype (a ReLU gradient casts its float32 step every time) shares the same way,
 * as the cpu backend's Cast does. The built-in Cast to bool also truncates (-2 became 254), so
 * that cast is done here: any nonzero value (NaN included) is true, as on cpu and in TF.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { builtinKernel, markOurs, type TensorInfo } from './util.js';

export function identity(args: { inputs: { x: TensorInfo }; backend: BackendWasm; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { inputs: { x }, backend } = args;
  if (x.dtype === 'string') return builtinKernel(tf.Identity)({ inputs: { x }, backend, attrs: {} }) as TensorInfo;
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape.slice(), dtype: x.dtype };
}

export const identityConfig: tf.KernelConfig = {
  kernelName: tf.Identity,
  backendName: 'wasm',
  kernelFunc: markOurs(identity as unknown as tf.KernelFunc),
};

export function cast(args: { inputs: { x: TensorInfo }; backend: BackendWasm; attrs: tf.CastAttrs }): TensorInfo {
  const { inputs: { x }, backend, attrs } = args;
  if (attrs.dtype === x.dtype) return identity({ inputs: { x }, backend });
  if (attrs.dtype === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32')) {
    const out = backend.makeOutput(x.shape, 'bool');
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  return builtinKernel(tf.Cast)({ inputs: { x }, backend, attrs: attrs as unknown as tf.NamedAttrMap }) as TensorInfo;
}

export const castConfig: tf.KernelConfig = {
  kernelName: tf.Cast,
  backendName: 'wasm',
  kernelFunc: markOurs(cast as unknown as tf.KernelFunc),
};
