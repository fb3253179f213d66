/**
 * The wasm training kernels of src/backend/wasm-kernels against the cpu backend on randomized
 * shapes (seeded): kernel sizes 1-5, strides 1-3, dilations 1-2 where the op has them (TF allows
 * strides > 1 only with dilation 1), same/valid/explicit padding, channels 1-64, batch 1-8.
 * Every method of a kernel is checked, not only the one its heuristic picks. Tolerance:
 * max|wasm - cpu| / max(1, max|cpu|) <= 1e-4.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { activateBackend } from '../../src/backend/select-backend.js';
import { forceBackpropFilterMethod } from '../../src/backend/wasm-kernels/conv2d-backprop-filter.js';
import { forceBackpropInputMethod } from '../../src/backend/wasm-kernels/conv2d-backprop-input.js';
import { forceDepthwiseFilterMethod } from '../../src/backend/wasm-kernels/depthwise-conv2d-backprop-filter.js';
import { registerWasmTrainingKernels } from '../../src/backend/wasm-kernels/register.js';
import { mulberry32 } from '../../src/util/random.js';
import { maxRelativeError } from '../helpers/compare.js';

const TOLERANCE = 1e-4;
/** WASM_KERNEL_FUZZ=20 runs twenty times the random cases (and other seeds) for a deeper check. */
const FUZZ = Math.max(1, Number(process.env.WASM_KERNEL_FUZZ ?? 1));

type Input = { shape: number[]; values: Float32Array | Int32Array; dtype?: 'float32' | 'int32' };
type Attrs = Record<string, unknown>;

function randomValues(random: () => number, shape: number[], quantized = false): Float32Array {
  const size = shape.reduce((a, b) => a * b, 1);
  // Quantized values make ties, which pooling gradients must break like TF (first maximum).
  return Float32Array.from({ length: size }, () => (quantized ? Math.floor(random() * 5) - 2 : random() * 2 - 1));
}

/** Runs one kernel on a backend through the engine (as ops do) and returns its output values. */
async function runKernelOn(backend: 'cpu' | 'wasm', name: string, inputs: Record<string, Input>, attrs: Attrs): Promise<Float32Array> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const tensors: Record<string, tf.Tensor> = {};
    for (const [key, input] of Object.entries(inputs)) tensors[key] = tf.tensor(input.values, input.shape, input.dtype ?? 'float32');
    const out = tf.engine().runKernel(name, tensors, attrs as tf.NamedAttrMap) as tf.Tensor;
    return Float32Array.from(out.dataSync());
  });
}

async function expectSameOnBackends(name: string, inputs: Record<string, Input>, attrs: Attrs, reference?: Float32Array): Promise<void> {
  const expected = reference ?? (await runKernelOn('cpu', name, inputs, attrs));
  const actual = await runKernelOn('wasm', name, inputs, attrs);
  const error = maxRelativeError(actual, expected);
  expect(error, `${name} ${JSON.stringify({ shapes: Object.fromEntries(Object.entries(inputs).map(([k, v]) => [k, v.shape])), attrs })}`)
    .toBeLessThanOrEqual(TOLERANCE);
}

function pick<T>(random: () => number, values: readonly T[]): T {
  return values[Math.floor(random() * values.length)]!;
}

function int(random: () => number, lo: number, hi: number): number {
  return lo + Math.floor(random() * (hi - lo + 1));
}

const CHANNELS = [1, 2, 3, 4, 7, 8, 16, 32, 64] as const;

interface ConvCase {
  batch: number;
  height: number;
  width: number;
  inChannels: number;
  outChannels: number; // or the channel multiplier, for depthwise
  kernel: [number, number];
  strides: [number, number];
  dilations: [number, number];
  pad: 'same' | 'valid' | number[][];
  outHeight: number;
  outWidth: number;
}

function outputSize(size: number, kernel: number, stride: number, dilation: number, pad: ConvCase['pad'], axis: number): number {
  const effective = (kernel - 1) * dilation + 1;
  if (pad === 'same') return Math.ceil(size / stride);
  if (pad === 'valid') return Math.ceil((size - effective + 1) / stride);
  const [before, after] = pad[axis]!;
  return Math.floor((size + before! + after! - effective) / stride) + 1;
}

/** A random convolution that is valid and small enough for the cpu backend (<= ~3M multiply-adds). */
function randomConvCase(random: () => number, options: { dilation: boolean; depthwise: boolean }): ConvCase {
  for (;;) {
    const kernel: [number, number] = [int(random, 1, 5), int(random, 1, 5)];
    const dilated = options.dilation && random() < 0.35;
    const strides: [number, number] = dilated ? [1, 1] : [int(random, 1, 3), int(random, 1, 3)];
    const dilations: [number, number] = dilated ? [int(random, 1, 2), 2] : [1, 1];
    const roll = random();
    const pad: ConvCase['pad'] = roll < 0.45 ? 'same' : roll < 0.9 ? 'valid'
      : [[0, 0], [int(random, 0, 2), int(random, 0, 2)], [int(random, 0, 2), int(random, 0, 2)], [0, 0]];
    const c: ConvCase = {
      batch: int(random, 1, 8),
      height: int(random, 1, 12),
      width: int(random, 1, 12),
      inChannels: pick(random, CHANNELS),
      outChannels: options.depthwise ? int(random, 1, 3) : pick(random, CHANNELS),
      kernel, strides, dilations, pad, outHeight: 0, outWidth: 0,
    };
    c.outHeight = outputSize(c.height, kernel[0], strides[0], dilations[0], pad, 1);
    c.outWidth = outputSize(c.width, kernel[1], strides[1], dilations[1], pad, 2);
    if (c.outHeight < 1 || c.outWidth < 1) continue;
    const macs = c.batch * c.outHeight * c.outWidth * kernel[0] * kernel[1] * c.inChannels * c.outChannels;
    if (macs > 3e6) continue;
    return c;
  }
}

beforeAll(async () => {
  await activateBackend('wasm');
  await activateBackend('cpu');
});

describe('registration', () => {
  it('activateBackend("wasm") registers the training kernels, idempotently', async () => {
    await activateBackend('wasm');
    registerWasmTrainingKernels();
    registerWasmTrainingKernels();
    for (const name of ['Conv2DBackpropFilter', 'Conv2DBackpropInput', 'DepthwiseConv2dNativeBackpropFilter',
      'DepthwiseConv2dNativeBackpropInput', 'UnsortedSegmentSum', 'MaxPoolGrad', 'BatchMatMul', 'Sum', 'Identity', 'Add', 'Conv2D', 'Cast']) {
      expect(tf.getKernel(name, 'wasm'), name).toBeDefined();
    }
    // The wrappers still reach the built-ins they replaced after repeated registration.
    const product = tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5, 6], [7, 8]]), true, false).arraySync());
    expect(product).toEqual([[26, 30], [38, 44]]);
    const sums = tf.tidy(() => tf.sum(tf.tensor3d([[[1, 2]], [[3, 4]]]), [1, 2]).arraySync());
    expect(sums).toEqual([3, 7]);
  });

  it('kernels free every intermediate they make', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as unknown as { numDataIds(): number };
    const random = mulberry32(5);
    // 8 channels in and out: the SIMD gather and direct forms fit, as well as the others.
    const x = tf.tensor(randomValues(random, [2, 9, 9, 8]), [2, 9, 9, 8]);
    const filter = tf.tensor(randomValues(random, [3, 3, 8, 8]), [3, 3, 8, 8]);
    const dwFilter = tf.tensor(randomValues(random, [3, 3, 8, 2]), [3, 3, 8, 2]);
    const before = backend.numDataIds();
    for (const method of [['conv', 'conv', 'dwconv'], ['im2col', 'col2im', 'direct'], ['patches', 'taps', 'shifted'], ['direct', 'gather', 'direct']] as const) {
      forceBackpropFilterMethod(method[0]);
      forceBackpropInputMethod(method[1]);
      forceDepthwiseFilterMethod(method[2]);
      tf.tidy(() => {
        const [dx, df] = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, 2, 'same').square().sum())([x, filter]);
        const [dx3] = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.conv2d(a as tf.Tensor4D, f as tf.Tensor4D, 1, 'valid').square().sum())([x, filter]);
        const [dx2, df2] = tf.grads((a: tf.Tensor, f: tf.Tensor) => tf.depthwiseConv2d(a as tf.Tensor4D, f as tf.Tensor4D, 1, 'same').square().sum())([x, dwFilter]);
        const pooled = tf.grad((a: tf.Tensor) => tf.maxPool(a as tf.Tensor4D, 2, 2, 'valid').sum())(x);
        const biased = tf.add(tf.ones([8, 26, 26, 32]), tf.ones([32])).sum([0, 1, 2]);
        const product = tf.matMul(tf.reshape(x, [18, 72]), tf.reshape(filter, [72, 8]), false, false);
        return [dx!, df!, dx2!, df2!, dx3!, pooled, biased, product, tf.cast(x, 'float32'), tf.clone(x)];
      }).forEach((t) => t.dispose());
    }
    forceBackpropFilterMethod(undefined);
    forceBackpropInputMethod(undefined);
    forceDepthwiseFilterMethod(undefined);
    expect(backend.numDataIds()).toBe(before);
    tf.dispose([x, filter, dwFilter]);
  });
});

describe('Conv2DBackpropFilter and Conv2DBackpropInput', () => {
  it('match the cpu backend on random shapes, every method', async () => {
    const random = mulberry32(20240611 * FUZZ);
    for (let i = 0; i < 22 * FUZZ; i++) {
      const c = randomConvCase(random, { dilation: false, depthwise: false });
      // A few channels-first cases; the kernels transpose those to NHWC and back.
      const nchw = i % 7 === 6 && typeof c.pad === 'string';
      const xShape = nchw ? [c.batch, c.inChannels, c.height, c.width] : [c.batch, c.height, c.width, c.inChannels];
      const dyShape = nchw ? [c.batch, c.outChannels, c.outHeight, c.outWidth] : [c.batch, c.outHeight, c.outWidth, c.outChannels];
      const filterShape = [...c.kernel, c.inChannels, c.outChannels];
      const x = { shape: xShape, values: randomValues(random, xShape) };
      const dy = { shape: dyShape, values: randomValues(random, dyShape) };
      const filter = { shape: filterShape, values: randomValues(random, filterShape) };
      const common = { strides: c.strides, pad: c.pad, dataFormat: nchw ? 'NCHW' : 'NHWC' };
      const expectedFilter = await runKernelOn('cpu', 'Conv2DBackpropFilter', { x, dy }, { ...common, filterShape });
      const expectedInput = await runKernelOn('cpu', 'Conv2DBackpropInput', { dy, filter }, { ...common, inputShape: xShape });
      for (const method of ['conv', 'im2col', 'patches', 'direct'] as const) {
        forceBackpropFilterMethod(method);
        await expectSameOnBackends('Conv2DBackpropFilter', { x, dy }, { ...common, filterShape }, expectedFilter);
      }
      for (const method of ['conv', 'col2im', 'taps', 'gather'] as const) {
        forceBackpropInputMethod(method);
        await expectSameOnBackends('Conv2DBackpropInput', { dy, filter }, { ...common, inputShape: xShape }, expectedInput);
      }
      forceBackpropFilterMethod(undefined);
      forceBackpropInputMethod(undefined);
    }
  });
});

/** The filter with dilation-1 zeros inserted between taps: a dilated conv equals a plain one with it. */
function dilateFilter(values: Float32Array, shape: number[], [dh, dw]: [number, number]): Input {
  const [kh, kw, c, m] = shape as [number, number, number, number];
  const eh = (kh - 1) * dh + 1;
  const ew = (kw - 1) * dw + 1;
  const out = new Float32Array(eh * ew * c * m);
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      out.set(values.subarray((i * kw + j) * c * m, (i * kw + j + 1) * c * m), (i * dh * ew + j * dw) * c * m);
    }
  }
  return { shape: [eh, ew, c, m], values: out };
}

describe('DepthwiseConv2dNativeBackpropInput and DepthwiseConv2dNativeBackpropFilter', () => {
  // The cpu backend's depthwise backprop kernels ignore dilations (TF.js gradients assert
  // dilation 1), so dilated cases are checked against the cpu result for the zero-inserted filter.
  it('match the cpu backend on random shapes, dilations included, every method', async () => {
    const random = mulberry32(7771 * FUZZ);
    for (let i = 0; i < 20 * FUZZ; i++) {
      const c = randomConvCase(random, { dilation: true, depthwise: true });
      const xShape = [c.batch, c.height, c.width, c.inChannels];
      const dyShape = [c.batch, c.outHeight, c.outWidth, c.inChannels * c.outChannels];
      const filterShape = [...c.kernel, c.inChannels, c.outChannels];
      const x = { shape: xShape, values: randomValues(random, xShape) };
      const dy = { shape: dyShape, values: randomValues(random, dyShape) };
      const filter = { shape: filterShape, values: randomValues(random, filterShape) };
      const dilated = c.dilations[0] > 1 || c.dilations[1] > 1;
      const common = { strides: c.strides, pad: c.pad };
      const wide = dilateFilter(filter.values as Float32Array, filterShape, c.dilations);

      const expectedInput = await runKernelOn('cpu', 'DepthwiseConv2dNativeBackpropInput', { dy, filter: dilated ? wide : filter },
        { ...common, dilations: 1, inputShape: xShape });
      await expectSameOnBackends('DepthwiseConv2dNativeBackpropInput', { dy, filter },
        { ...common, dilations: c.dilations, inputShape: xShape }, expectedInput);

      const wideGradient = await runKernelOn('cpu', 'DepthwiseConv2dNativeBackpropFilter', { x, dy },
        { ...common, dilations: 1, filterShape: wide.shape });
      // Keep the taps of the real filter out of the zero-inserted one's gradient.
      const [kh, kw, ch, m] = filterShape as [number, number, number, number];
      const ew = wide.shape[1]!;
      const expectedFilter = new Float32Array(kh * kw * ch * m);
      for (let a = 0; a < kh; a++) {
        for (let b = 0; b < kw; b++) {
          const from = (a * c.dilations[0] * ew + b * c.dilations[1]) * ch * m;
          expectedFilter.set(wideGradient.subarray(from, from + ch * m), (a * kw + b) * ch * m);
        }
      }
      for (const method of ['dwconv', 'direct', 'shifted'] as const) {
        forceDepthwiseFilterMethod(method);
        await expectSameOnBackends('DepthwiseConv2dNativeBackpropFilter', { x, dy },
          { ...common, dilations: c.dilations, filterShape }, expectedFilter);
      }
      forceDepthwiseFilterMethod(undefined);
    }
  });
});

describe('MaxPoolGrad', () => {
  it('matches the cpu backend (first maximum of a window, negative windows, ties)', async () => {
    const random = mulberry32(99 * FUZZ);
    for (let i = 0; i < 16 * FUZZ; i++) {
      const pool: [number, number] = [int(random, 1, 3), int(random, 1, 3)];
      const strides: [number, number] = [int(random, 1, 3), int(random, 1, 3)];
      const pad = pick(random, ['same', 'valid'] as const);
      const xShape = [int(random, 1, 6), int(random, 3, 12), int(random, 3, 12), pick(random, CHANNELS)];
      const quantized = i % 2 === 0;
      const values = randomValues(random, xShape, quantized);
      if (i % 4 === 1) values.forEach((v, k) => (values[k] = -Math.abs(v) - 1)); // all-negative windows
      await tf.setBackend('cpu');
      const output = tf.tidy(() => tf.maxPool(tf.tensor4d(values, xShape as [number, number, number, number]), pool, strides, pad));
      const outShape = output.shape;
      const outValues = output.dataSync() as Float32Array;
      output.dispose();
      const dy = { shape: outShape, values: randomValues(random, outShape) };
      await expectSameOnBackends('MaxPoolGrad', { dy, input: { shape: xShape, values }, output: { shape: outShape, values: outValues } },
        { filterSize: pool, strides, pad });
    }
  });
});

describe('MaxPoolGrad, 2x2 stride 2 (the branch-free path)', () => {
  it('matches the cpu backend on even and odd sizes, ties, negative, infinite and NaN values', async () => {
    const random = mulberry32(123 * FUZZ);
    for (let i = 0; i < 12 * FUZZ; i++) {
      const xShape = [int(random, 1, 4), int(random, 2, 11), int(random, 2, 11), pick(random, CHANNELS)];
      const pad = i % 3 === 2 ? 'same' : 'valid';
      const values = randomValues(random, xShape, i % 2 === 0);
      if (i % 4 === 1) values.forEach((v, k) => (values[k] = -Math.abs(v) - 1));
      // Sprinkle the values that the shortcut must hand to the generic scan.
      const special = [-Infinity, Infinity, NaN, 0, -0];
      for (let k = 0; k < values.length; k += 7) if (random() < 0.2) values[k] = pick(random, special);
      await tf.setBackend('wasm'); // the forward output the shortcut trusts comes from XNNPACK
      const output = tf.tidy(() => tf.maxPool(tf.tensor4d(values, xShape as [number, number, number, number]), 2, 2, pad));
      const outShape = output.shape;
      const outValues = output.dataSync() as Float32Array;
      output.dispose();
      const dyValues = randomValues(random, outShape);
      if (i % 5 === 4) dyValues[0] = Infinity;
      const inputs = { dy: { shape: outShape, values: dyValues }, input: { shape: xShape, values }, output: { shape: outShape, values: outValues } };
      const attrs = { filterSize: [2, 2], strides: [2, 2], pad };
      const expected = await runKernelOn('cpu', 'MaxPoolGrad', inputs, attrs);
      const actual = await runKernelOn('wasm', 'MaxPoolGrad', inputs, attrs);
      // Infinite and NaN gradients compare as equal values, not within a tolerance.
      for (let k = 0; k < expected.length; k++) {
        if (!Number.isFinite(expected[k]!) || !Number.isFinite(actual[k]!)) expect(actual[k], `element ${k}`).toBe(expected[k]);
      }
      const finite = (a: Float32Array) => a.map((v) => (Number.isFinite(v) ? v : 0));
      expect(maxRelativeError(finite(actual), finite(expected))).toBeLessThanOrEqual(TOLERANCE);
    }
  });
});

describe('BatchMatMul, Sum and UnsortedSegmentSum', () => {
  it('BatchMatMul matches the cpu backend with and without transposes, batched or not', async () => {
    const random = mulberry32(3 * FUZZ);
    for (let i = 0; i < 16 * FUZZ; i++) {
      const [m, k, n] = [int(random, 1, 40), int(random, 1, 40), int(random, 1, 40)];
      const batch = i % 4 === 3 ? int(random, 2, 3) : 1;
      const transposeA = random() < 0.5;
      const transposeB = random() < 0.5;
      const lead = i % 2 === 0 ? [] : [batch];
      if (batch > 1 && lead.length === 0) lead.push(batch);
      const aShape = [...lead, ...(transposeA ? [k, m] : [m, k])];
      const bShape = [...lead, ...(transposeB ? [n, k] : [k, n])];
      await expectSameOnBackends('BatchMatMul', { a: { shape: aShape, values: randomValues(random, aShape) }, b: { shape: bShape, values: randomValues(random, bShape) } },
        { transposeA, transposeB });
    }
  });

  it('BatchMatMul gives right products when one buffer is the right operand under two shapes', async () => {
    // The built-in caches XNNPACK operators by the right operand's data id; reshapes and
    // size-1 transposes share data, so a second shape used to reuse the first one's operator.
    await tf.setBackend('wasm');
    const [first, second, third, fourth] = tf.tidy(() => {
      const w = tf.tensor2d([[1], [2], [3], [4], [5]]);
      const first = tf.matMul(tf.ones([3, 5]), w);
      const second = tf.matMul(tf.tensor2d([[1], [10]]), w, false, true);
      const v = tf.tensor2d([[1, 2, 3, 4, 5, 6]]);
      const third = tf.matMul(tf.ones([2, 6]), v.reshape([6, 1]));
      const fourth = tf.matMul(tf.ones([1, 2]), v.reshape([2, 3]));
      return [first, second, third, fourth].map((t) => Array.from(t.dataSync()));
    });
    expect(first).toEqual([15, 15, 15]);
    expect(second).toEqual([1, 2, 3, 4, 5, 10, 20, 30, 40, 50]);
    expect(third).toEqual([21, 21]);
    expect(fourth).toEqual([5, 7, 9]);
  });

  it('Sum keeps NaN and infinities of large leading-axes sums (XNNPACK pooling would not)', async () => {
    const shape = [8, 26, 26, 4];
    const values = randomValues(mulberry32(12), shape);
    values[5] = NaN; // channel 1
    values[6] = Infinity; // channel 2
    values[11] = -Infinity; // channel 3
    values[15] = Infinity; // channel 3 again: inf - inf
    const sums = await runKernelOn('wasm', 'Sum', { x: { shape, values } }, { axis: [0, 1, 2], keepDims: false });
    expect(Number.isFinite(sums[0]!)).toBe(true);
    expect(sums[1]).toBeNaN();
    expect(sums[2]).toBe(Infinity);
    expect(sums[3]).toBeNaN();
  });

  it('Sum matches the cpu backend for leading, inner and mixed axes', async () => {
    const random = mulberry32(4);
    const cases: Array<[number[], number[], boolean]> = [
      [[8, 5, 5, 16], [0, 1, 2], false], [[8, 5, 5, 16], [0, 1, 2], true], [[8, 26, 26, 32], [0, 1, 2], false], [[600, 40], [0], true], [[7, 33], [0], false], [[3, 1, 5], [0, 1], false],
      [[9, 4, 6], [0], false], [[9, 4, 6], [1, 2], false], [[9, 4, 6], [0, 2], true], [[5, 6], [0, 1], false], [[17], [0], false],
    ];
    for (const [shape, axis, keepDims] of cases) {
      await expectSameOnBackends('Sum', { x: { shape, values: randomValues(random, shape) } }, { axis, keepDims });
    }
  });

  it('Add matches the cpu backend for channel biases (either side), NaN included, and other broadcasts', async () => {
    const random = mulberry32(8);
    const cases: Array<[number[], number[]]> = [
      [[8, 12, 12, 32], [32]], [[32], [8, 12, 12, 32]], [[8, 12, 12, 32], [1, 1, 1, 32]], [[512, 64], [64]], [[4, 70, 70, 1], [1]],
      [[8, 12, 12, 32], [8, 12, 12, 32]], [[8, 12, 12, 32], [12, 1, 32]], [[3, 4], [4]], [[600, 40], [600, 1]], [[7, 7, 7, 9, 9], [9]],
    ];
    for (const [i, [aShape, bShape]] of cases.entries()) {
      const a = randomValues(random, aShape);
      const b = randomValues(random, bShape);
      if (i === 0) [a[0], a[1], a[2], b[2]] = [NaN, Infinity, -Infinity, Infinity];
      const inputs = { a: { shape: aShape, values: a }, b: { shape: bShape, values: b } };
      const expected = await runKernelOn('cpu', 'Add', inputs, {});
      const actual = await runKernelOn('wasm', 'Add', inputs, {});
      for (let k = 0; k < expected.length; k++) {
        if (!Number.isFinite(expected[k]!)) expect(actual[k], `element ${k}`).toBe(expected[k]);
      }
      expect(maxRelativeError(actual.map((v) => (Number.isFinite(v) ? v : 0)), expected.map((v) => (Number.isFinite(v) ? v : 0)))).toBeLessThanOrEqual(TOLERANCE);
    }
  });

  it('Identity shares data yet behaves as a copy', async () => {
    await tf.setBackend('wasm');
    const x = tf.tensor([1, 2, 3]);
    const y = tf.clone(x);
    x.dispose();
    expect(Array.from(y.dataSync())).toEqual([1, 2, 3]);
    y.dispose();
  });

  it('Cast to the same dtype shares data; to another dtype it converts (to bool: nonzero is true)', async () => {
    await tf.setBackend('wasm');
    const backend = tf.backend() as BackendWasm;
    const x = tf.tensor([1.5, -2, 0]);
    const before = backend.numDataIds();
    const same = tf.cast(x, 'float32');
    expect(backend.numDataIds()).toBe(before);
    const ints = tf.cast(x, 'int32');
    const bools = tf.cast(x, 'bool');
    x.dispose();
    expect(Array.from(same.dataSync())).toEqual([1.5, -2, 0]);
    expect(ints.dtype).toBe('int32');
    expect(Array.from(ints.dataSync())).toEqual([1, -2, 0]);
    expect(Array.from(bools.dataSync())).toEqual([1, 1, 0]);
    const intBools = tf.tidy(() => tf.cast(tf.tensor([3, -300, 0, 256], undefined, 'int32'), 'bool'));
    expect(Array.from(intBools.dataSync())).toEqual([1, 1, 0, 1]);
    const nanBool = tf.tidy(() => tf.cast(tf.tensor([NaN, -0]), 'bool'));
    expect(Array.from(nanBool.dataSync())).toEqual([1, 0]);
    tf.dispose([same, ints, bools, intBools, nanBool]);
  });

  it('UnsortedSegmentSum matches the cpu backend, dropping out-of-range ids', async () => {
    const random = mulberry32(6);
    for (const [rows, inner, segments] of [[12, [4], 5], [30, [3, 2], 7], [1, [8], 3], [20, [], 4]] as const) {
      const shape = [rows, ...inner];
      const ids = Int32Array.from({ length: rows }, () => int(random, -1, segments));
      await expectSameOnBackends('UnsortedSegmentSum', {
        x: { shape, values: randomValues(random, shape) },
        segmentIds: { shape: [rows], values: ids, dtype: 'int32' },
      }, { numSegments: segments });
    }
  });
});

describe('Conv3DBackpropInputV2 and Conv3DBackpropFilterV2', () => {
  it('match the cpu backend on random shapes, strides and paddings', async () => {
    const random = mulberry32(31);
    for (let i = 0; i < 6 * FUZZ; i++) {
      const batch = int(random, 1, 2);
      const inShape = [batch, int(random, 2, 5), int(random, 2, 5), int(random, 2, 5), pick(random, [1, 2, 3])];
      const filterShape = [int(random, 1, 2), int(random, 1, 2), int(random, 1, 3), inShape[4]!, pick(random, [1, 2, 4])];
      const strides = [int(random, 1, 2), int(random, 1, 2), int(random, 1, 2)];
      const pad = pick(random, ['valid', 'same'] as const);
      const info = tf.backend_util.computeConv3DInfo(inShape as never, filterShape as never, strides as never, 1, pad);
      const dyShape = [batch, info.outDepth, info.outHeight, info.outWidth, filterShape[4]!];
      const dy = { shape: dyShape, values: randomValues(random, dyShape) };
      await expectSameOnBackends('Conv3DBackpropInputV2', { dy, filter: { shape: filterShape, values: randomValues(random, filterShape) } }, { strides, pad, inputShape: inShape });
      await expectSameOnBackends('Conv3DBackpropFilterV2', { x: { shape: inShape, values: randomValues(random, inShape) }, dy }, { strides, pad, filterShape });
    }
  });
});

describe('SplitV and LogicalAnd', () => {
  it('SplitV matches the cpu backend on every axis, equal and given sizes', async () => {
    const random = mulberry32(41);
    for (const [shape, splits, axis] of [[[6, 8], 4, 1], [[6, 8], [1, 5], 0], [[2, 3, 7], [2, -1, 1], 2], [[3, 4, 5], 2, 1], [[5], [5], 0]] as const) {
      const x = { shape: [...shape], values: randomValues(random, [...shape]) };
      const cpu = await runSplitOn('cpu', x, splits, axis);
      const wasm = await runSplitOn('wasm', x, splits, axis);
      expect(wasm.map((p) => p.shape)).toEqual(cpu.map((p) => p.shape));
      wasm.forEach((p, i) => expect(p.values).toEqual(cpu[i]!.values));
    }
  });

  it('LogicalAnd matches the cpu backend for equal shapes and broadcasts', async () => {
    const random = mulberry32(43);
    for (const [sa, sb] of [[[5, 7], [5, 7]], [[64], [64]], [[3, 4], [4]], [[2, 1], [1, 3]]] as const) {
      const bools = (shape: readonly number[]) => ({ shape: [...shape], values: Int32Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => (random() < 0.5 ? 1 : 0)), dtype: 'bool' as const });
      await expectSameOnBackends('LogicalAnd', { a: bools(sa), b: bools(sb) }, {});
    }
  });
});

async function runSplitOn(backend: 'cpu' | 'wasm', x: Input, splits: number | readonly number[], axis: number): Promise<{ shape: number[]; values: Float32Array }[]> {
  await tf.setBackend(backend);
  return tf.tidy(() => {
    const parts = tf.split(tf.tensor(x.values, x.shape), typeof splits === 'number' ? splits : [...splits], axis);
    return parts.map((p) => ({ shape: p.shape, values: Float32Array.from(p.dataSync()) }));
  });
}
