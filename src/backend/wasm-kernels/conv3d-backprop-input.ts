/**
 * Conv3DBackpropInputV2 for wasm, replacing the built-in, which returns wrong values (the input
 * gradient of a conv3d layer was off by up to 0.8 against the cpu backend on a 2x2x2 kernel,
 * stride 1, valid padding). A scatter in plain JS over the heap: every output position adds
 * filter · dy into the input positions its window covered, accumulated in float64.
 * Conv3D's gradient uses no dilations, so there are none here either.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { forEachConv3dTap } from './conv3d-taps.js';
import { markOurs, type TensorInfo } from './util.js';

export function conv3DBackpropInput(args: {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: BackendWasm;
  attrs: { strides: [number, number, number]; pad: 'valid' | 'same'; inputShape: [number, number, number, number, number] };
}): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs: { strides, pad, inputShape } } = args;
  const info = tf.backend_util.computeConv3DInfo(inputShape, filter.shape as [number, number, number, number, number], strides, 1, pad);
  const out = backend.makeOutput(inputShape, 'float32');
  // Views after makeOutput: allocation may grow (and detach) the wasm memory.
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const f = backend.typedArrayFromHeap(filter) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const acc = new Float64Array(dst.length);
  const { inChannels, outChannels } = info;
  forEachConv3dTap(info, (x0, f0, g0) => {
    for (let ci = 0; ci < inChannels; ci++) {
      let sum = 0;
      const fc = f0 + ci * outChannels;
      for (let co = 0; co < outChannels; co++) sum += f[fc + co]! * g[g0 + co]!;
      acc[x0 + ci] = acc[x0 + ci]! + sum;
    }
  });
  dst.set(acc);
  return out;
}

export const conv3DBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv3DBackpropInputV2,
  backendName: 'wasm',
  kernelFunc: markOurs(conv3DBackpropInput as unknown as tf.KernelFunc),
};
