/**
 * Add for wasm, wrapping the built-in one. Adding a per-channel bias to an NHWC activation (every
 * conv layer's forward pass) goes through the built-in's general broadcasting loop, 5x slower
 * than a same-shape add. That case runs instead as an XNNPACK 1x1 depthwise convolution with
 * unit weights and the bias as its bias (x * 1 + b, bit-identical to x + b).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { builtinKernel, dispose, markOurs, reshape, runWasm, type TensorInfo } from './util.js';

/** Smaller inputs stay on the built-in, where the convolution's setup would not pay off. */
const MIN_SIZE = 16384;

function isChannelBias(x: TensorInfo, bias: TensorInfo): boolean {
  const channels = x.shape[x.shape.length - 1]!;
  const size = tf.util.sizeFromShape(x.shape);
  return x.dtype === 'float32' && bias.dtype === 'float32' && x.shape.length >= 2 && x.shape.length <= 4 && size >= MIN_SIZE &&
    tf.util.sizeFromShape(bias.shape) === channels && bias.shape.length <= x.shape.length &&
    bias.shape[bias.shape.length - 1] === channels;
}

export function add(args: { inputs: { a: TensorInfo; b: TensorInfo }; backend: BackendWasm; attrs?: tf.NamedAttrMap }): TensorInfo {
  const { inputs: { a, b }, backend } = args;
  const [x, bias] = isChannelBias(a, b) ? [a, b] : isChannelBias(b, a) ? [b, a] : [undefined, undefined];
  if (!x || !bias) return builtinKernel(tf.Add)({ inputs: { a, b }, backend, attrs: {} }) as TensorInfo;
  const channels = x.shape[x.shape.length - 1]!;
  const rows = tf.util.sizeFromShape(x.shape) / channels;
  const x4 = reshape(backend, x, [1, 1, rows, channels]);
  // A fresh rank-1 bias: the kernel checks the rank the data was created with, not the view's.
  const b1 = backend.makeOutput([channels], 'float32');
  const ones = backend.makeOutput([1, 1, channels, 1], 'float32');
  (backend.typedArrayFromHeap(b1) as Float32Array).set(backend.typedArrayFromHeap(bias) as Float32Array);
  (backend.typedArrayFromHeap(ones) as Float32Array).fill(1);
  const y = runWasm(backend, 'FusedDepthwiseConv2D', { x: x4, filter: ones, bias: b1 }, {
    strides: [1, 1], pad: 'valid', dilations: [1, 1], dataFormat: 'NHWC', activation: 'linear',
  });
  dispose(backend, x4, b1, ones);
  const out = reshape(backend, y, x.shape.slice());
  dispose(backend, y);
  return out;
}

export const addConfig: tf.KernelConfig = {
  kernelName: tf.Add,
  backendName: 'wasm',
  kernelFunc: markOurs(add as unknown as tf.KernelFunc),
};
