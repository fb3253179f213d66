/**
 * The learning-rate schedules a config can name, in one table: a schedule is one file in this
 * folder (its formula, its zod schema and its function) plus one line here. Names are Keras's
 * class names in camelCase; Keras's own class names are accepted too.
 */
import { z } from 'zod';
import { cosineDecay, cosineDecaySchema } from './cosine-decay.js';
import { cosineDecayRestarts, cosineDecayRestartsSchema } from './cosine-decay-restarts.js';
import { exponentialDecay, exponentialDecaySchema } from './exponential-decay.js';
import { inverseTimeDecay, inverseTimeDecaySchema } from './inverse-time-decay.js';
import { piecewiseConstantDecay, piecewiseConstantDecaySchema } from './piecewise-constant-decay.js';
import { polynomialDecay, polynomialDecaySchema } from './polynomial-decay.js';
import type { LearningRateSchedule } from './schedule.js';

export type { LearningRateSchedule } from './schedule.js';

interface ScheduleEntry<S extends z.ZodType> {
  schema: S;
  create: (spec: z.output<S>) => LearningRateSchedule;
}

const entry = <S extends z.ZodType>(schema: S, create: (spec: z.output<S>) => LearningRateSchedule): ScheduleEntry<S> => ({ schema, create });

export const SCHEDULES = {
  exponentialDecay: entry(exponentialDecaySchema, exponentialDecay),
  piecewiseConstantDecay: entry(piecewiseConstantDecaySchema, piecewiseConstantDecay),
  polynomialDecay: entry(polynomialDecaySchema, polynomialDecay),
  inverseTimeDecay: entry(inverseTimeDecaySchema, inverseTimeDecay),
  cosineDecay: entry(cosineDecaySchema, cosineDecay),
  cosineDecayRestarts: entry(cosineDecayRestartsSchema, cosineDecayRestarts),
};

export type ScheduleName = keyof typeof SCHEDULES;
export const SCHEDULE_NAMES = Object.keys(SCHEDULES) as ScheduleName[];

/** A schedule as a config names it, validated (defaults filled in). */
export type LearningRateScheduleSpec = { [N in ScheduleName]: z.output<(typeof SCHEDULES)[N]['schema']> }[ScheduleName];

const upperFirst = (name: string) => name[0]!.toUpperCase() + name.slice(1);

/**
 * A schedule object such as {"name": "cosineDecay", "initialLearningRate": 0.1, "decaySteps": 1000};
 * `name` picks the schedule's own schema, so errors speak of that schedule's fields.
 */
export const learningRateScheduleSchema = z
  .object({ name: z.string({ error: `a schedule name: one of ${SCHEDULE_NAMES.join(', ')}` }) }, { error: 'a learning-rate schedule object' })
  .loose()
  .transform((value, ctx): LearningRateScheduleSpec => {
    const name = (SCHEDULE_NAMES as string[]).includes(value.name)
      ? (value.name as ScheduleName)
      : SCHEDULE_NAMES.find((n) => upperFirst(n) === value.name);
    if (name === undefined) {
      ctx.addIssue({ code: 'custom', path: ['name'], input: value.name, message: `one of ${SCHEDULE_NAMES.join(', ')}` });
      return z.NEVER;
    }
    const parsed = SCHEDULES[name].schema.safeParse({ ...value, name });
    if (!parsed.success) {
      forwardIssues(parsed.error.issues, value, ctx);
      return z.NEVER;
    }
    return parsed.data as LearningRateScheduleSpec;
  });

/**
 * optimizer.learningRate: a number checked by `constant`, or a schedule object. Not a zod union,
 * whose error would only say that neither matched: the value's kind picks the schema, so the
 * error names the schedule's own field.
 */
export function learningRateSchema(constant: z.ZodType<number>, expected: string): z.ZodType<number | LearningRateScheduleSpec> {
  return z.unknown().transform((value, ctx) => {
    const isObject = value !== null && typeof value === 'object' && !Array.isArray(value);
    const parsed = isObject ? learningRateScheduleSchema.safeParse(value) : typeof value === 'number' ? constant.safeParse(value) : undefined;
    if (parsed === undefined) {
      ctx.addIssue({ code: 'custom', input: value, message: expected });
      return z.NEVER;
    }
    if (!parsed.success) {
      forwardIssues(parsed.error.issues, value, ctx);
      return z.NEVER;
    }
    return parsed.data;
  }) as unknown as z.ZodType<number | LearningRateScheduleSpec>;
}

/**
 * Re-raises a nested parse's issues at their paths, with the value found there (zod's issues do
 * not carry it; the config's messages say "found X").
 */
function forwardIssues(issues: readonly z.core.$ZodIssue[], value: unknown, ctx: z.core.$RefinementCtx): void {
  for (const issue of issues) {
    let input: unknown = value;
    for (const key of issue.path) input = input !== null && typeof input === 'object' ? (input as Record<PropertyKey, unknown>)[key as PropertyKey] : undefined;
    ctx.addIssue({ ...issue, code: 'custom', path: issue.path as PropertyKey[], message: issue.message, input } as never);
  }
}

export function createSchedule(spec: LearningRateScheduleSpec): LearningRateSchedule {
  return (SCHEDULES[spec.name].create as (s: LearningRateScheduleSpec) => LearningRateSchedule)(spec);
}

/** The rate of the first update: what an optimizer reports as its learning rate before any step. */
export function initialRate(spec: LearningRateScheduleSpec): number {
  return createSchedule(spec)(0);
}
