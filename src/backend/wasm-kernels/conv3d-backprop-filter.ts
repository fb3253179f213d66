/**
 * Conv3DBackpropFilterV2 for wasm, replacing the built-in, which is wrong with strides > 1 (the
 * kernel gradient of a conv3d layer with strides [1, 2, 1] was off by 0.9 against the cpu
 * backend). Plain JS over the heap: for every output position and kernel tap, the outer product
 * of the input channels it saw with dy's channels, accumulated in float64. Conv3D's gradient
 * uses no dilations.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { forEachConv3dTap } from './conv3d-taps.js';
import { markOurs, type TensorInfo } from './util.js';

export function conv3DBackpropFilter(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: BackendWasm;
  attrs: { strides: [number, number, number]; pad: 'valid' | 'same'; filterShape: [number, number, number, number, number] };
}): TensorInfo {
  const { inputs: { x, dy }, backend, attrs: { strides, pad, filterShape } } = args;
  const info = tf.backend_util.computeConv3DInfo(x.shape as [number, number, number, number, number], filterShape, strides, 1, pad);
  const out = backend.makeOutput(filterShape, 'float32');
  // Views after makeOutput: allocation may grow (and detach) the wasm memory.
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const acc = new Float64Array(dst.length);
  const { inChannels, outChannels } = info;
  forEachConv3dTap(info, (x0, f0, g0) => {
    for (let ci = 0; ci < inChannels; ci++) {
      const v = src[x0 + ci]!;
      const fc = f0 + ci * outChannels;
      for (let co = 0; co < outChannels; co++) acc[fc + co] = acc[fc + co]! + v * g[g0 + co]!;
    }
  });
  dst.set(acc);
  return out;
}

export const conv3DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv3DBackpropFilterV2,
  backendName: 'wasm',
  kernelFunc: markOurs(conv3DBackpropFilter as unknown as tf.KernelFunc),
};
