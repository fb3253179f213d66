/**
 * Conv2D for wasm, replacing the built-in (XNNPACK) one for NHWC data with a multiple of 8
 * output channels: one gather product (gather.ts) straight from the padded input and the
 * filter as stored, with no repacking of the filter per call as XNNPACK does; 1.4x the
 * built-in on the mnist-cnn's main layer (BENCHMARKS.md). Anything else goes to the built-in.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { coveringExtent, gatherConv, gatherFits, padToCover } from './gather.js';
import { builtinKernel, dispose, markOurs, reshape, type TensorInfo } from './util.js';

export function conv2D(args: { inputs: { x: TensorInfo; filter: TensorInfo }; backend: BackendWasm; attrs: tf.Conv2DAttrs }): TensorInfo {
  const { inputs: { x, filter }, backend, attrs } = args;
  const format = tf.backend_util.convertConv2DDataFormat(attrs.dataFormat);
  const outChannels = filter.shape[3]!;
  if (format !== 'channelsLast' || !gatherFits(backend, outChannels) || x.dtype !== 'float32') {
    return builtinKernel(tf.Conv2D)({ inputs: { x, filter }, backend, attrs: attrs as unknown as tf.NamedAttrMap }) as TensorInfo;
  }
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
    attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode, false, format);
  return convolve(backend, x, filter, info);
}

/** The gather form of a forward NHWC convolution (out channels a multiple of 8). */
export function convolve(backend: BackendWasm, x: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { inChannels, outHeight, outWidth, outChannels, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth, dilationHeight, dilationWidth } = info;
  const padded = padToCover(backend, x, info);
  const { height, width } = coveringExtent(info);
  // Undilated filter rows read as one run each.
  const rowRuns = dilationWidth === 1;
  const taps: [number, number][] = [];
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < (rowRuns ? 1 : filterWidth); kw++) taps.push([kh * dilationHeight, kw * dilationWidth]);
  }
  const w = reshape(backend, filter, [filterHeight * filterWidth * inChannels, outChannels]);
  const out = gatherConv(backend, padded, w, {
    images: info.batchSize, height, width, channels: inChannels, outHeight, outWidth, strideHeight, strideWidth, taps,
    run: rowRuns ? filterWidth * inChannels : inChannels,
  });
  dispose(backend, padded, w);
  return out;
}

export const conv2DConfig: tf.KernelConfig = {
  kernelName: tf.Conv2D,
  backendName: 'wasm',
  kernelFunc: markOurs(conv2D as unknown as tf.KernelFunc),
};
