/**
 * Conv2DBackpropInput for wasm, replacing the built-in one (a plain C++ loop, up to ten times
 * slower than the forward Conv2D). Two ways, both ending in XNNPACK:
 * - 'conv': the forward convolution of dy (zero-inserted for stride > 1) with the filter flipped
 *   in space and its in/out channels swapped, padded by the complement of the forward padding.
 *   Pays for the padding border (and the inserted zeros), so best on large images.
 * - 'col2im': cols = dy W^T [n*OH*OW, KH*KW*ci] as one matrix product, then a scatter-add of
 *   the patches into dx. Exactly the useful multiply-adds; best on small images or strides.
 * - 'taps' (stride 1): one product per filter tap, shifted into place and summed in wasm.
 *   Exactly the useful multiply-adds and no JS loop; best for valid padding with many channels.
 * - 'gather': the col2im form on this project's SIMD kernels (simd.wat): cols = dy W^T as a gather
 *   product (no packing), then a SIMD scatter-add. Taken wherever it fits (KH*KW*ci a multiple
 *   of 8, ci of 4): on the mnist-cnn's layers it beats the XNNPACK forms above.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { matMul2d } from './batch-mat-mul.js';
import { coveringExtent, gatherFits, gatherMatMul, geometryTables } from './gather.js';
import { col2im } from './im2col.js';
import { heapOffset, simdKernels } from './simd.js';
import { conv2dExplicit, dispose, markOurs, padOrCrop4dHW, reshape, runWasm, slice4dHW, transpose, zeroInsert, type TensorInfo } from './util.js';

export type BackpropInputMethod = 'conv' | 'col2im' | 'taps' | 'gather';
let forced: BackpropInputMethod | undefined;

/** For tests and measurements: always use one method (undefined restores the heuristic). */
export function forceBackpropInputMethod(method: BackpropInputMethod | undefined): void {
  forced = method;
}

/** W[kh,kw,ci,co] -> Wf[KH-1-kh, KW-1-kw, co, ci], in one pass (filters are small). */
export function flipSwapFilter(backend: BackendWasm, filter: TensorInfo): TensorInfo {
  const [kh, kw, ci, co] = filter.shape as [number, number, number, number];
  const out = backend.makeOutput([kh, kw, co, ci], 'float32');
  const src = backend.typedArrayFromHeap(filter) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s0 = (i * kw + j) * ci * co;
      const d0 = ((kh - 1 - i) * kw + (kw - 1 - j)) * co * ci;
      for (let a = 0; a < ci; a++) {
        for (let b = 0; b < co; b++) dst[d0 + b * ci + a] = src[s0 + a * co + b]!;
      }
    }
  }
  return out;
}

export function conv2DBackpropInput(args: {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: BackendWasm;
  attrs: tf.Conv2DBackpropInputAttrs;
}): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs } = args;
  const { strides, pad, dataFormat, dimRoundingMode, inputShape } = attrs;
  const format = tf.backend_util.convertConv2DDataFormat(dataFormat);
  const info = tf.backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, 1, pad, dimRoundingMode, false, format);
  const channelsLast = format === 'channelsLast';
  const dyNhwc = channelsLast ? dy : transpose(backend, dy, [0, 2, 3, 1]);
  const gatherable = gatherFits(backend, info.filterHeight * info.filterWidth * info.inChannels) && info.inChannels % 4 === 0;
  const method = forced ?? (gatherable ? 'gather' : chooseMethod(info));
  const dx = method === 'gather' && gatherable ? viaGather(backend, dyNhwc, filter, info)
    : method === 'conv' ? viaConv(backend, dyNhwc, filter, info)
    : method === 'taps' && info.strideHeight === 1 && info.strideWidth === 1 ? viaTaps(backend, dyNhwc, filter, info)
      : viaCol2im(backend, dyNhwc, filter, info);
  if (dyNhwc !== dy) dispose(backend, dyNhwc);
  if (channelsLast) return dx;
  const out = transpose(backend, dx, [0, 3, 1, 2]);
  dispose(backend, dx);
  return out;
}

/**
 * The conv form does H*W*(KH*KW*ci*co) multiply-adds per image (the zeros of the padding and of
 * the zero insertion included), the matrix forms OH*OW*(KH*KW*ci*co). 'taps' then adds
 * KH*KW shifted copies of dx in wasm, worth it once the conv form's border exceeds ~20% and the
 * per-tap products are wide enough (ci >= 8) for XNNPACK; 'col2im' pays a JS scatter-add of
 * OH*OW*KH*KW*ci values, each costing about as much as 40 XNNPACK multiply-adds (measured).
 */
function chooseMethod(info: tf.backend_util.Conv2DInfo): BackpropInputMethod {
  const { inHeight, inWidth, outHeight, outWidth, outChannels, inChannels, strideHeight, strideWidth } = info;
  const convArea = inHeight * inWidth;
  const usefulArea = outHeight * outWidth;
  if (strideHeight === 1 && strideWidth === 1 && inChannels >= 8 && convArea > 1.2 * usefulArea) return 'taps';
  return usefulArea * (outChannels + 40) < convArea * outChannels ? 'col2im' : 'conv';
}

function viaConv(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const wf = flipSwapFilter(backend, filter);
  const dyd = zeroInsert(backend, dy, strideHeight, strideWidth); // [n, OH*sh, OW*sw, co]
  const top = filterHeight - 1 - info.padInfo.top;
  const left = filterWidth - 1 - info.padInfo.left;
  // Chosen so that the output is exactly H x W (dyd has OH*sh rows, the last sh-1 of them zero).
  const bottom = inHeight - outHeight * strideHeight + info.padInfo.top;
  const right = inWidth - outWidth * strideWidth + info.padInfo.left;
  const dx = conv2dExplicit(backend, dyd, wf, { top, bottom, left, right }, [1, 1], [1, 1]);
  dispose(backend, dyd, wf);
  return dx;
}

function viaGather(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, outChannels, strideHeight, strideWidth, filterHeight, filterWidth } = info;
  const { top, left } = info.padInfo;
  const w2 = reshape(backend, filter, [filterHeight * filterWidth * inChannels, outChannels]);
  const wT = transpose(backend, w2, [1, 0]); // [co, KH*KW*ci]
  const dy2 = reshape(backend, dy, [batchSize * outHeight * outWidth, outChannels]);
  const cols = gatherMatMul(backend, dy2, wT); // [n*OH*OW, KH*KW*ci]
  dispose(backend, w2, wT, dy2);
  // dx with the forward padding around it, so that every tap lands inside; cropped after.
  const { height, width } = coveringExtent(info);
  // One run per filter row: a row's KW taps are adjacent pixels of dx and adjacent in cols.
  const taps: [number, number][] = [];
  for (let kh = 0; kh < filterHeight; kh++) taps.push([kh, 0]);
  const tables = geometryTables(backend, {
    images: batchSize, height, width, channels: inChannels, outHeight, outWidth, strideHeight, strideWidth, taps,
  });
  const padded = backend.makeOutput([batchSize, height, width, inChannels], 'float32');
  (backend.typedArrayFromHeap(padded) as Float32Array).fill(0);
  if (tables.pixels > 0) {
    simdKernels(backend)!.col2im_add(heapOffset(backend, cols), heapOffset(backend, padded), heapOffset(backend, tables.bases),
      tables.pixels, heapOffset(backend, tables.taps), taps.length, filterWidth * inChannels);
  }
  dispose(backend, cols, tables.bases, tables.taps);
  const dx = slice4dHW(backend, padded, top, inHeight, left, inWidth);
  dispose(backend, padded);
  return dx;
}

function viaCol2im(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { filterHeight, filterWidth, inChannels, outChannels } = info;
  const dy2 = reshape(backend, dy, [info.batchSize * info.outHeight * info.outWidth, outChannels]);
  const w2 = reshape(backend, filter, [filterHeight * filterWidth * inChannels, outChannels]);
  const cols = matMul2d(backend, dy2, w2, false, true); // [n*OH*OW, KH*KW*ci]
  dispose(backend, dy2, w2);
  const dx = col2im(backend, cols, {
    batch: info.batchSize, inHeight: info.inHeight, inWidth: info.inWidth, channels: inChannels,
    outHeight: info.outHeight, outWidth: info.outWidth, filterHeight, filterWidth,
    strideHeight: info.strideHeight, strideWidth: info.strideWidth, dilationHeight: 1, dilationWidth: 1,
    padTop: info.padInfo.top, padLeft: info.padInfo.left,
  });
  dispose(backend, cols);
  return dx;
}

/**
 * Stride 1 only: per filter tap, G = dy W[kh,kw]^T [n, OH, OW, ci] on XNNPACK, then dx = the sum
 * of the G shifted to their taps' offsets (PadV2 each, one AddN): only useful multiply-adds and
 * no JS scatter.
 */
function viaTaps(backend: BackendWasm, dy: TensorInfo, filter: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { batchSize, inHeight, inWidth, outHeight, outWidth, filterHeight, filterWidth, inChannels, outChannels } = info;
  const dy2 = reshape(backend, dy, [batchSize * outHeight * outWidth, outChannels]);
  const taps: TensorInfo[] = [];
  for (let kh = 0; kh < filterHeight; kh++) {
    for (let kw = 0; kw < filterWidth; kw++) {
      const top = kh - info.padInfo.top;
      const left = kw - info.padInfo.left;
      const bottom = inHeight - outHeight - top;
      const right = inWidth - outWidth - left;
      // Taps that only ever meet padding contribute nothing.
      if (top >= inHeight || left >= inWidth || -top >= outHeight || -left >= outWidth) continue;
      const wTap = backend.makeOutput([inChannels, outChannels], 'float32');
      const offset = (kh * filterWidth + kw) * inChannels * outChannels;
      (backend.typedArrayFromHeap(wTap) as Float32Array).set(
        (backend.typedArrayFromHeap(filter) as Float32Array).subarray(offset, offset + inChannels * outChannels));
      const g = matMul2d(backend, dy2, wTap, false, true); // [n*OH*OW, ci]
      dispose(backend, wTap);
      const g4 = reshape(backend, g, [batchSize, outHeight, outWidth, inChannels]);
      dispose(backend, g);
      taps.push(padOrCrop4dHW(backend, g4, top, bottom, left, right));
      dispose(backend, g4);
    }
  }
  dispose(backend, dy2);
  if (taps.length === 0) {
    const zeros = backend.makeOutput([batchSize, inHeight, inWidth, inChannels], 'float32');
    (backend.typedArrayFromHeap(zeros) as Float32Array).fill(0);
    return zeros;
  }
  if (taps.length === 1) return taps[0]!;
  // AddN takes its inputs as an array.
  const dx = runWasm(backend, 'AddN', taps as unknown as Record<string, TensorInfo>);
  dispose(backend, ...taps);
  return dx;
}

export const conv2DBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.Conv2DBackpropInput,
  backendName: 'wasm',
  kernelFunc: markOurs(conv2DBackpropInput as unknown as tf.KernelFunc),
};
