/**
 * What every learning-rate schedule shares: the function type and the zod pieces of its config.
 * A schedule maps the number of optimizer updates applied before this one (Keras's
 * `optimizer.iterations`, from 0) to the rate of this update, as tf.keras.optimizers.schedules
 * do. Rates are computed in double precision and rounded to float32 once, at the end: the
 * optimizer rules use the rate as a float32 scalar (Keras computes the schedule in float32
 * throughout, so the two agree within a few float32 ulps).
 */
import { z } from 'zod';

export type LearningRateSchedule = (step: number) => number;

/** Larger steps diverge at the first update for any model here; 1e308 is a typo (as config/schema.ts). */
export const MAX_LEARNING_RATE = 10;

/** A learning rate: `positive` refuses 0 (a rate a schedule starts from may be 0 for warm-up). */
export function rate(positive = true) {
  const expected = `a number ${positive ? '>' : '>='} 0 and <= ${MAX_LEARNING_RATE}`;
  const base = z.number({ error: expected });
  return (positive ? base.gt(0, { error: expected }) : base.min(0, { error: expected })).max(MAX_LEARNING_RATE, { error: expected });
}

/** A count of steps >= 1 (decaySteps and the like). */
export function steps(min = 1) {
  const expected = `an integer >= ${min}`;
  return z.int({ error: expected }).min(min, { error: expected });
}

export function positiveNumber() {
  return z.number({ error: 'a number > 0' }).gt(0, { error: 'a number > 0' });
}

export function fraction() {
  const expected = 'a number from 0 to 1';
  return z.number({ error: expected }).min(0, { error: expected }).max(1, { error: expected });
}

export function flag() {
  return z.boolean({ error: 'true or false' });
}

/** The schedule's `name` field: its own name only. */
export function scheduleName<N extends string>(name: N) {
  return z.literal(name, { error: `"${name}"` });
}
