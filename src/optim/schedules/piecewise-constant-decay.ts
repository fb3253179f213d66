/**
 * PiecewiseConstantDecay, as tf.keras.optimizers.schedules.PiecewiseConstantDecay:
 *   rate = values[0]   for step <= boundaries[0]
 *          values[i]   for boundaries[i-1] < step <= boundaries[i]
 *          values[n]   for step > boundaries[n-1]          (n = boundaries.length)
 */
import { z } from 'zod';
import { rate, scheduleName, type LearningRateSchedule } from './schedule.js';

export const piecewiseConstantDecaySchema = z
  .strictObject({
    name: scheduleName('piecewiseConstantDecay'),
    boundaries: z
      .array(z.int({ error: 'an integer >= 0' }).min(0, { error: 'an integer >= 0' }), { error: 'a non-empty array of increasing step numbers' })
      .min(1, { error: 'a non-empty array of increasing step numbers' }),
    values: z.array(rate(), { error: 'an array of learning rates, one more than boundaries' }),
  })
  .superRefine((spec, ctx) => {
    spec.boundaries.forEach((b, i) => {
      if (i > 0 && b <= spec.boundaries[i - 1]!) {
        ctx.addIssue({ code: 'custom', path: ['boundaries', i], input: b, message: `a step number > ${spec.boundaries[i - 1]} (boundaries increase)` });
      }
    });
    if (spec.values.length !== spec.boundaries.length + 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['values'],
        input: spec.values,
        message: `${spec.boundaries.length + 1} learning rates (one more than boundaries)`,
      });
    }
  });

export function piecewiseConstantDecay(spec: z.output<typeof piecewiseConstantDecaySchema>): LearningRateSchedule {
  const { boundaries, values } = spec;
  return (step) => {
    let i = 0;
    while (i < boundaries.length && step > boundaries[i]!) i++;
    return Math.fround(values[i]!);
  };
}
