/**
 * ExponentialDecay, as tf.keras.optimizers.schedules.ExponentialDecay:
 *   p    = step / decaySteps            (floor(step / decaySteps) when staircase)
 *   rate = initialLearningRate * decayRate^p
 */
import { z } from 'zod';
import { flag, positiveNumber, rate, scheduleName, steps, type LearningRateSchedule } from './schedule.js';

export const exponentialDecaySchema = z.strictObject({
  name: scheduleName('exponentialDecay'),
  initialLearningRate: rate(),
  decaySteps: steps(),
  decayRate: positiveNumber(),
  staircase: flag().default(false),
});

export function exponentialDecay(spec: z.output<typeof exponentialDecaySchema>): LearningRateSchedule {
  const { initialLearningRate, decaySteps, decayRate, staircase } = spec;
  return (step) => {
    const p = staircase ? Math.floor(step / decaySteps) : step / decaySteps;
    return Math.fround(initialLearningRate * decayRate ** p);
  };
}
