/**
 * The SIMD kernels of simd.wat called directly on the wasm backend's heap (so the SIMD path is
 * known to run), against the cpu backend's kernels; and the registered kernels built on them
 * (Conv2D, the gradients' SIMD methods, MaxPoolGrad where it hands over to the JavaScript scan)
 * against cpu on random shapes.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { activateBackend } from '../../src/backend/select-backend.js';
import { forceBackpropFilterMethod } from '../../src/backend/wasm-kernels/conv2d-backprop-filter.js';
import { forceBackpropInputMethod } from '../../src/backend/wasm-kernels/conv2d-backprop-input.js';
import { heapOffset, simdKernels, type SimdKernels } from '../../src/backend/wasm-kernels/simd.js';
import { mulberry32 } from '../../src/util/random.js';
import { maxRelativeError } from '../helpers/compare.js';

let backend: BackendWasm;
let simd: SimdKernels;

beforeAll(async () => {
  await activateBackend('cpu');
  await activateBackend('wasm');
  backend = tf.backend() as BackendWasm;
  const kernels = simdKernels(backend);
  if (!kernels) throw new Error('the SIMD kernels did not load (is dist/backend/wasm-kernels/simd.wasm built?)');
  simd = kernels;
});

function ints(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

function onCpu(name: string, inputs: Record<string, { values: Float32Array; shape: number[] }>, attrs: Record<string, unknown>): Float32Array {
  tf.setBackend('cpu');
  const values = tf.tidy(() => {
    const tensors = Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, tf.tensor(v.values, v.shape)]));
    return Float32Array.from((tf.engine().runKernel(name, tensors, attrs as tf.NamedAttrMap) as tf.Tensor).dataSync());
  });
  tf.setBackend('wasm');
  return values;
}

describe('max_pool_grad_2x2', () => {
  it('sends each dy to the first maximum of its window, as the cpu backend does (ties, negative windows, odd sizes)', () => {
    const random = mulberry32(7);
    for (let i = 0; i < 24; i++) {
      const [n, oh, ow, c] = [ints(random, 1, 3), ints(random, 1, 7), ints(random, 1, 7), [4, 8, 12, 32, 64][i % 5]!];
      const [h, w] = [2 * oh + (i % 2), 2 * ow + (i % 3 === 0 ? 1 : 0)];
      const size = n * h * w * c;
      // Quantized values make ties; every fourth case is all negative.
      const x = Float32Array.from({ length: size }, () => (i % 4 === 3 ? -1 - Math.floor(random() * 3) : Math.floor(random() * 5) - 2));
      const dyValues = Float32Array.from({ length: n * oh * ow * c }, () => random() * 2 - 1);
      const attrs = { filterSize: [2, 2], strides: [2, 2], pad: 'valid' };
      const y = tf.tidy(() => Float32Array.from(tf.maxPool(tf.tensor4d(x, [n, h, w, c]), 2, 2, 'valid').dataSync()));
      const expected = onCpu('MaxPoolGrad', { dy: { values: dyValues, shape: [n, oh, ow, c] }, input: { values: x, shape: [n, h, w, c] }, output: { values: y, shape: [n, oh, ow, c] } }, attrs);

      const [xt, yt, dyt] = [tf.tensor4d(x, [n, h, w, c]), tf.tensor4d(y, [n, oh, ow, c]), tf.tensor4d(dyValues, [n, oh, ow, c])];
      const dx = tf.zeros([n, h, w, c]);
      const status = simd.max_pool_grad_2x2(heapOffset(backend, xt), heapOffset(backend, yt), heapOffset(backend, dyt), heapOffset(backend, dx), n, oh, ow, c, h, w);
      expect(status, `case ${i}`).toBe(0);
      expect(Array.from(dx.dataSync()), `case ${i} [${n},${h},${w},${c}]`).toEqual(Array.from(expected));
      tf.dispose([xt, yt, dyt, dx]);
    }
  });

  it('declines a NaN, an all -Infinity window or an infinite dy, and the registered kernel still matches cpu', () => {
    const [n, oh, ow, c] = [2, 3, 4, 8];
    const [h, w] = [2 * oh, 2 * ow];
    for (const special of ['nan', '-inf', 'dy-inf'] as const) {
      const random = mulberry32(11);
      const x = Float32Array.from({ length: n * h * w * c }, () => random() * 2 - 1);
      const dyValues = Float32Array.from({ length: n * oh * ow * c }, () => random() * 2 - 1);
      // In the last window, so that the kernel has already written most of dx when it declines.
      const last = x.length - 1;
      if (special === 'nan') x[last] = NaN;
      if (special === '-inf') for (const k of [last, last - c, last - w * c, last - w * c - c]) x[k] = -Infinity;
      if (special === 'dy-inf') dyValues[dyValues.length - 1] = Infinity;
      const y = tf.tidy(() => Float32Array.from(tf.maxPool(tf.tensor4d(x, [n, h, w, c]), 2, 2, 'valid').dataSync()));
      const inputs = { dy: { values: dyValues, shape: [n, oh, ow, c] }, input: { values: x, shape: [n, h, w, c] }, output: { values: y, shape: [n, oh, ow, c] } };
      const attrs = { filterSize: [2, 2], strides: [2, 2], pad: 'valid' };

      const [xt, yt, dyt] = [tf.tensor4d(x, [n, h, w, c]), tf.tensor4d(y, [n, oh, ow, c]), tf.tensor4d(dyValues, [n, oh, ow, c])];
      const dx = tf.zeros([n, h, w, c]);
      expect(simd.max_pool_grad_2x2(heapOffset(backend, xt), heapOffset(backend, yt), heapOffset(backend, dyt), heapOffset(backend, dx), n, oh, ow, c, h, w), special).toBe(1);
      const actual = tf.tidy(() => Float32Array.from((tf.engine().runKernel('MaxPoolGrad', { dy: dyt, input: xt, output: yt }, attrs) as tf.Tensor).dataSync()));
      tf.dispose([xt, yt, dyt, dx]);
      const expected = onCpu('MaxPoolGrad', inputs, attrs);
      // Values compared exactly, NaN equal to NaN; the JavaScript path writes -0 where cpu has 0.
      const plain = (a: Float32Array) => Array.from(a, (v) => (v === 0 ? 0 : v));
      expect(plain(actual), special).toEqual(plain(expected));
    }
  });
});

describe('conv_filter_grad', () => {
  it('matches the cpu Conv2DBackpropFilter on random shapes (taps 1-36, strides 1-3, same and valid)', () => {
    const random = mulberry32(5);
    for (let i = 0; i < 20; i++) {
      const [kh, kw, ci] = [ints(random, 1, 5), ints(random, 1, 3), ints(random, 1, 4)];
      const co = 8 * ints(random, 1, 4);
      const strides: [number, number] = [ints(random, 1, 3), ints(random, 1, 3)];
      const pad = i % 2 === 0 ? 'same' : 'valid';
      const xShape: [number, number, number, number] = [ints(random, 1, 4), ints(random, 5, 14), ints(random, 5, 14), ci];
      const info = tf.backend_util.computeConv2DInfo(xShape, [kh, kw, ci, co], strides, 1, pad);
      const dyShape = [xShape[0], info.outHeight, info.outWidth, co];
      const x = Float32Array.from({ length: xShape.reduce((a, b) => a * b) }, () => random() * 2 - 1);
      const dy = Float32Array.from({ length: dyShape.reduce((a, b) => a * b) }, () => random() * 2 - 1);
      const attrs = { strides, pad, dataFormat: 'NHWC', filterShape: [kh, kw, ci, co] };
      const expected = onCpu('Conv2DBackpropFilter', { x: { values: x, shape: xShape }, dy: { values: dy, shape: dyShape } }, attrs);
      forceBackpropFilterMethod('direct');
      const actual = tf.tidy(() => Float32Array.from((tf.engine().runKernel('Conv2DBackpropFilter', { x: tf.tensor(x, xShape), dy: tf.tensor(dy, dyShape) }, attrs as tf.NamedAttrMap) as tf.Tensor).dataSync()));
      forceBackpropFilterMethod(undefined);
      expect(maxRelativeError(actual, expected), `case ${i}: x [${xShape}], filter [${kh},${kw},${ci},${co}], ${pad}, strides ${strides}`).toBeLessThanOrEqual(1e-4);
    }
  });

  it('writes exactly the filter gradient: the kernel called by hand on a 3x3 first layer', () => {
    const random = mulberry32(9);
    const [n, h, w, co] = [3, 9, 8, 16];
    const [oh, ow] = [h - 2, w - 2];
    const x = Float32Array.from({ length: n * h * w }, () => random() * 2 - 1);
    const dy = Float32Array.from({ length: n * oh * ow * co }, () => random() * 2 - 1);
    const expected = onCpu('Conv2DBackpropFilter', { x: { values: x, shape: [n, h, w, 1] }, dy: { values: dy, shape: [n, oh, ow, co] } },
      { strides: [1, 1], pad: 'valid', dataFormat: 'NHWC', filterShape: [3, 3, 1, co] });
    const [xt, dyt] = [tf.tensor(x, [n, h, w, 1]), tf.tensor(dy, [n, oh, ow, co])];
    const table = tf.tensor1d([0, 1, 2, w, w + 1, w + 2, 2 * w, 2 * w + 1, 2 * w + 2].map((o) => o * 4), 'int32');
    // A guard row after the gradient must stay untouched.
    const out = tf.fill([10 * co], 7);
    simd.conv_filter_grad(heapOffset(backend, xt), heapOffset(backend, dyt), heapOffset(backend, out), heapOffset(backend, table), 9, n, oh, ow, co, 4, w * 4, h * w * 4);
    const values = out.dataSync() as Float32Array;
    expect(maxRelativeError(values.slice(0, 9 * co), expected)).toBeLessThanOrEqual(1e-5);
    expect(Array.from(values.slice(9 * co))).toEqual(new Array(co).fill(7));
    tf.dispose([xt, dyt, table, out]);
  });
});

describe('Conv2D (gather form)', () => {
  it('matches the cpu backend on random shapes: strides 1-3, dilations 1-2, same, valid and explicit padding', () => {
    const random = mulberry32(21);
    for (let i = 0; i < 30; i++) {
      const [kh, kw, ci] = [ints(random, 1, 5), ints(random, 1, 5), [1, 3, 8, 17, 32][i % 5]!];
      // Mostly multiples of 8 (the gather form), some not (the built-in).
      const co = i % 6 === 5 ? ints(random, 1, 12) : 8 * ints(random, 1, 4);
      const dilated = i % 3 === 2;
      const strides: [number, number] = dilated ? [1, 1] : [ints(random, 1, 3), ints(random, 1, 3)];
      const dilations: [number, number] = dilated ? [ints(random, 1, 2), 2] : [1, 1];
      const pad = [
        'same',
        'valid',
        [[0, 0], [ints(random, 0, 2), ints(random, 0, 2)], [ints(random, 0, 2), ints(random, 0, 2)], [0, 0]],
      ][i % 3]!;
      const xShape: [number, number, number, number] = [ints(random, 1, 4), ints(random, 9, 16), ints(random, 9, 16), ci];
      const x = Float32Array.from({ length: xShape.reduce((a, b) => a * b) }, () => random() * 2 - 1);
      const filter = Float32Array.from({ length: kh * kw * ci * co }, () => random() * 2 - 1);
      const attrs = { strides, pad, dataFormat: 'NHWC', dilations };
      const inputs = { x: { values: x, shape: xShape }, filter: { values: filter, shape: [kh, kw, ci, co] } };
      const expected = onCpu('Conv2D', inputs, attrs);
      const actual = tf.tidy(() => Float32Array.from((tf.engine().runKernel('Conv2D', { x: tf.tensor(x, xShape), filter: tf.tensor(filter, [kh, kw, ci, co]) }, attrs as tf.NamedAttrMap) as tf.Tensor).dataSync()));
      expect(maxRelativeError(actual, expected), `case ${i}: x [${xShape}], filter [${kh},${kw},${ci},${co}], ${JSON.stringify(pad)}, strides ${strides}, dilations ${dilations}`)
        .toBeLessThanOrEqual(1e-4);
    }
  });

  it('multiplies matrices exactly as a one-tap gather (rows not a multiple of 4)', async () => {
    const { gatherMatMul } = await import('../../src/backend/wasm-kernels/gather.js');
    const random = mulberry32(4);
    const [m, k, n] = [7, 13, 24];
    const a = Float32Array.from({ length: m * k }, () => random() * 2 - 1);
    const b = Float32Array.from({ length: k * n }, () => random() * 2 - 1);
    const [at, bt] = [tf.tensor2d(a, [m, k]), tf.tensor2d(b, [k, n])];
    const info = gatherMatMul(backend, { dataId: at.dataId, shape: at.shape, dtype: 'float32' }, { dataId: bt.dataId, shape: bt.shape, dtype: 'float32' });
    const product = backend.typedArrayFromHeap(info) as Float32Array;
    expect(info.shape).toEqual([m, n]);
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let sum = 0;
        for (let q = 0; q < k; q++) sum += a[i * k + q]! * b[q * n + j]!;
        expect(product[i * n + j], `[${i},${j}]`).toBeCloseTo(sum, 5);
      }
    }
    backend.disposeData(info.dataId);
    tf.dispose([at, bt]);
  });
});

describe('Conv2DBackpropInput (gather and SIMD col2im)', () => {
  it('matches the cpu backend on random shapes: strides 1-3, same, valid and explicit padding', () => {
    const random = mulberry32(33);
    for (let i = 0; i < 20; i++) {
      const [kh, kw] = [ints(random, 1, 5), ints(random, 1, 4)];
      const ci = 8 * ints(random, 1, 4);
      const co = ints(random, 1, 40);
      const strides: [number, number] = [ints(random, 1, 3), ints(random, 1, 3)];
      const pad = ['same', 'valid', [[0, 0], [ints(random, 0, 2), ints(random, 0, 2)], [ints(random, 0, 2), ints(random, 0, 2)], [0, 0]]][i % 3]!;
      const xShape: [number, number, number, number] = [ints(random, 1, 4), ints(random, 6, 14), ints(random, 6, 14), ci];
      const info = tf.backend_util.computeConv2DInfo(xShape, [kh, kw, ci, co], strides, 1, pad as 'same');
      const dyShape = [xShape[0], info.outHeight, info.outWidth, co];
      const dy = Float32Array.from({ length: dyShape.reduce((a, b) => a * b) }, () => random() * 2 - 1);
      const filter = Float32Array.from({ length: kh * kw * ci * co }, () => random() * 2 - 1);
      const attrs = { strides, pad, dataFormat: 'NHWC', inputShape: xShape };
      const expected = onCpu('Conv2DBackpropInput', { dy: { values: dy, shape: dyShape }, filter: { values: filter, shape: [kh, kw, ci, co] } }, attrs);
      forceBackpropInputMethod('gather');
      const actual = tf.tidy(() => Float32Array.from((tf.engine().runKernel('Conv2DBackpropInput', { dy: tf.tensor(dy, dyShape), filter: tf.tensor(filter, [kh, kw, ci, co]) }, attrs as tf.NamedAttrMap) as tf.Tensor).dataSync()));
      forceBackpropInputMethod(undefined);
      expect(maxRelativeError(actual, expected), `case ${i}: x [${xShape}], filter [${kh},${kw},${ci},${co}], ${JSON.stringify(pad)}, strides ${strides}`).toBeLessThanOrEqual(1e-4);
    }
  });
});
