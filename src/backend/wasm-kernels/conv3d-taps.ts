/**
 * The window walk both Conv3D gradients share: for every output position and every kernel tap
 * that lands inside the input (padding skipped), the offsets of the input pixel's channels
 * (x0), the tap's [inChannels, outChannels] block of the filter (f0) and the output position's
 * channels of dy (g0), all in NDHWC / DHWIO order. Each gradient does its own channel loops.
 */
import type * as tf from '@tensorflow/tfjs';

export function forEachConv3dTap(info: tf.backend_util.Conv3DInfo, visit: (x0: number, f0: number, g0: number) => void): void {
  const { batchSize, inDepth, inHeight, inWidth, inChannels, outDepth, outHeight, outWidth, outChannels } = info;
  const { filterDepth, filterHeight, filterWidth, strideDepth, strideHeight, strideWidth } = info;
  const { front, top, left } = info.padInfo;
  const kernelStride = inChannels * outChannels;
  for (let b = 0; b < batchSize; b++) {
    for (let od = 0; od < outDepth; od++) {
      for (let oh = 0; oh < outHeight; oh++) {
        for (let ow = 0; ow < outWidth; ow++) {
          const g0 = (((b * outDepth + od) * outHeight + oh) * outWidth + ow) * outChannels;
          for (let kd = 0; kd < filterDepth; kd++) {
            const id = od * strideDepth - front + kd;
            if (id < 0 || id >= inDepth) continue;
            for (let kh = 0; kh < filterHeight; kh++) {
              const ih = oh * strideHeight - top + kh;
              if (ih < 0 || ih >= inHeight) continue;
              for (let kw = 0; kw < filterWidth; kw++) {
                const iw = ow * strideWidth - left + kw;
                if (iw < 0 || iw >= inWidth) continue;
                visit((((b * inDepth + id) * inHeight + ih) * inWidth + iw) * inChannels, ((kd * filterHeight + kh) * filterWidth + kw) * kernelStride, g0);
              }
            }
          }
        }
      }
    }
  }
}
