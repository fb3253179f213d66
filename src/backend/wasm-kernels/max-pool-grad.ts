/**
 * MaxPoolGrad for wasm, replacing the built-in one, which took ~9 ms per call on the mnist-cnn
 * (it scans every dy window for every dx element) and picks the last maximum of a window from
 * FLT_MIN up, so windows of all-negative values get no gradient. This one sends each dy value to
 * the first maximum of its window (scanning from -Infinity), as the cpu backend and TF do.
 *
 * The common 2x2, stride-2 case tiling the input runs as a SIMD kernel (simd.wat, ~4x faster);
 * where it cannot (channels not a multiple of 4, or a window it declines) the same case runs
 * branch-free in JavaScript: a window's maximum is taken from the forward
 * output (`output`; max rounds nothing), checked to bound the window and occur in it, and the
 * first position equal to it is found with 0/1 integer masks instead of data-dependent
 * branches, which mispredict about once per window. Windows where the shortcut could differ
 * from TF (a NaN in the window, an all -Infinity window, a non-finite dy, an `output` that is
 * not the window's maximum) take the generic scan.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { heapOffset, simdKernels } from './simd.js';
import { markOurs, type TensorInfo } from './util.js';

interface Geometry {
  H: number;
  W: number;
  C: number;
  OH: number;
  OW: number;
  sh: number;
  sw: number;
  fh: number;
  fw: number;
  pt: number;
  pl: number;
}

/** dx += dy at the first maximum of each window of output pixel (b, oh, ow), channels d0..d1. */
function scanWindow(x: Float32Array, g: Float32Array, dx: Float32Array, k: Geometry, b: number, oh: number, ow: number, d0: number, d1: number): void {
  const { H, W, C, OH, OW, sh, sw, fh, fw, pt, pl } = k;
  const r0 = oh * sh - pt;
  const c0 = ow * sw - pl;
  const rMin = Math.max(0, r0);
  const rMax = Math.min(H, r0 + fh);
  const cMin = Math.max(0, c0);
  const cMax = Math.min(W, c0 + fw);
  const gBase = ((b * OH + oh) * OW + ow) * C;
  for (let d = d0; d < d1; d++) {
    let best = -Infinity;
    let arg = -1;
    for (let r = rMin; r < rMax; r++) {
      for (let c = cMin; c < cMax; c++) {
        const p = ((b * H + r) * W + c) * C + d;
        const v = x[p]!;
        if (v > best) {
          best = v;
          arg = p;
        }
      }
    }
    if (arg >= 0) dx[arg] = dx[arg]! + g[gBase + d]!;
  }
}

export function maxPoolGrad(args: {
  inputs: { dy: TensorInfo; input: TensorInfo; output: TensorInfo };
  backend: BackendWasm;
  attrs: tf.MaxPoolGradAttrs;
}): TensorInfo {
  const { inputs: { dy, input, output }, backend, attrs } = args;
  const { filterSize, strides, pad, dimRoundingMode } = attrs;
  const info = tf.backend_util.computePool2DInfo(
    input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const k: Geometry = {
    H: info.inHeight, W: info.inWidth, C: info.inChannels, OH: info.outHeight, OW: info.outWidth,
    sh: info.strideHeight, sw: info.strideWidth, fh: info.effectiveFilterHeight, fw: info.effectiveFilterWidth,
    pt: info.padInfo.top, pl: info.padInfo.left,
  };
  const { H, W, C, OH, OW } = k;

  const out = backend.makeOutput(input.shape, 'float32');
  // Heap views only after makeOutput, which may grow the wasm memory.
  const x = backend.typedArrayFromHeap(input) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  const y = backend.typedArrayFromHeap(output) as Float32Array;
  const dx = backend.typedArrayFromHeap(out) as Float32Array;

  const tiled = k.fh === 2 && k.fw === 2 && k.sh === 2 && k.sw === 2;
  const simd = simdKernels(backend);
  if (simd && tiled && 2 * OH <= H && 2 * OW <= W && k.pt === 0 && k.pl === 0 && C % 4 === 0) {
    if (2 * OH !== H || 2 * OW !== W) dx.fill(0); // an odd last row or column no window reads
    const status = simd.max_pool_grad_2x2(
      heapOffset(backend, input), heapOffset(backend, output), heapOffset(backend, dy), heapOffset(backend, out),
      info.batchSize, OH, OW, C, H, W);
    if (status === 0) return out;
  }
  // The tiled path writes every element of the windows it handles; anything else accumulates.
  if (!tiled || 2 * OH !== H || 2 * OW !== W || k.pt !== 0 || k.pl !== 0) dx.fill(0);
  for (let b = 0; b < info.batchSize; b++) {
    for (let oh = 0; oh < OH; oh++) {
      const r0 = oh * 2 - k.pt;
      for (let ow = 0; ow < OW; ow++) {
        const c0 = ow * 2 - k.pl;
        if (!tiled || r0 < 0 || c0 < 0 || r0 + 2 > H || c0 + 2 > W) {
          scanWindow(x, g, dx, k, b, oh, ow, 0, C);
          continue;
        }
        const p0 = ((b * H + r0) * W + c0) * C;
        const p1 = p0 + C;
        const p2 = p0 + W * C;
        const p3 = p2 + C;
        const q = ((b * OH + oh) * OW + ow) * C;
        for (let d = 0; d < C; d++) {
          const m = y[q + d]!;
          const gv = g[q + d]!;
          const a0 = x[p0 + d]!;
          const a1 = x[p1 + d]!;
          const a2 = x[p2 + d]!;
          const a3 = x[p3 + d]!;
          const e0 = +(a0 === m);
          const e1 = +(a1 === m);
          const e2 = +(a2 === m);
          const e3 = +(a3 === m);
          // m must bound the window (false for any NaN in it: XNNPACK's max of a window with a
          // NaN can be any of its elements) and occur in it; gv - gv is 0 only for finite gv.
          const bounded = +(a0 <= m) & +(a1 <= m) & +(a2 <= m) & +(a3 <= m);
          if ((bounded & (e0 | e1 | e2 | e3)) === 0 || m === -Infinity || gv - gv !== 0) {
            dx[p0 + d] = 0;
            dx[p1 + d] = 0;
            dx[p2 + d] = 0;
            dx[p3 + d] = 0;
            scanWindow(x, g, dx, k, b, oh, ow, d, d + 1);
            continue;
          }
          const n0 = 1 - e0;
          const n01 = n0 & (1 - e1);
          dx[p0 + d] = gv * e0;
          dx[p1 + d] = gv * (n0 & e1);
          dx[p2 + d] = gv * (n01 & e2);
          dx[p3 + d] = gv * (n01 & (1 - e2) & e3);
        }
      }
    }
  }
  return out;
}

export const maxPoolGradConfig: tf.KernelConfig = {
  kernelName: tf.MaxPoolGrad,
  backendName: 'wasm',
  kernelFunc: markOurs(maxPoolGrad as unknown as tf.KernelFunc),
};
