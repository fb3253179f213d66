/**
 * Convolutions and products as one gather product on the SIMD kernel conv_gather (simd.wat):
 *   out[p, o] = sum over spatial taps s and channels c of in[base(p) + tap(s) + c] * w[s*C + c, o]
 * with the pixel bases and tap offsets given as tables, so strides, dilations and batch
 * rows are only addresses: no patch matrix and no packing of w.
 */
import type * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffset, simdKernels } from './simd.js';
import { dispose, pad4dHW, reshape, type TensorInfo } from './util.js';

export interface GatherGeometry {
  /** in is [images, height, width, channels], already padded so every tap reads inside it. */
  images: number;
  height: number;
  width: number;
  channels: number;
  outHeight: number;
  outWidth: number;
  strideHeight: number;
  strideWidth: number;
  /** Spatial taps as (row, column) offsets in pixels from an output pixel's base. */
  taps: readonly (readonly [number, number])[];
  /**
   * Values read in one run from each tap (default: channels). A filter row's taps are adjacent
   * pixels when the dilation is 1, so one tap per row with a run of KW*channels does the same
   * sum with a third of the loop overhead.
   */
  run?: number;
}

/**
 * Height and width of a convolution's input zero-padded so that every tap of every output pixel
 * reads inside it: the forward padding on top and left, as much as the last taps reach below
 * and right (none where valid padding leaves rows unread).
 */
export function coveringExtent(info: tf.backend_util.Conv2DInfo): { height: number; width: number } {
  const { inHeight, inWidth, outHeight, outWidth, strideHeight, strideWidth } = info;
  const { filterHeight, filterWidth, dilationHeight, dilationWidth, padInfo } = info;
  return {
    height: Math.max(inHeight + padInfo.top, (outHeight - 1) * strideHeight + (filterHeight - 1) * dilationHeight + 1),
    width: Math.max(inWidth + padInfo.left, (outWidth - 1) * strideWidth + (filterWidth - 1) * dilationWidth + 1),
  };
}

/** x (NHWC) zero-padded to its coveringExtent; a shared-data view when no padding is needed. */
export function padToCover(backend: BackendWasm, x: TensorInfo, info: tf.backend_util.Conv2DInfo): TensorInfo {
  const { height, width } = coveringExtent(info);
  const { top, left } = info.padInfo;
  return pad4dHW(backend, x, top, height - info.inHeight - top, left, width - info.inWidth - left);
}

/** Whether conv_gather can produce `outputs` channels here (a multiple of 8, kernels loaded). */
export function gatherFits(backend: BackendWasm, outputs: number): boolean {
  return outputs % 8 === 0 && simdKernels(backend) !== undefined;
}

/**
 * The tables the kernels read: bases (bytes from the input's start to each output pixel's
 * base, padded to a multiple of 4 entries by repeating the last) and taps (bytes from a base to
 * each spatial tap). The caller disposes both.
 */
export function geometryTables(backend: BackendWasm, g: GatherGeometry): { bases: TensorInfo; taps: TensorInfo; pixels: number } {
  const pixels = g.images * g.outHeight * g.outWidth;
  const pixelBytes = g.channels * 4;
  const bases = backend.makeOutput([Math.max(4, Math.ceil(pixels / 4) * 4)], 'int32');
  const baseTable = backend.typedArrayFromHeap(bases) as Int32Array;
  let p = 0;
  for (let n = 0; n < g.images; n++) {
    for (let oh = 0; oh < g.outHeight; oh++) {
      const row = (n * g.height + oh * g.strideHeight) * g.width;
      for (let ow = 0; ow < g.outWidth; ow++) baseTable[p++] = (row + ow * g.strideWidth) * pixelBytes;
    }
  }
  baseTable.fill(baseTable[p - 1] ?? 0, p);
  const taps = backend.makeOutput([g.taps.length], 'int32');
  const tapTable = backend.typedArrayFromHeap(taps) as Int32Array;
  g.taps.forEach(([dh, dw], s) => (tapTable[s] = (dh * g.width + dw) * pixelBytes));
  return { bases, taps, pixels };
}

/** out [images, outHeight, outWidth, N] from in and w [taps*channels, N]. */
export function gatherConv(backend: BackendWasm, input: TensorInfo, w: TensorInfo, g: GatherGeometry): TensorInfo {
  const outputs = w.shape[w.shape.length - 1]!;
  const { bases, taps, pixels } = geometryTables(backend, g);
  const out = backend.makeOutput([g.images, g.outHeight, g.outWidth, outputs], 'float32');
  if (pixels > 0) {
    simdKernels(backend)!.conv_gather(
      heapOffset(backend, input), heapOffset(backend, bases), pixels, heapOffset(backend, taps), g.taps.length,
      g.run ?? g.channels, heapOffset(backend, w), outputs, heapOffset(backend, out));
  }
  dispose(backend, bases, taps);
  return out;
}

/** a [m, k] x b [k, n] (n a multiple of 8) as a gather with one tap. */
export function gatherMatMul(backend: BackendWasm, a: TensorInfo, b: TensorInfo): TensorInfo {
  const [m, k] = a.shape as [number, number];
  const product = gatherConv(backend, a, b, {
    images: 1, height: m, width: 1, channels: k, outHeight: m, outWidth: 1, strideHeight: 1, strideWidth: 1, taps: [[0, 0]],
  });
  const out = reshape(backend, product, [m, b.shape[1]!]);
  dispose(backend, product);
  return out;
}
