/**
 * Reduce-on-plateau, as Keras's ReduceLROnPlateau callback, at the end of each epoch:
 *   in cooldown (cooldownCounter > 0): cooldownCounter -= 1, wait = 0
 *   if current improves on best (min: current < best - minDelta; max: current > best + minDelta):
 *     best = current, wait = 0
 *   else if not in cooldown: wait += 1; when wait >= patience and the rate > minLr:
 *     rate = max(rate * factor, minLr), cooldownCounter = cooldown, wait = 0
 * Keras overwrites a constant rate; here the reduction is a scale on the rate (constant or
 * scheduled), so it composes with a schedule: rate(step) = max(schedule(step) * scale, minLr)
 * once reduced, and scale = factor^reductions. With a constant rate that is Keras's rate.
 * mode "auto" is "max" for a monitor whose name contains "acc", else "min" (as Keras).
 */
import { z } from 'zod';
import type { RateAdjustment } from './learning-rate.js';

export const reduceLrOnPlateauSchema = z.strictObject(
  {
    monitor: z.string({ error: 'an epoch metric name such as "val_loss"' }).min(1, { error: 'an epoch metric name such as "val_loss"' }).default('val_loss'),
    factor: z.number({ error: 'a number > 0 and < 1' }).gt(0, { error: 'a number > 0 and < 1' }).lt(1, { error: 'a number > 0 and < 1' }).default(0.1),
    patience: z.int({ error: 'an integer >= 0' }).min(0, { error: 'an integer >= 0' }).default(10),
    mode: z.enum(['auto', 'min', 'max'], { error: 'one of auto, min, max' }).default('auto'),
    minDelta: z.number({ error: 'a number >= 0' }).min(0, { error: 'a number >= 0' }).default(1e-4),
    cooldown: z.int({ error: 'an integer >= 0' }).min(0, { error: 'an integer >= 0' }).default(0),
    minLr: z.number({ error: 'a number >= 0' }).min(0, { error: 'a number >= 0' }).default(0),
  },
  { error: 'an object such as {"monitor": "val_loss", "factor": 0.5, "patience": 3}' },
);

export type ReduceLrOnPlateauSpec = z.output<typeof reduceLrOnPlateauSchema>;

/** What a checkpoint keeps so that a resumed run reduces when the uninterrupted one would. */
export interface PlateauState {
  /** Best monitored value so far (±Infinity before the first epoch). */
  best: number;
  /** Epochs without improvement since the last improvement or reduction. */
  wait: number;
  /** Epochs of cooldown left. */
  cooldownCounter: number;
  /** Product of the reductions so far (1: none). */
  scale: number;
}

export class ReduceLrOnPlateau {
  readonly state: PlateauState;
  private readonly mode: 'min' | 'max';

  constructor(
    readonly spec: ReduceLrOnPlateauSpec,
    state?: PlateauState,
  ) {
    this.mode = spec.mode === 'auto' ? (spec.monitor.includes('acc') ? 'max' : 'min') : spec.mode;
    const initialBest = this.mode === 'min' ? Infinity : -Infinity;
    // JSON (the processes' state exchange) turns the initial ±Infinity into null.
    this.state = state ? { ...state, best: typeof state.best === 'number' ? state.best : initialBest } : { best: initialBest, wait: 0, cooldownCounter: 0, scale: 1 };
  }

  get adjustment(): RateAdjustment {
    return { scale: this.state.scale, floor: this.spec.minLr };
  }

  /** Takes one epoch's monitored value; `rate` is the current learning rate. Returns whether it reduced the rate. */
  onEpochEnd(current: number, rate: number): boolean {
    const s = this.state;
    const { minDelta, patience, factor, cooldown, minLr } = this.spec;
    if (s.cooldownCounter > 0) {
      s.cooldownCounter--;
      s.wait = 0;
    }
    const improved = this.mode === 'min' ? current < s.best - minDelta : current > s.best + minDelta;
    if (improved) {
      s.best = current;
      s.wait = 0;
      return false;
    }
    if (s.cooldownCounter > 0) return false;
    s.wait++;
    if (s.wait < patience || !(rate > Math.fround(minLr))) return false;
    s.scale *= factor;
    s.cooldownCounter = cooldown;
    s.wait = 0;
    return true;
  }
}
