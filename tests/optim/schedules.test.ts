/**
 * Each learning-rate schedule against values worked out by hand from tf.keras's formulas (the
 * ones in each file's header and in the Keras docs), at the steps where the formula's pieces
 * meet: boundaries, ends of decay, restarts, staircase jumps.
 */
import { describe, expect, it } from 'vitest';
import { configErrorOf } from '../helpers/config-error.js';
import { parseRunConfig } from '../../src/config/load.js';
import { LearningRate } from '../../src/optim/learning-rate.js';
import { checkPlateauMonitor } from '../../src/train/learning-rate-state.js';
import { createSchedule, learningRateScheduleSchema, type LearningRateScheduleSpec } from '../../src/optim/schedules/index.js';

const schedule = (spec: Record<string, unknown>) => createSchedule(learningRateScheduleSchema.parse(spec) as LearningRateScheduleSpec);

/** Each rate is float32: within one float32 rounding of the exact value. */
function expectRates(spec: Record<string, unknown>, expected: [step: number, rate: number][]): void {
  const rate = schedule(spec);
  for (const [step, value] of expected) {
    const got = rate(step);
    expect(got, `step ${step}`).toBe(Math.fround(got));
    expect(Math.abs(got - value), `step ${step}: ${got} vs ${value}`).toBeLessThanOrEqual(Math.abs(value) * 2 ** -23 + 1e-12);
  }
}

describe('learning-rate schedules (tf.keras.optimizers.schedules)', () => {
  it('exponentialDecay: initial * rate^(step / decaySteps), floored with staircase', () => {
    const spec = { name: 'exponentialDecay', initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5 };
    expectRates(spec, [[0, 0.1], [5, 0.1 * Math.SQRT1_2], [10, 0.05], [15, 0.1 * 0.5 ** 1.5], [30, 0.0125]]);
    expectRates({ ...spec, staircase: true }, [[0, 0.1], [9, 0.1], [10, 0.05], [19, 0.05], [20, 0.025]]);
  });

  it('piecewiseConstantDecay: values[i] up to and including boundaries[i]', () => {
    // Keras's docstring example: 1.0 for the first 100001 steps, 0.5 for the next 10000, 0.1 after.
    expectRates({ name: 'piecewiseConstantDecay', boundaries: [100000, 110000], values: [1.0, 0.5, 0.1] }, [
      [0, 1],
      [100000, 1],
      [100001, 0.5],
      [110000, 0.5],
      [110001, 0.1],
    ]);
  });

  it('polynomialDecay: to endLearningRate over decaySteps, then flat; with cycle, over growing multiples', () => {
    const spec = { name: 'polynomialDecay', initialLearningRate: 0.1, decaySteps: 100, endLearningRate: 0.01, power: 2 };
    expectRates(spec, [[0, 0.1], [50, 0.09 * 0.25 + 0.01], [100, 0.01], [250, 0.01]]);
    // cycle: at step 150 the period is 200 steps: (1 - 150/200)^2.
    expectRates({ ...spec, cycle: true }, [[0, 0.1], [100, 0.01], [150, 0.09 * 0.0625 + 0.01], [200, 0.01], [250, 0.09 * (1 - 250 / 300) ** 2 + 0.01]]);
    // Keras's defaults: endLearningRate 1e-4, power 1.
    expectRates({ name: 'polynomialDecay', initialLearningRate: 0.1, decaySteps: 10 }, [[5, 0.05005], [10, 0.0001]]);
  });

  it('inverseTimeDecay: initial / (1 + rate * step / decaySteps)', () => {
    const spec = { name: 'inverseTimeDecay', initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5 };
    expectRates(spec, [[0, 0.1], [15, 0.1 / 1.75], [20, 0.05]]);
    expectRates({ ...spec, staircase: true }, [[15, 0.1 / 1.5], [20, 0.05]]);
  });

  it('cosineDecay: half a cosine from initial to alpha * initial, then flat', () => {
    expectRates({ name: 'cosineDecay', initialLearningRate: 0.1, decaySteps: 100, alpha: 0.1 }, [
      [0, 0.1],
      [50, 0.1 * (0.9 * 0.5 + 0.1)],
      [25, 0.1 * (0.9 * 0.5 * (1 + Math.SQRT1_2) + 0.1)],
      [100, 0.01],
      [1000, 0.01],
    ]);
  });

  it('cosineDecay with warm-up: linear from initial to warmupTarget, then the cosine from warmupTarget', () => {
    // Keras's docstring: warm up from 0 to 0.1 over warmupSteps, then decay.
    expectRates({ name: 'cosineDecay', initialLearningRate: 0, decaySteps: 100, warmupTarget: 0.1, warmupSteps: 10 }, [
      [0, 0],
      [5, 0.05],
      [10, 0.1],
      [60, 0.05],
      [110, 0],
      [500, 0],
    ]);
  });

  it('cosineDecayRestarts: periods of firstDecaySteps * tMul^i from mMul^i of the initial rate', () => {
    const spec = { name: 'cosineDecayRestarts', initialLearningRate: 0.1, firstDecaySteps: 10, tMul: 2, mMul: 0.5 };
    expectRates(spec, [
      [0, 0.1],
      [5, 0.05],
      [10, 0.05], // restart 1 at 0.5 of the rate, a period of 20 steps
      [20, 0.025],
      [30, 0.025], // restart 2 at 0.25, a period of 40 steps
      [50, 0.0125],
    ]);
    // tMul 1: equal periods; defaults alpha 0, mMul 1.
    expectRates({ name: 'cosineDecayRestarts', initialLearningRate: 0.1, firstDecaySteps: 10, tMul: 1 }, [[0, 0.1], [5, 0.05], [10, 0.1], [25, 0.05]]);
  });

  it('accepts Keras class names and fills Keras defaults', () => {
    expect(learningRateScheduleSchema.parse({ name: 'CosineDecayRestarts', initialLearningRate: 0.1, firstDecaySteps: 10 })).toEqual({
      name: 'cosineDecayRestarts',
      initialLearningRate: 0.1,
      firstDecaySteps: 10,
      tMul: 2,
      mMul: 1,
      alpha: 0,
    });
  });

  it('is scaled by reduce-on-plateau and floored at minLr once reduced', () => {
    const rate = LearningRate.of(learningRateScheduleSchema.parse({ name: 'exponentialDecay', initialLearningRate: 0.1, decaySteps: 10, decayRate: 0.5 }) as LearningRateScheduleSpec, 0);
    expect(rate.at(10)).toBe(Math.fround(0.05));
    expect(rate.at(10, { scale: 0.1, floor: 0 })).toBe(Math.fround(0.005));
    expect(rate.at(10, { scale: 0.1, floor: 0.02 })).toBe(Math.fround(0.02));
    // A constant rate is the optimizer's.
    expect(LearningRate.of(undefined, 0.001).at(12345)).toBe(Math.fround(0.001));
  });
});

describe('optimizer.learningRate, clipping and training.reduceLrOnPlateau in a run config', () => {
  const config = (optimizer: unknown, training: Record<string, unknown> = {}) => ({
    name: 'lr',
    model: { inputShape: [2], layers: [{ type: 'dense', units: 1 }] },
    data: 'xor',
    loss: 'meanSquaredError',
    optimizer,
    training: { epochs: 1, batchSize: 4, ...training },
  });

  it('takes a schedule object for learningRate and clipping options for every optimizer', () => {
    const parsed = parseRunConfig(config({ name: 'sgd', learningRate: { name: 'ExponentialDecay', initialLearningRate: 0.1, decaySteps: 5, decayRate: 0.9 }, globalClipNorm: 1 }));
    expect(parsed.optimizer).toEqual({
      name: 'sgd',
      learningRate: { name: 'exponentialDecay', initialLearningRate: 0.1, decaySteps: 5, decayRate: 0.9, staircase: false },
      globalClipNorm: 1,
    });
    expect(parseRunConfig(config({ name: 'rmsprop', clipNorm: 0.5 })).optimizer).toEqual({ name: 'rmsprop', clipNorm: 0.5 });
  });

  it('says which schedule field is wrong, and that a schedule name is unknown', () => {
    expect(configErrorOf(() => parseRunConfig(config({ name: 'adam', learningRate: { name: 'cosineDecay', initialLearningRate: 0.1, decaySteps: 0 } }))).message).toBe(
      'optimizer.learningRate.decaySteps: expected an integer >= 1, found 0',
    );
    expect(configErrorOf(() => parseRunConfig(config({ name: 'adam', learningRate: { name: 'stepDecay' } }))).message).toContain('optimizer.learningRate.name: expected one of exponentialDecay, piecewiseConstantDecay');
    expect(
      configErrorOf(() => parseRunConfig(config({ name: 'adam', learningRate: { name: 'piecewiseConstantDecay', boundaries: [10, 20], values: [0.1, 0.01] } }))).message,
    ).toBe('optimizer.learningRate.values: expected 3 learning rates (one more than boundaries), found [0.1,0.01]');
  });

  it('refuses two clipping options together, as Keras does', () => {
    expect(configErrorOf(() => parseRunConfig(config({ name: 'adam', clipNorm: 1, clipValue: 0.5 }))).message).toBe(
      'optimizer.clipValue: cannot be combined with optimizer.clipNorm: set one of clipNorm, clipValue, globalClipNorm (as Keras)',
    );
    expect(configErrorOf(() => parseRunConfig(config({ name: 'adam', globalClipNorm: 0 }))).message).toBe('optimizer.globalClipNorm: expected a number > 0, found 0');
  });

  it('fills reduce-on-plateau with Keras defaults and checks its fields', () => {
    expect(parseRunConfig(config('adam', { reduceLrOnPlateau: { monitor: 'loss' } })).training.reduceLrOnPlateau).toEqual({
      monitor: 'loss',
      factor: 0.1,
      patience: 10,
      mode: 'auto',
      minDelta: 1e-4,
      cooldown: 0,
      minLr: 0,
    });
    expect(configErrorOf(() => parseRunConfig(config('adam', { reduceLrOnPlateau: { factor: 1 } }))).message).toBe(
      'training.reduceLrOnPlateau.factor: expected a number > 0 and < 1, found 1',
    );
  });

  it('refuses a monitor the run does not report, before any step', () => {
    const parsed = parseRunConfig({ ...config('adam', { reduceLrOnPlateau: {} }), metrics: ['mae'] });
    expect(() => checkPlateauMonitor(parsed, false)).toThrow(
      'training.reduceLrOnPlateau.monitor: expected an epoch metric of this run (loss, meanAbsoluteError), found "val_loss" (this run has no validation data: set training.validationSplit or validateOnTest)',
    );
    expect(() => checkPlateauMonitor(parsed, true)).not.toThrow();
  });
});
