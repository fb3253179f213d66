/**
 * CosineDecayRestarts (SGDR, Loshchilov & Hutter), as tf.keras.optimizers.schedules.CosineDecayRestarts:
 *   f = step / firstDecaySteps
 *   tMul = 1: i = floor(f), f = f - i
 *   else:     i = floor(log(1 - f * (1 - tMul)) / log(tMul))
 *             f = (f - (1 - tMul^i) / (1 - tMul)) / tMul^i
 *   rate = initialLearningRate * ((1 - alpha) * 0.5 * mMul^i * (1 + cos(pi * f)) + alpha)
 * Period i lasts firstDecaySteps * tMul^i steps and starts from mMul^i of the initial rate.
 */
import { z } from 'zod';
import { fraction, positiveNumber, rate, scheduleName, steps, type LearningRateSchedule } from './schedule.js';

export const cosineDecayRestartsSchema = z.strictObject({
  name: scheduleName('cosineDecayRestarts'),
  initialLearningRate: rate(),
  firstDecaySteps: steps(),
  // Below 1 the periods shrink towards a finite sum, after which Keras's formula gives NaN.
  tMul: z.number({ error: 'a number >= 1' }).min(1, { error: 'a number >= 1' }).default(2),
  mMul: positiveNumber().default(1),
  alpha: fraction().default(0),
});

export function cosineDecayRestarts(spec: z.output<typeof cosineDecayRestartsSchema>): LearningRateSchedule {
  const { initialLearningRate, firstDecaySteps, tMul, mMul, alpha } = spec;
  return (step) => {
    let f = step / firstDecaySteps;
    let i: number;
    if (tMul === 1) {
      i = Math.floor(f);
      f -= i;
    } else {
      i = Math.floor(Math.log(1 - f * (1 - tMul)) / Math.log(tMul));
      f = (f - (1 - tMul ** i) / (1 - tMul)) / tMul ** i;
    }
    return Math.fround(initialLearningRate * ((1 - alpha) * 0.5 * mMul ** i * (1 + Math.cos(Math.PI * f)) + alpha));
  };
}
