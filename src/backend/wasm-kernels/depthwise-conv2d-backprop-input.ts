/**
 * DepthwiseConv2dNativeBackpropInput for wasm, which has none. Per channel c the input gradient
 * is a full correlation of dy with the flipped filter, summed over the channel multiplier m:
 *   dx[n,i,j,c] = sum_{kh,kw,m} dyd[n, i+kh*d-top', j+kw*d-left', c*M+m] * W[KH-1-kh, KW-1-kw, c, m]
 * (dyd: dy zero-inserted for stride > 1). That is one XNNPACK depthwise convolution with c*M
 * channels and multiplier 1, then, when M > 1, a sum over m (an innermost-axis Sum).
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { conv2dExplicit, dispose, markOurs, reshape, runWasm, zeroInsert, type TensorInfo } from './util.js';

/** W[kh,kw,c,m] -> Wf[KH-1-kh, KW-1-kw, c*M+m, 0]: flipped in space, one channel per (c, m). */
function flipDepthwiseFilter(backend: BackendWasm, filter: TensorInfo): TensorInfo {
  const [kh, kw, c, m] = filter.shape as [number, number, number, number];
  const out = backend.makeOutput([kh, kw, c * m, 1], 'float32');
  const src = backend.typedArrayFromHeap(filter) as Float32Array;
  const dst = backend.typedArrayFromHeap(out) as Float32Array;
  const plane = c * m;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const s0 = (i * kw + j) * plane;
      const d0 = ((kh - 1 - i) * kw + (kw - 1 - j)) * plane;
      dst.set(src.subarray(s0, s0 + plane), d0);
    }
  }
  return out;
}

export function depthwiseConv2dNativeBackpropInput(args: {
  inputs: { dy: TensorInfo; filter: TensorInfo };
  backend: BackendWasm;
  attrs: tf.DepthwiseConv2dNativeBackpropInputAttrs;
}): TensorInfo {
  const { inputs: { dy, filter }, backend, attrs } = args;
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs;
  const info = tf.backend_util.computeConv2DInfo(
    inputShape, filter.shape as [number, number, number, number], strides, dilations, pad, dimRoundingMode, true);
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, strideHeight, strideWidth } = info;
  const multiplier = filter.shape[3]!;

  const wf = flipDepthwiseFilter(backend, filter);
  const dyd = zeroInsert(backend, dy, strideHeight, strideWidth); // [n, OH*sh, OW*sw, c*M]
  const top = info.effectiveFilterHeight - 1 - info.padInfo.top;
  const left = info.effectiveFilterWidth - 1 - info.padInfo.left;
  // Chosen so that the output is exactly H x W (dyd has OH*sh rows, the last sh-1 of them zero).
  const bottom = inHeight - outHeight * strideHeight + info.padInfo.top;
  const right = inWidth - outWidth * strideWidth + info.padInfo.left;
  const g = conv2dExplicit(backend, dyd, wf, { top, bottom, left, right }, [1, 1],
    [info.dilationHeight, info.dilationWidth], true); // [n, H, W, c*M]
  dispose(backend, dyd, wf);
  if (multiplier === 1) return g;
  const g5 = reshape(backend, g, [batchSize, inHeight, inWidth, inChannels, multiplier]);
  dispose(backend, g);
  const out = runWasm(backend, 'Sum', { x: g5 }, { axis: [4], keepDims: false });
  dispose(backend, g5);
  return out;
}

export const depthwiseConv2dNativeBackpropInputConfig: tf.KernelConfig = {
  kernelName: tf.DepthwiseConv2dNativeBackpropInput,
  backendName: 'wasm',
  kernelFunc: markOurs(depthwiseConv2dNativeBackpropInput as unknown as tf.KernelFunc),
};
