/**
 * im2col / col2im over NHWC float32 data on the wasm heap, in plain JS. They turn a convolution
 * gradient into one XNNPACK matrix product when that is cheaper than a convolution (small
 * channel counts or small images, where the convolution form pads a lot or packs a big operand).
 * Rows are output pixels (n, oh, ow); columns are (kh, kw, ci), the flattened filter layout.
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import type { TensorInfo } from './util.js';

export interface PatchGeometry {
  batch: number;
  inHeight: number;
  inWidth: number;
  channels: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  dilationHeight: number;
  dilationWidth: number;
  padTop: number;
  padLeft: number;
}

/** cols[(n*OH+oh)*OW+ow, (kh*KW+kw)*C+c] = x[n, oh*sh+kh*dh-pt, ow*sw+kw*dw-pl, c] (0 outside). */
export function im2col(backend: BackendWasm, x: TensorInfo, g: PatchGeometry): TensorInfo {
  const { batch, inHeight: H, inWidth: W, channels: C, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = g;
  const { dilationHeight: dh, dilationWidth: dw, padTop: pt, padLeft: pl } = g;
  const rowLen = KH * KW * C;
  const out = backend.makeOutput([batch * OH * OW, rowLen], 'float32');
  const src = backend.typedArrayFromHeap(x) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  if (C === 1) {
    im2colOneChannel(src, dst, g);
    return out;
  }
  let o = 0;
  for (let n = 0; n < batch; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * sw - pl;
        // With dilation 1 and the row fully inside, a filter row is one contiguous run.
        const contiguous = dw === 1 && iw0 >= 0 && iw0 + KW <= W;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - pt;
          if (ih < 0 || ih >= H) {
            dst.fill(0, o, o + KW * C);
            o += KW * C;
            continue;
          }
          const rowBase = (n * H + ih) * W;
          if (contiguous) {
            const s = (rowBase + iw0) * C;
            const len = KW * C;
            if (len < 16) for (let k = 0; k < len; k++) dst[o + k] = src[s + k]!;
            else dst.set(src.subarray(s, s + len), o);
            o += len;
            continue;
          }
          for (let kw = 0; kw < KW; kw++) {
            const iw = iw0 + kw * dw;
            if (iw < 0 || iw >= W) {
              for (let c = 0; c < C; c++) dst[o + c] = 0;
            } else {
              const s = (rowBase + iw) * C;
              for (let c = 0; c < C; c++) dst[o + c] = src[s + c]!;
            }
            o += C;
          }
        }
      }
    }
  }
  return out;
}

/**
 * One input channel (grayscale first layers): rows of KH*KW values gathered per output pixel
 * cost ~3 ns a value; filling one tap column at a time over a whole output row runs ~4x faster.
 */
function im2colOneChannel(src: Float32Array, dst: Float32Array, g: PatchGeometry): void {
  const { batch, inHeight: H, inWidth: W, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = g;
  const { dilationHeight: dh, dilationWidth: dw, padTop: pt, padLeft: pl } = g;
  const taps = KH * KW;
  for (let n = 0; n < batch; n++) {
    for (let oh = 0; oh < OH; oh++) {
      const rowStart = (n * OH + oh) * OW * taps;
      for (let kh = 0; kh < KH; kh++) {
        const ih = oh * sh + kh * dh - pt;
        const inside = ih >= 0 && ih < H;
        const srcRow = (n * H + ih) * W;
        for (let kw = 0; kw < KW; kw++) {
          const t = rowStart + kh * KW + kw;
          const iw0 = kw * dw - pl;
          const owLo = inside ? Math.min(OW, Math.max(0, Math.ceil(-iw0 / sw))) : OW;
          const owHi = inside ? Math.max(owLo, Math.min(OW, Math.ceil((W - iw0) / sw))) : OW;
          for (let ow = 0; ow < owLo; ow++) dst[t + ow * taps] = 0;
          for (let ow = owLo, s = srcRow + iw0 + owLo * sw; ow < owHi; ow++, s += sw) dst[t + ow * taps] = src[s]!;
          for (let ow = owHi; ow < OW; ow++) dst[t + ow * taps] = 0;
        }
      }
    }
  }
}

/**
 * Patches by filter tap, for filter gradients: from xT = x transposed to [C, H, W, n], returns
 * P[(kh*KW+kw)*C+c, (oh*OW+ow)*n+b] = x[b, oh*sh+kh*dh-pt, ow*sw+kw*dw-pl, c] (0 outside), i.e.
 * [KH*KW*C, OH*OW*n]. With stride 1 each (tap, c, oh) row segment is one contiguous run of xT.
 */
export function tapPatches(backend: BackendWasm, xT: TensorInfo, g: PatchGeometry): TensorInfo {
  const { batch: n, inHeight: H, inWidth: W, channels: C, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = g;
  const { dilationHeight: dh, dilationWidth: dw, padTop: pt, padLeft: pl } = g;
  const rowLen = OH * OW * n;
  const out = backend.makeOutput([KH * KW * C, rowLen], 'float32');
  const src = backend.typedArrayFromHeap(xT) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const segment = OW * n;
  let o = 0;
  for (let kh = 0; kh < KH; kh++) {
    for (let kw = 0; kw < KW; kw++) {
      const iw0 = kw * dw - pl;
      // Output columns whose input column iw0 + ow*sw lies inside the image.
      const owLo = Math.min(OW, Math.max(0, Math.ceil(-iw0 / sw)));
      const owHi = Math.max(owLo, Math.min(OW, Math.ceil((W - iw0) / sw)));
      for (let c = 0; c < C; c++) {
        for (let oh = 0; oh < OH; oh++, o += segment) {
          const ih = oh * sh + kh * dh - pt;
          if (ih < 0 || ih >= H) {
            dst.fill(0, o, o + segment);
            continue;
          }
          if (owLo > 0) dst.fill(0, o, o + owLo * n);
          if (owHi < OW) dst.fill(0, o + owHi * n, o + segment);
          const rowBase = (c * H + ih) * W;
          if (sw === 1) {
            const s0 = (rowBase + iw0 + owLo) * n;
            dst.set(src.subarray(s0, s0 + (owHi - owLo) * n), o + owLo * n);
          } else {
            for (let ow = owLo; ow < owHi; ow++) {
              const s0 = (rowBase + iw0 + ow * sw) * n;
              if (n < 16) for (let b = 0; b < n; b++) dst[o + ow * n + b] = src[s0 + b]!;
              else dst.set(src.subarray(s0, s0 + n), o + ow * n);
            }
          }
        }
      }
    }
  }
  return out;
}

/** The adjoint of im2col: dx[n, ih, iw, c] = sum of the cols entries that im2col read from there. */
export function col2im(backend: BackendWasm, cols: TensorInfo, g: PatchGeometry): TensorInfo {
  const { batch, inHeight: H, inWidth: W, channels: C, outHeight: OH, outWidth: OW } = g;
  const { filterHeight: KH, filterWidth: KW, strideHeight: sh, strideWidth: sw } = g;
  const { dilationHeight: dh, dilationWidth: dw, padTop: pt, padLeft: pl } = g;
  const out = backend.makeOutput([batch, H, W, C], 'float32');
  const src = backend.typedArrayFromHeap(cols) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  dst.fill(0);
  let o = 0;
  for (let n = 0; n < batch; n++) {
    for (let oh = 0; oh < OH; oh++) {
      for (let ow = 0; ow < OW; ow++) {
        const iw0 = ow * sw - pl;
        const contiguous = dw === 1 && iw0 >= 0 && iw0 + KW <= W;
        for (let kh = 0; kh < KH; kh++) {
          const ih = oh * sh + kh * dh - pt;
          if (ih < 0 || ih >= H) {
            o += KW * C;
            continue;
          }
          const rowBase = (n * H + ih) * W;
          if (contiguous) {
            const d = (rowBase + iw0) * C;
            const len = KW * C;
            for (let k = 0; k < len; k++) dst[d + k] = dst[d + k]! + src[o + k]!;
            o += len;
            continue;
          }
          for (let kw = 0; kw < KW; kw++) {
            const iw = iw0 + kw * dw;
            if (iw >= 0 && iw < W) {
              const d = (rowBase + iw) * C;
              for (let c = 0; c < C; c++) dst[d + c] = dst[d + c]! + src[o + c]!;
            }
            o += C;
          }
        }
      }
    }
  }
  return out;
}
