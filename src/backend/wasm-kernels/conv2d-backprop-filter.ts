/**
 * Conv2DBackpropFilter for wasm, which has none. The filter gradient
 *   dW[kh,kw,ci,co] = sum_{n,oh,ow} x[n, oh*s+kh-pt, ow*s+kw-pl, ci] * dy[n,oh,ow,co]
 * is computed one of two ways, both ending in XNNPACK:
 * - 'conv': a forward convolution with batch <- ci, channels <- n and dy as the filter (spatial
 *   OHxOW, in n, out co), the forward stride becoming the dilation. No patch buffer, but XNNPACK
 *   repacks dy as weights on every call, which dominates when dy is large and ci small.
 * - 'im2col': cols = patches of x [n*OH*OW, KH*KW*ci], dW = dy^T cols as one matrix product;
 *   cheaper when the patch matrix is smaller than dy (few input channels, e.g. a first layer).
 * - 'direct': a SIMD kernel (simd.wat) summing x * dy straight from the tensors, four taps
 *   against eight output channels at a time (out channels a multiple of 8): no patches and no
 *   packing. 5x 'im2col' on the mnist-cnn's first layer and 1.6x 'patches' on its second
 *   (BENCHMARKS.md), so it is taken wherever it fits.
 * - 'patches': the same product the other way round, dW = patches [KH*KW*ci, OH*OW*n] x dy
 *   [OH*OW*n, co], with the result already in filter layout. XNNPACK packs its right operand
 *   (about 4 ns a value, more than the multiply-adds of a small layer), so of the two matrix
 *   forms the one packing the smaller of patches and dy wins; this one also beats 'conv', whose
 *   packing goes through an extra transpose and whose many-tap GEMM runs ~25% slower.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { matMul2d } from './batch-mat-mul.js';
import { coveringExtent, padToCover } from './gather.js';
import { im2col, tapPatches } from './im2col.js';
import { heapOffset, simdKernels } from './simd.js';
import { conv2dExplicit, dispose, markOurs, reshape, transpose, type TensorInfo } from './util.js';

export type BackpropFilterMethod = 'conv' | 'im2col' | 'patches' | 'direct';
let forced: BackpropFilterMethod | undefined;

/** For tests and measurements: always use one method (undefined restores the heuristic). */
export function forceBackpropFilterMethod(method: BackpropFilterMethod | undefined): void {
  forced = method;
}

export function conv2DBackpropFilter(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: BackendWasm;
  attrs: tf.Conv2DBackpropFilterAttrs;
}): TensorInfo {
  const { inputs, backend, attrs } = args;
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
  const info = tf.backend_util.computeConv2DInfo(
    inputs.x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, format);
  const { filterHeight, filterWidth, inChannels, outChannels } = info;
  const taps = filterHeight * filterWidth * inChannels;
  const directFits = format === 'channelsLast' && outChannels % 8 === 0 && simdKernels(backend) !== undefined;
  const method = forced ?? (directFits ? 'direct' : taps < outChannels ? 'im2col' : 'patches');
  if (method === 'direct' && directFits) return viaDirect(backend, inputs.x, inputs.dy, info);
  if (method === 'conv') return viaConv(backend, inputs.x, inputs.dy, info);
  if (method === 'patches') return viaPatches(backend, inputs.x, inputs.dy, info);

  const channelsLast = format === 'channelsLast';
  const x = channelsLast ? inputs.x : transpose(backend, inputs.x, [0, 2, 3, 1]);
  const dy = channelsLast ? inputs.dy : transpose(backend, inputs.dy, [0, 2, 3, 1]);
  const cols = im2col(backend, x, {
    batch: info.batchSize, inHeight: info.inHeight, inWidth: info.inWidth, channels: inChannels,
    outHeight: info.outHeight, outWidth: info.outWidth, filterHeight, filterWidth,
    strideHeight: info.strideHeight, strideWidth: info.strideWidth, dilationHeight: 1, dilationWidth: 1,
    padTop: info.padInfo.top, padLeft: info.padInfo.left,
  });
  const dy2 = reshape(backend, dy, [info.batchSize * info.outHeight * info.outWidth, outChannels]);
  const gT = matMul2d(backend, dy2, cols, true, false); // [co, KH*KW*ci]
  dispose(backend, cols, dy2);
  if (x !== inputs.x) dispose(backend, x);
  if (dy !== inputs.dy) dispose(backend, dy);
  const g = transpose(backend, gT, [1, 0]);
  dispose(backend, gT);
  const out = reshape(backend, g, [filterHeight, filterWidth, inChannels, outChannels]);
  dispose(backend, g);
  return out;
}

function viaDirect(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize, inChannels, outHeight, outWidth, outChannels, filterHeight, filterWidth, strideHeight, strideWidth } = info;
  const padded = padToCover(backend, x, info);
  const { height: paddedHeight, width: paddedWidth } = coveringExtent(info);
  const taps = filterHeight * filterWidth * inChannels;
  const table = backend.makeOutput([taps], 'int32');
  const out = backend.makeOutput([filterHeight, filterWidth, inChannels, outChannels], 'float32');
  // Heap views and offsets only after the last allocation, which may grow the memory.
  const offsets = backend.typedArrayFromHeap(table) as Int32Array;
  for (let kh = 0, t = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      for (let c = 0; c < inChannels; c++, t++) offsets[t] = ((kh * paddedWidth + kw) * inChannels + c) * 4;
    }
  }
  const pixelBytes = inChannels * 4;
  simdKernels(backend)!.conv_filter_grad(
    heapOffset(backend, padded), heapOffset(backend, dy), heapOffset(backend, out), heapOffset(backend, table), taps,
    batchSize, outHeight, outWidth, outChannels,
    strideWidth * pixelBytes, strideHeight * paddedWidth * pixelBytes, paddedHeight * paddedWidth * pixelBytes);
  dispose(backend, padded, table);
  return out;
}

function viaPatches(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const channelsLast = info.dataFormat === 'channelsLast';
  const xT = transpose(backend, x, channelsLast ? [3, 1, 2, 0] : [1, 2, 3, 0]); // [ci, H, W, n]
  const dyT = transpose(backend, dy, channelsLast ? [1, 2, 0, 3] : [2, 3, 0, 1]); // [OH, OW, n, co]
  const patches = tapPatches(backend, xT, {
    batch: info.batchSize, inHeight: info.inHeight, inWidth: info.inWidth, channels: info.inChannels,
    outHeight: info.outHeight, outWidth: info.outWidth, filterHeight: info.filterHeight, filterWidth: info.filterWidth,
    strideHeight: info.strideHeight, strideWidth: info.strideWidth, dilationHeight: 1, dilationWidth: 1,
    padTop: info.padInfo.top, padLeft: info.padInfo.left,
  });
  dispose(backend, xT);
  const dy2 = reshape(backend, dyT, [info.outHeight * info.outWidth * info.batchSize, info.outChannels]);
  dispose(backend, dyT);
  const g = matMul2d(backend, patches, dy2); // [KH*KW*ci, co]
  dispose(backend, patches, dy2);
  const out = reshape(backend, g, [info.filterHeight, info.filterWidth, info.inChannels, info.outChannels]);
  dispose(backend, g);
  return out;
}

function viaConv(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const channelsLast = info.dataFormat === 'channelsLast';
  const xT = transpose(backend, x, channelsLast ? [3, 1, 2, 0] : [1, 2, 3, 0]); // [ci, H, W, n]
  const dyT = transpose(backend, dy, channelsLast ? [1, 2, 0, 3] : [2, 3, 0, 1]); // [OH, OW, n, co]
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Bottom/right padding chosen so the output is exactly KH x KW; negative means rows of x the
  // forward convolution never reached (valid padding with a stride), which get cropped.
  const bottom = (outHeight - 1) * strideHeight + filterHeight - inHeight - top;
  const right = (outWidth - 1) * strideWidth + filterWidth - inWidth - left;
  const g = conv2dExplicit(backend, xT, dyT, { top, bottom, left, right }, [1, 1], [strideHeight, strideWidth]);
  dispose(backend, xT, dyT);
  const out = transpose(backend, g, [1, 2, 0, 3]); // [KH, KW, ci, co]
  dispose(backend, g);
  return out;
}

export const conv2DBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropFilter,
  backendName: 'wasm',
  kernelFunc: markOurs(conv2DBackpropFilter as unknown as tf.KernelFunc),
};
