/**
 * The learning rate of each update: a constant or a schedule of the update number (Keras's
 * `optimizer.iterations`: updates applied before this one), times the scale reduce-on-plateau
 * has reached. Every replica and the coordinator compute it from the same inputs, so they agree
 * bit for bit, and a resumed run (which restores the update count and the scale) continues it.
 */
import { createSchedule, type LearningRateSchedule, type LearningRateScheduleSpec } from './schedules/index.js';

/** What reduce-on-plateau does to the scheduled rate: rate * scale, not below floor (once reduced). */
export interface RateAdjustment {
  scale: number;
  floor: number;
}

export const NO_ADJUSTMENT: RateAdjustment = Object.freeze({ scale: 1, floor: 0 });

export class LearningRate {
  private constructor(private readonly schedule: LearningRateSchedule) {}

  /** `spec` is the config's optimizer.learningRate; `constant` the optimizer's resolved rate (for a number or none). */
  static of(spec: number | LearningRateScheduleSpec | undefined, constant: number): LearningRate {
    if (spec !== undefined && typeof spec === 'object') return new LearningRate(createSchedule(spec));
    const rate = Math.fround(constant);
    return new LearningRate(() => rate);
  }

  /** The float32 rate of the update that follows `step` updates. */
  at(step: number, adjustment: RateAdjustment = NO_ADJUSTMENT): number {
    const scheduled = this.schedule(step);
    if (adjustment.scale === 1) return scheduled;
    return Math.fround(Math.max(scheduled * adjustment.scale, adjustment.floor));
  }
}
