/**
 * `training.earlyStopping` of the run config, as Keras's EarlyStopping arguments: stop when
 * `monitor` has not improved by more than `minDelta` for `patience` epochs, and optionally end
 * with the weights of its best epoch. Whether the monitored metric exists in a run is checked
 * when the run's data are known (setup.ts).
 */
import { z } from 'zod';

export const EARLY_STOPPING_MODES = ['auto', 'min', 'max'] as const;

/** A bound against typos, not a real limit. */
const MAX_PATIENCE = 1_000_000;

function nonEmptyName(what: string) {
  const expected = `a non-empty string (${what})`;
  return z.string({ error: expected }).min(1, { error: expected }).max(200, { error: `a string of at most 200 characters (${what})` });
}

export const earlyStoppingSchema = z.strictObject(
  {
    /** An epoch metric: "loss", a metric of config.metrics, or "val_" + either (default val_loss, as Keras). */
    monitor: nonEmptyName('an epoch metric such as "val_loss"').default('val_loss'),
    /** "auto": max for accuracies, min otherwise (as Keras and checkpoint.mode). */
    mode: z.enum(EARLY_STOPPING_MODES, { error: `one of ${EARLY_STOPPING_MODES.join(', ')}` }).default('auto'),
    /** Epochs without improvement before training stops. */
    patience: z
      .int({ error: 'an integer >= 0' })
      .min(0, { error: 'an integer >= 0' })
      .max(MAX_PATIENCE, { error: `an integer from 0 to ${MAX_PATIENCE} (a bound against typos)` })
      .default(0),
    /** An improvement must exceed this. */
    minDelta: z.number({ error: 'a finite number >= 0' }).min(0, { error: 'a finite number >= 0' }).refine(Number.isFinite, { error: 'a finite number >= 0' }).default(0),
    /** End the run (when it stops early or trains its last epoch) with the weights of the best epoch. */
    restoreBestWeights: z.boolean({ error: 'true or false' }).default(false),
  },
  { error: 'an object such as {"monitor": "val_loss", "patience": 3}' },
);

export type EarlyStoppingConfig = z.output<typeof earlyStoppingSchema>;

/** Whether lower or higher values of `monitor` are better. */
export function monitorMode(monitor: string, mode: 'auto' | 'min' | 'max' | undefined): 'min' | 'max' {
  if (mode === 'min' || mode === 'max') return mode;
  return /acc/i.test(monitor) ? 'max' : 'min';
}
