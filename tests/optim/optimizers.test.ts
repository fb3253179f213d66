/**
 * Our shard optimizers against TensorFlow.js's own optimizers on the cpu backend: the same
 * initial weights and gradient sequence go through both; ours runs as three uneven shards.
 *
 * Agreement rule: |ours - tfjs| <= 1e-6 * max(1, |tfjs|) for every parameter and every state
 * element (NaN never agrees). The implementation mimics float32 op by op, so in practice the
 * results are bit-identical; the test also reports how many elements are.
 */
import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOptimizer, OPTIMIZER_DEFAULTS } from '../../src/optim/create-optimizer.js';
import { Float32BiasCorrection } from '../../src/optim/adam.js';
import type { OptimizerSpec, ShardOptimizer } from '../../src/optim/optimizer.js';
import { mulberry32, normalSampler } from '../../src/util/random.js';

const SIZE = 1000;
const STEPS = 10;
const SHARDS: readonly [number, number][] = [
  [0, 137],
  [137, 598],
  [598, SIZE],
];
const RELATIVE_TOLERANCE = 1e-6;

interface Fixture {
  initial: Float32Array;
  gradients: Float32Array[];
}

/**
 * Normal weights and gradients, with 5% of the gradient entries scaled down to ~1e-6 so that
 * epsilon matters in Adam/RMSProp. `tinyGradients: false` avoids them for centered RMSProp,
 * where TF.js's sqrt(ms - (mg² + eps)) is NaN for gradients below ~1e-3.
 */
function makeFixture(seed: number, tinyGradients = true): Fixture {
  const uniform = mulberry32(seed);
  const normal = normalSampler(uniform);
  const initial = new Float32Array(SIZE);
  for (let i = 0; i < SIZE; i++) initial[i] = 0.5 * normal();
  const gradients: Float32Array[] = [];
  for (let s = 0; s < STEPS; s++) {
    const g = new Float32Array(SIZE);
    const scale = 0.1 + 2 * uniform();
    for (let i = 0; i < SIZE; i++) {
      if (tinyGradients && uniform() < 0.05) g[i] = 1e-6 * normal();
      else if (tinyGradients) g[i] = scale * normal();
      else g[i] = Math.sign(normal()) * (0.05 + scale * Math.abs(normal()));
    }
    gradients.push(g);
  }
  return { initial, gradients };
}

let variableCounter = 0;

/** Runs a TF.js optimizer; `beforeStep` may modify the variable first (AdamW's decay). */
async function runTfjs(
  optimizer: tf.Optimizer,
  fixture: Fixture,
  beforeStep?: (w: tf.Variable) => void,
): Promise<{ params: Float32Array; state: Map<string, Float32Array> }> {
  const name = `w${variableCounter++}`;
  const w = tf.variable(tf.tensor1d(fixture.initial), true, name);
  for (const gradient of fixture.gradients) {
    beforeStep?.(w);
    const g = tf.tensor1d(gradient);
    optimizer.applyGradients({ [name]: g });
    g.dispose();
  }
  const params = w.dataSync() as Float32Array;
  const state = new Map<string, Float32Array>();
  for (const weight of await optimizer.getWeights()) {
    // Weight names are '<variable>/<state>', plus 'iter' for the step count.
    const slash = weight.name.lastIndexOf('/');
    if (slash >= 0) state.set(weight.name.slice(slash + 1), weight.tensor.dataSync() as Float32Array);
  }
  optimizer.dispose();
  w.dispose();
  return { params, state };
}

function runOurs(
  optimizer: ShardOptimizer,
  fixture: Fixture,
  shards: readonly [number, number][],
): { params: Float32Array; state: Float32Array[] } {
  const params = Float32Array.from(fixture.initial);
  const state = optimizer.stateNames.map(() => new Float32Array(SIZE));
  fixture.gradients.forEach((gradient, index) => {
    // Shards in reverse order: nothing may depend on which shard is updated first.
    for (const [from, to] of [...shards].reverse()) optimizer.update(params, gradient, state, from, to, index + 1);
  });
  return { params, state };
}

interface Agreement {
  maxRelativeDifference: number;
  bitIdentical: number;
  total: number;
}

function compare(ours: Float32Array, theirs: Float32Array, into: Agreement): void {
  expect(ours.length).toBe(theirs.length);
  for (let i = 0; i < theirs.length; i++) {
    const a = ours[i]!;
    const b = theirs[i]!;
    const relative = Math.abs(a - b) / Math.max(1, Math.abs(b));
    if (!(relative <= RELATIVE_TOLERANCE)) {
      throw new Error(`element ${i}: ours ${a}, tfjs ${b} (relative difference ${relative})`);
    }
    into.maxRelativeDifference = Math.max(into.maxRelativeDifference, relative);
    if (Object.is(a, b)) into.bitIdentical++;
    into.total++;
  }
}

interface Case {
  label: string;
  spec: OptimizerSpec;
  tfjs: () => tf.Optimizer;
  tinyGradients?: boolean;
  beforeStep?: (w: tf.Variable) => void;
}

const adamwDecay = (learningRate: number, weightDecay: number) => (w: tf.Variable) => {
  // Keras 3: variable.assign(variable - variable * wd * lr).
  tf.tidy(() => w.assign(tf.sub(w, tf.mul(tf.mul(w, weightDecay), learningRate))));
};

const CASES: Case[] = [
  { label: 'sgd plain (defaults)', spec: { name: 'sgd' }, tfjs: () => tf.train.sgd(0.01) },
  {
    label: 'sgd momentum',
    spec: { name: 'sgd', learningRate: 0.05, momentum: 0.9 },
    tfjs: () => tf.train.momentum(0.05, 0.9),
  },
  {
    label: 'sgd nesterov',
    spec: { name: 'sgd', learningRate: 0.03, momentum: 0.8, nesterov: true },
    tfjs: () => tf.train.momentum(0.03, 0.8, true),
  },
  { label: 'adam default', spec: { name: 'adam' }, tfjs: () => tf.train.adam() },
  {
    label: 'adam custom betas/eps',
    spec: { name: 'adam', learningRate: 0.01, beta1: 0.8, beta2: 0.95, epsilon: 1e-5 },
    tfjs: () => tf.train.adam(0.01, 0.8, 0.95, 1e-5),
  },
  {
    label: 'adamw (defaults)',
    spec: { name: 'adamw' },
    tfjs: () => tf.train.adam(0.001, 0.9, 0.999),
    beforeStep: adamwDecay(0.001, 0.004),
  },
  {
    label: 'adamw custom',
    spec: { name: 'adamw', learningRate: 0.02, weightDecay: 0.1, beta1: 0.85, beta2: 0.99 },
    tfjs: () => tf.train.adam(0.02, 0.85, 0.99),
    beforeStep: adamwDecay(0.02, 0.1),
  },
  { label: 'rmsprop plain (defaults)', spec: { name: 'rmsprop' }, tfjs: () => tf.train.rmsprop(0.001) },
  {
    label: 'rmsprop momentum',
    spec: { name: 'rmsprop', learningRate: 0.01, rho: 0.95, momentum: 0.9 },
    tfjs: () => tf.train.rmsprop(0.01, 0.95, 0.9),
  },
  {
    label: 'rmsprop centered',
    spec: { name: 'rmsprop', learningRate: 0.005, centered: true },
    tfjs: () => tf.train.rmsprop(0.005, 0.9, 0, undefined, true),
    tinyGradients: false,
  },
  {
    label: 'rmsprop centered momentum',
    spec: { name: 'rmsprop', learningRate: 0.005, rho: 0.8, momentum: 0.5, epsilon: 1e-6, centered: true },
    tfjs: () => tf.train.rmsprop(0.005, 0.8, 0.5, 1e-6, true),
    tinyGradients: false,
  },
];

const report: string[] = [];

beforeAll(async () => {
  await tf.setBackend('cpu');
  await tf.ready();
});

afterAll(() => {
  console.log(`optimizer agreement with TF.js 4.22 (cpu), ${STEPS} steps x ${SIZE} params:\n${report.join('\n')}`);
});

describe('shard optimizers match TensorFlow.js', () => {
  CASES.forEach((testCase, index) => {
    it(testCase.label, async () => {
      const fixture = makeFixture(1000 + index, testCase.tinyGradients ?? true);
      const theirs = await runTfjs(testCase.tfjs(), fixture, testCase.beforeStep);
      const optimizer = createOptimizer(testCase.spec);
      const ours = runOurs(optimizer, fixture, SHARDS);

      const params: Agreement = { maxRelativeDifference: 0, bitIdentical: 0, total: 0 };
      compare(ours.params, theirs.params, params);
      // TF.js keeps a momentum accumulator for RMSProp even at momentum 0; we do not need it.
      for (const [i, stateName] of optimizer.stateNames.entries()) {
        const theirState = theirs.state.get(stateName);
        expect(theirState, `TF.js state '${stateName}'`).toBeDefined();
        compare(ours.state[i]!, theirState!, params);
      }
      // Stricter than the tolerance, and what the op-by-op float32 rounding buys: a plain
      // float64 implementation passes the tolerance on params but differs in most bits.
      expect(params.bitIdentical).toBe(params.total);
      // The weights must actually have moved, or agreement proves nothing.
      let moved = 0;
      for (let i = 0; i < SIZE; i++) if (ours.params[i] !== fixture.initial[i]) moved++;
      expect(moved).toBeGreaterThan(SIZE * 0.9);

      // One shard or three: the same bits.
      const whole = runOurs(createOptimizer(testCase.spec), fixture, [[0, SIZE]]);
      expect(whole.params).toEqual(ours.params);

      report.push(
        `  ${testCase.label.padEnd(28)} max rel diff ${params.maxRelativeDifference.toExponential(2)}, ` +
          `bit-identical ${params.bitIdentical}/${params.total} (params + state)`,
      );
    });
  });
});

describe('Float32BiasCorrection', () => {
  it('equals TF.js accBeta after many steps, forwards and backwards', async () => {
    await tf.setBackend('cpu');
    for (const beta of [0.9, 0.999]) {
      const correction = new Float32BiasCorrection(beta);
      // TF.js: accBeta = scalar(beta).variable(); each step accBeta.assign(mul(accBeta, beta)).
      const accBeta = tf.variable(tf.scalar(beta), false);
      const expected: number[] = [];
      for (let step = 1; step <= 3000; step++) {
        expected.push(tf.tidy(() => tf.sub(1, accBeta).dataSync()[0]!));
        tf.tidy(() => accBeta.assign(tf.mul(accBeta, beta)));
      }
      accBeta.dispose();
      for (let step = 1; step <= 3000; step++) expect(correction.at(step)).toBe(expected[step - 1]);
      expect(correction.at(7)).toBe(expected[6]);
      expect(correction.at(2500)).toBe(expected[2499]);
    }
  });

  it('saturates at 1 once beta^t is below float32 resolution', () => {
    const correction = new Float32BiasCorrection(0.9);
    expect(correction.at(1_000_000)).toBe(1);
    // Going back recomputes the running product from step 1.
    const beta = Math.fround(0.9);
    let power = beta;
    for (let step = 2; step <= 10; step++) power = Math.fround(power * beta);
    expect(correction.at(10)).toBe(Math.fround(1 - power));
  });
});

describe('createOptimizer', () => {
  it('fills the documented defaults', () => {
    expect(createOptimizer({ name: 'sgd' }).hyperParameters).toEqual({
      learningRate: 0.01,
      momentum: 0,
      nesterov: false,
    });
    expect(createOptimizer({ name: 'adam' }).hyperParameters).toEqual({
      learningRate: 0.001,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-7,
    });
    expect(createOptimizer({ name: 'adamw' }).hyperParameters).toEqual({
      learningRate: 0.001,
      beta1: 0.9,
      beta2: 0.999,
      epsilon: 1e-7,
      weightDecay: 0.004,
    });
    expect(createOptimizer({ name: 'rmsprop' }).hyperParameters).toEqual({
      learningRate: 0.001,
      rho: 0.9,
      momentum: 0,
      epsilon: 1e-7,
      centered: false,
    });
    for (const name of ['sgd', 'adam', 'adamw', 'rmsprop'] as const) {
      expect(createOptimizer({ name }).hyperParameters).toEqual(OPTIMIZER_DEFAULTS[name]);
    }
  });

  it('keeps given values and drops fields of other optimizers', () => {
    const sgd = createOptimizer({ name: 'sgd', learningRate: 0.1, momentum: 0.9, nesterov: true, beta1: 0.5 });
    expect(sgd.hyperParameters).toEqual({ learningRate: 0.1, momentum: 0.9, nesterov: true });
    expect(Object.isFrozen(sgd.hyperParameters)).toBe(true);
  });

  it('matches the TF.js defaults for epsilon', async () => {
    await tf.setBackend('cpu');
    expect(OPTIMIZER_DEFAULTS.adam.epsilon).toBe(tf.backend().epsilon());
  });

  it('matches what tfjs-layers compiles for the strings sgd, adam and rmsprop', async () => {
    await tf.setBackend('cpu');
    const compiledConfig = (optimizer: string) => {
      const model = tf.sequential({ layers: [tf.layers.dense({ units: 1, inputShape: [1] })] });
      model.compile({ optimizer, loss: 'meanSquaredError' });
      const config = model.optimizer.getConfig();
      model.dispose();
      return config;
    };
    expect(compiledConfig('sgd')).toEqual({ learningRate: OPTIMIZER_DEFAULTS.sgd.learningRate });
    const { learningRate, beta1, beta2, epsilon } = OPTIMIZER_DEFAULTS.adam;
    expect(compiledConfig('adam')).toEqual({ learningRate, beta1, beta2, epsilon });
    const rmsprop = OPTIMIZER_DEFAULTS.rmsprop;
    expect(compiledConfig('rmsprop')).toEqual({
      learningRate: rmsprop.learningRate,
      decay: rmsprop.rho,
      momentum: rmsprop.momentum,
      epsilon: rmsprop.epsilon,
      centered: rmsprop.centered,
    });
  });

  it('names the state arrays it needs', () => {
    expect(createOptimizer({ name: 'sgd' }).stateNames).toEqual([]);
    expect(createOptimizer({ name: 'sgd', momentum: 0.9 }).stateNames).toEqual(['momentum']);
    expect(createOptimizer({ name: 'adam' }).stateNames).toEqual(['m', 'v']);
    expect(createOptimizer({ name: 'adamw' }).stateNames).toEqual(['m', 'v']);
    expect(createOptimizer({ name: 'rmsprop' }).stateNames).toEqual(['rms']);
    expect(createOptimizer({ name: 'rmsprop', momentum: 0.9, centered: true }).stateNames).toEqual([
      'rms',
      'mg',
      'momentum',
    ]);
  });

  it('rejects an unknown name with an Error naming it', () => {
    expect(() => createOptimizer({ name: 'adagrad' } as unknown as OptimizerSpec)).toThrow(Error);
    expect(() => createOptimizer({ name: 'adagrad' } as unknown as OptimizerSpec)).toThrow(/adagrad/);
  });

  it('rejects hyper-parameters that would produce NaN', () => {
    expect(() => createOptimizer({ name: 'adam', beta2: 1 })).toThrow(/beta2/);
    expect(() => createOptimizer({ name: 'sgd', learningRate: -1 })).toThrow(/learningRate/);
    expect(() => createOptimizer({ name: 'rmsprop', epsilon: Number.NaN })).toThrow(/epsilon/);
  });
});

describe('update argument checks', () => {
  const adam = createOptimizer({ name: 'adam' });
  const params = new Float32Array(10);
  const grads = new Float32Array(10);
  const state = [new Float32Array(10), new Float32Array(10)];

  it('rejects a shard outside the vector, a bad step, or missing state', () => {
    expect(() => adam.update(params, grads, state, 5, 11, 1)).toThrow(RangeError);
    expect(() => adam.update(params, grads, state, 6, 5, 1)).toThrow(RangeError);
    expect(() => adam.update(params, grads, state, 0, 10, 0)).toThrow(/step/);
    expect(() => adam.update(params, grads, [state[0]!], 0, 10, 1)).toThrow(/state/);
    expect(() => adam.update(params, new Float32Array(9), state, 0, 10, 1)).toThrow(/grads/);
  });

  it('touches nothing outside [from, to)', () => {
    const p = new Float32Array(10).fill(1);
    const g = new Float32Array(10).fill(1);
    const s = [new Float32Array(10), new Float32Array(10)];
    adam.update(p, g, s, 3, 7, 1);
    expect(Array.from(p.subarray(0, 3))).toEqual([1, 1, 1]);
    expect(Array.from(p.subarray(7))).toEqual([1, 1, 1]);
    expect(Array.from(s[0]!.subarray(0, 3))).toEqual([0, 0, 0]);
    expect(Array.from(s[1]!.subarray(7))).toEqual([0, 0, 0]);
    expect(p[3]).toBeLessThan(1);
  });
});
