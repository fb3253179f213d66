/**
 * Registers the training kernels the wasm backend lacks (Conv2DBackpropFilter, the depthwise
 * backprops, UnsortedSegmentSum) and replaces built-ins that are slow on training shapes
 * (Conv2D, Conv2DBackpropInput, MaxPoolGrad, BatchMatMul with transposes, leading-axes Sum,
 * channel-bias Add, the copying Identity and same-dtype Cast, the copying SplitV and the
 * same-shape LogicalAnd of recurrent layers' gradients); the built-in MaxPoolGrad is also
 * wrong on ties and all-negative windows, the built-in Conv3D backprops are wrong, and the
 * built-in Cast to bool truncates. Idempotent;
 * called by activateBackend('wasm').
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { addConfig } from './add.js';
import { batchMatMulConfig } from './batch-mat-mul.js';
import { conv2DConfig } from './conv2d.js';
import { conv2DBackpropFilterConfig } from './conv2d-backprop-filter.js';
import { conv2DBackpropInputConfig } from './conv2d-backprop-input.js';
import { conv3DBackpropFilterConfig } from './conv3d-backprop-filter.js';
import { conv3DBackpropInputConfig } from './conv3d-backprop-input.js';
import { depthwiseConv2dNativeBackpropFilterConfig } from './depthwise-conv2d-backprop-filter.js';
import { depthwiseConv2dNativeBackpropInputConfig } from './depthwise-conv2d-backprop-input.js';
import { castConfig, identityConfig } from './identity.js';
import { logicalAndConfig } from './logical-and.js';
import { maxPoolGradConfig } from './max-pool-grad.js';
import { splitVConfig } from './split-v.js';
import { sumConfig } from './sum.js';
import { unsortedSegmentSumConfig } from './unsorted-segment-sum.js';
import { isOurs, recordBuiltin } from './util.js';

const configs: tf.KernelConfig[] = [
  conv2DConfig,
  conv2DBackpropFilterConfig,
  conv2DBackpropInputConfig,
  maxPoolGradConfig,
  batchMatMulConfig,
  sumConfig,
  depthwiseConv2dNativeBackpropInputConfig,
  depthwiseConv2dNativeBackpropFilterConfig,
  unsortedSegmentSumConfig,
  conv3DBackpropInputConfig,
  conv3DBackpropFilterConfig,
  splitVConfig,
  logicalAndConfig,
  // Left out for a while (xor gradients went wrong): the cause was the built-in BatchMatMul's
  // operator cache keyed by data id, which shared data exposed; batch-mat-mul.ts guards it now.
  identityConfig,
  castConfig,
  addConfig,
];

export function registerWasmTrainingKernels(): void {
  for (const config of configs) {
    const current = tf.getKernel(config.kernelName, 'wasm');
    if (current && isOurs(current.kernelFunc)) continue;
    if (current) {
      // Replacing a built-in: keep it for wrappers that fall back to it, and drop it first, since
      // registerKernel would only warn about the duplicate.
      recordBuiltin(config.kernelName, current.kernelFunc);
      tf.unregisterKernel(config.kernelName, 'wasm');
    }
    tf.registerKernel(config);
  }
}
