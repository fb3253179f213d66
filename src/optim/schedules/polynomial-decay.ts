/**
 * PolynomialDecay, as tf.keras.optimizers.schedules.PolynomialDecay:
 *   without cycle: s = min(step, decaySteps), d = decaySteps
 *   with cycle:    s = step, d = decaySteps * max(1, ceil(step / decaySteps))
 *   rate = (initialLearningRate - endLearningRate) * (1 - s / d)^power + endLearningRate
 */
import { z } from 'zod';
import { flag, positiveNumber, rate, scheduleName, steps, type LearningRateSchedule } from './schedule.js';

export const polynomialDecaySchema = z.strictObject({
  name: scheduleName('polynomialDecay'),
  initialLearningRate: rate(),
  decaySteps: steps(),
  endLearningRate: rate(false).default(0.0001),
  power: positiveNumber().default(1),
  cycle: flag().default(false),
});

export function polynomialDecay(spec: z.output<typeof polynomialDecaySchema>): LearningRateSchedule {
  const { initialLearningRate, decaySteps, endLearningRate, power, cycle } = spec;
  return (step) => {
    let s = step;
    let d = decaySteps;
    // Keras: at step 0 the multiplier is 1 (ceil(0) would make the period 0).
    if (cycle) d = decaySteps * (step === 0 ? 1 : Math.ceil(step / decaySteps));
    else s = Math.min(step, decaySteps);
    return Math.fround((initialLearningRate - endLearningRate) * (1 - s / d) ** power + endLearningRate);
  };
}
