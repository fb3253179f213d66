/**
 * InverseTimeDecay, as tf.keras.optimizers.schedules.InverseTimeDecay:
 *   p    = step / decaySteps            (floor(step / decaySteps) when staircase)
 *   rate = initialLearningRate / (1 + decayRate * p)
 */
import { z } from 'zod';
import { flag, positiveNumber, rate, scheduleName, steps, type LearningRateSchedule } from './schedule.js';

export const inverseTimeDecaySchema = z.strictObject({
  name: scheduleName('inverseTimeDecay'),
  initialLearningRate: rate(),
  decaySteps: steps(),
  decayRate: positiveNumber(),
  staircase: flag().default(false),
});

export function inverseTimeDecay(spec: z.output<typeof inverseTimeDecaySchema>): LearningRateSchedule {
  const { initialLearningRate, decaySteps, decayRate, staircase } = spec;
  return (step) => {
    const p = staircase ? Math.floor(step / decaySteps) : step / decaySteps;
    return Math.fround(initialLearningRate / (1 + decayRate * p));
  };
}
