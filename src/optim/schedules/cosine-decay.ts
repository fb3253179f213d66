/**
 * CosineDecay with optional linear warm-up, as tf.keras.optimizers.schedules.CosineDecay
 * (TF 2.13+ / Keras 3):
 *   without warmupTarget: s = min(step, decaySteps)
 *     rate = initialLearningRate * ((1 - alpha) * 0.5 * (1 + cos(pi * s / decaySteps)) + alpha)
 *   with warmupTarget:    s = min(step, warmupSteps + decaySteps)
 *     s < warmupSteps: rate = initialLearningRate + (warmupTarget - initialLearningRate) * s / warmupSteps
 *     otherwise:       rate = warmupTarget * ((1 - alpha) * 0.5 * (1 + cos(pi * (s - warmupSteps) / decaySteps)) + alpha)
 */
import { z } from 'zod';
import { fraction, rate, scheduleName, steps, type LearningRateSchedule } from './schedule.js';

export const cosineDecaySchema = z
  .strictObject({
    name: scheduleName('cosineDecay'),
    // May be 0: warm-up usually starts from 0 (Keras's own example does).
    initialLearningRate: rate(false),
    decaySteps: steps(),
    alpha: fraction().default(0),
    warmupTarget: rate().optional(),
    warmupSteps: steps(0).default(0),
  })
  .superRefine((spec, ctx) => {
    if (spec.warmupTarget === undefined && spec.warmupSteps > 0) {
      ctx.addIssue({ code: 'custom', path: ['warmupTarget'], input: undefined, message: 'the rate warm-up reaches (warmupSteps is set)' });
    }
    if (spec.warmupTarget === undefined && spec.initialLearningRate === 0) {
      ctx.addIssue({ code: 'custom', path: ['initialLearningRate'], input: 0, message: 'a number > 0 (without warmupTarget the rate would stay 0)' });
    }
  });

export function cosineDecay(spec: z.output<typeof cosineDecaySchema>): LearningRateSchedule {
  const { initialLearningRate, decaySteps, alpha, warmupTarget, warmupSteps } = spec;
  const decay = (s: number, from: number) => from * ((1 - alpha) * 0.5 * (1 + Math.cos((Math.PI * s) / decaySteps)) + alpha);
  return (step) => {
    if (warmupTarget === undefined) return Math.fround(decay(Math.min(step, decaySteps), initialLearningRate));
    const s = Math.min(step, warmupSteps + decaySteps);
    if (s < warmupSteps) return Math.fround(initialLearningRate + ((warmupTarget - initialLearningRate) * s) / warmupSteps);
    return Math.fround(decay(s - warmupSteps, warmupTarget));
  };
}
