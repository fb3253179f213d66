/**
 * Identity for wasm, replacing the built-in one, which copies the data. TF.js clones every tensor
 * it saves for the backward pass (engine.clone runs Identity), so a training step copied each
 * activation once more. Tensors are immutable and the wasm backend already reference-counts
 * shared data (its Reshape shares), so this shares like the cpu backend's Identity.
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
