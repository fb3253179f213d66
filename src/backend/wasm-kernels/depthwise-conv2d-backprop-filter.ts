/**
 * DepthwiseConv2dNativeBackpropFilter for wasm, which has none.
 *   dW[kh,kw,c,m] = sum_{n,oh,ow} x[n, oh*s+kh*d-pt, ow*s+kw*d-pl, c] * dy[n,oh,ow,c*M+m]
 * Two ways:
 * - 'dwconv': per (n, c) pair this is a correlation of x with dy, so it is one XNNPACK depthwise
 *   convolution over a single "image" with n*c channels: input x as [1, H, W, n*c], filter dy as
 *   [OH, OW, n*c, M], the forward stride as dilation and the forward dilation as stride; its
 *   [KH, KW, n, c*M] result is then summed over n. XNNPACK has no fast kernel for OH*OW taps
 *   and 1000+ channels, so this is ~15x the forward time, but it handles multipliers well.
 * - 'direct': the sum above as a JS loop, taps outermost, channels innermost; ~2 ns per
 *   multiply-add, somewhat faster than 'dwconv' for multiplier 1, much slower for M > 1.
 * - 'shifted': per tap, dy (zero-inserted for stride > 1) padded into place over the padded x,
 *   one same-shape Multiply and one leading-axes Sum (XNNPACK pooling): three passes over x per
 *   tap, 2-3x faster than the others for multiplier 1, stride 1 and larger images.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { sum } from './sum.js';
import { conv2dExplicit, dispose, markOurs, padOrCrop4dHW, reshape, runWasm, transpose, zeroInsert, type TensorInfo } from './util.js';

export type DepthwiseFilterMethod = 'dwconv' | 'direct' | 'shifted';
let forced: DepthwiseFilterMethod | undefined;

/** For tests and measurements: always use one method (undefined restores the heuristic). */
export function forceDepthwiseFilterMethod(method: DepthwiseFilterMethod | undefined): void {
  forced = method;
}

export function depthwiseConv2dNativeBackpropFilter(args: {
  inputs: { x: TensorInfo; dy: TensorInfo };
  backend: BackendWasm;
  attrs: tf.DepthwiseConv2dNativeBackpropFilterAttrs;
}): TensorInfo {
  const { inputs: { x, dy }, backend, attrs } = args;
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs;
  const info = tf.backend_util.computeConv2DInfo(
    x.shape as [number, number, number, number], filterShape, strides, dilations, pad, dimRoundingMode, true);
  const { batchSize: n, inHeight, inWidth, inChannels: c, outHeight, outWidth, filterHeight, filterWidth } = info;
  const { strideHeight, strideWidth, dilationHeight, dilationWidth } = info;
  const m = filterShape[3];
  const method = forced ?? chooseMethod(info, m);
  if (method === 'direct') return direct(backend, x, dy, info, m);
  if (method === 'shifted') return shifted(backend, x, dy, info, m);

  const xT = transpose(backend, x, [1, 2, 0, 3]); // [H, W, n, c]
  const x1 = reshape(backend, xT, [1, inHeight, inWidth, n * c]);
  const dyT = transpose(backend, dy, [1, 2, 0, 3]); // [OH, OW, n, c*M]
  const f = reshape(backend, dyT, [outHeight, outWidth, n * c, m]);
  dispose(backend, xT, dyT);
  const top = info.padInfo.top;
  const left = info.padInfo.left;
  // Output rows kh = 0..KH-1 read x rows kh*d - top + oh*s for oh < OH; pad or crop the bottom
  // so that exactly KH rows come out (likewise for columns).
  const bottom = (filterHeight - 1) * dilationHeight + (outHeight - 1) * strideHeight + 1 - inHeight - top;
  const right = (filterWidth - 1) * dilationWidth + (outWidth - 1) * strideWidth + 1 - inWidth - left;
  const g = conv2dExplicit(backend, x1, f, { top, bottom, left, right }, [dilationHeight, dilationWidth],
    [strideHeight, strideWidth], true); // [1, KH, KW, n*c*M]
  dispose(backend, x1, f);

  // Sum over n: g is [KH*KW, n, c*M]; small, so plain JS.
  const taps = filterHeight * filterWidth;
  const cm = c * m;
  const out = backend.makeOutput([filterHeight, filterWidth, c, m], 'float32');
  const src = backend.typedArrayFromHeap(g) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  for (let t = 0; t < taps; t++) {
    for (let k = 0; k < cm; k++) {
      let s = 0;
      for (let b = 0; b < n; b++) s += src[(t * n + b) * cm + k]!;
      dst[t * cm + k] = s;
    }
  }
  dispose(backend, g);
  return out;
}

/**
 * Measured on batch 32 (ms; forward in brackets): 26x26x32 3x3: dwconv 20, direct 14, shifted
 * 6.4 (1.2); 13x13x64: 9.4 / 6.6 / 2.1 (0.5); 5x5x64: 0.84 / 0.63 / 1.1; multiplier 2 or
 * stride 2: dwconv best (shifted pays its per-tap passes over a bigger or repeated input).
 */
function chooseMethod(info: tf.backend_util.Conv2DInfo, m: number): DepthwiseFilterMethod {
  if (m > 1 || info.strideHeight > 1 || info.strideWidth > 1) return 'dwconv';
  return info.outHeight * info.outWidth >= 64 ? 'shifted' : 'direct';
}

function shifted(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo, m: number): TensorInfo {
  const { batchSize, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  // The padded input region that taps touch: rows -pt .. (OH-1)*sh + (KH-1)*dh - pt.
  const hp = (OH - 1) * sh + (KH - 1) * dh + 1;
  const wp = (OW - 1) * sw + (KW - 1) * dw + 1;
  const xp0 = padOrCrop4dHW(backend, x, pt, hp - H - pt, pl, wp - W - pl);
  let xp = xp0;
  if (m > 1) {
    // Repeat each input channel m times to line up with dy's c*M+k channels (in JS: the wasm
    // Tile kernel takes ~18 ms for 200K values).
    xp = backend.makeOutput([batchSize, hp, wp, C * m], 'float32');
    const src = backend.typedArrayFromHeap(xp0) as Float32Array;
    const dst = backend.typedArrayFromHeap(xp) as Float32Array;
    for (let i = 0, o = 0; i < src.length; i++) {
      const v = src[i]!;
      for (let k = 0; k < m; k++) dst[o++] = v;
    }
    dispose(backend, xp0);
  }
  const dyd = zeroInsert(backend, dy, sh, sw); // [n, OH*sh, OW*sw, c*M]
  const cm = C * m;
  const acc = new Float32Array(KH * KW * cm);
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const top = kh * dh;
      const left = kw * dw;
      // Row oh*sh of dyd lands on padded-x row kh*dh + oh*sh; its trailing zeros may be cut.
      const placed = padOrCrop4dHW(backend, dyd, top, hp - top - OH * sh, left, wp - left - OW * sw);
      const prod = runWasm(backend, 'Multiply', { a: xp, b: placed });
      dispose(backend, placed);
      const s = sum({ inputs: { x: prod }, backend, attrs: { axis: [0, 1, 2], keepDims: false } });
      dispose(backend, prod);
      acc.set(backend.typedArrayFromHeap(s) as Float32Array, (kh * KW + kw) * cm);
      dispose(backend, s);
    }
  }
  dispose(backend, xp, dyd);
  const out = backend.makeOutput([KH, KW, C, m], 'float32');
  (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

function direct(backend: BackendWasm, x: TensorInfo, dy: TensorInfo, info: tf.backend_util.Conv2DInfo, m: number): TensorInfo {
  const { batchSize, inHeight: H, inWidth: W, inChannels: C, outHeight: OH, outWidth: OW } = info;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw, dilationHeight: dh, dilationWidth: dw } = info;
  const pt = info.padInfo.top;
  const pl = info.padInfo.left;
  const cm = C * m;
  const acc = new Float64Array(KH * KW * cm);
  const xs = backend.typedArrayFromHeap(x) as Float32Array;
  const g = backend.typedArrayFromHeap(dy) as Float32Array;
  // Tap-outer order keeps one tap's accumulators hot; the channel loop is unrolled by four.
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const ao = (kh * KW + kw) * cm;
      // Output columns whose input column ow*sw + kw*dw - pl lies inside the image.
      const owMin = Math.max(0, Math.ceil((pl - kw * dw) / sw));
      const owMax = Math.min(OW, Math.ceil((W + pl - kw * dw) / sw));
      for (let b = 0; b < batchSize; b++) {
        for (let oh = 0; oh < OH; oh++) {
          const ih = oh * sh + kh * dh - pt;
          if (ih < 0 || ih >= H) continue;
          let xo = ((b * H + ih) * W + owMin * sw + kw * dw - pl) * C;
          let go = ((b * OH + oh) * OW + owMin) * cm;
          for (let ow = owMin; ow < owMax; ow++, xo += sw * C, go += cm) {
            if (m === 1) {
              let c = 0;
              for (; c + 4 <= C; c += 4) {
                acc[ao + c] = acc[ao + c]! + xs[xo + c]! * g[go + c]!;
                acc[ao + c + 1] = acc[ao + c + 1]! + xs[xo + c + 1]! * g[go + c + 1]!;
                acc[ao + c + 2] = acc[ao + c + 2]! + xs[xo + c + 2]! * g[go + c + 2]!;
                acc[ao + c + 3] = acc[ao + c + 3]! + xs[xo + c + 3]! * g[go + c + 3]!;
              }
              for (; c < C; c++) acc[ao + c] = acc[ao + c]! + xs[xo + c]! * g[go + c]!;
            } else {
              for (let c = 0; c < C; c++) {
                const xv = xs[xo + c]!;
                const k0 = c * m;
                for (let k = k0; k < k0 + m; k++) acc[ao + k] = acc[ao + k]! + xv * g[go + k]!;
              }
            }
          }
        }
      }
    }
  }
  const out = backend.makeOutput([KH, KW, C, m], 'float32');
  (backend.typedArrayFromHeap(out) as Float32Array).set(acc);
  return out;
}

export const depthwiseConv2dNativeBackpropFilterConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropFilter,
  backendName: 'wasm',
  kernelFunc: markOurs(depthwiseConv2dNativeBackpropFilter as unknown as tf.KernelFunc),
};
