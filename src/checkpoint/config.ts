/**
 * The checkpoint module's own fields of the run config's `checkpoint` section (the section
 * itself is in config/schema.ts, which spreads these in).
 */
import { z } from 'zod';

export const ON_WRITE_ERROR = ['stop', 'warn'] as const;
/** What a failed checkpoint write does: stop the run at the next step boundary (default), or warn and train on. */
export type OnWriteError = (typeof ON_WRITE_ERROR)[number];

export const checkpointWriteFields = {
  onWriteError: z.enum(ON_WRITE_ERROR, { error: `one of ${ON_WRITE_ERROR.join(', ')}` }).default('stop'),
};

/**
 * The default cadence: a checkpoint at the first step boundary (a segment's or an epoch's end)
 * at least this long after the last one (or the start of fit()), plus one at the end of the
 * run. It bounds both the work a kill loses and what checkpoints cost (as Keras's
 * BackupAndRestore bounds it by steps): a write costs a copy of the state and a few fsyncs,
 * once a minute rather than once per epoch of a model whose epoch takes milliseconds.
 */
export const DEFAULT_CHECKPOINT_EVERY_SECONDS = 60;
/** Node's longest timer is 24.8 days; anything longer is a typo. */
const MAX_EVERY_SECONDS = 2_147_483;

const everySecondsExpected = 'a number of seconds >= 0 (0: no time-based checkpoints)';

export const checkpointCadenceFields = {
  everySeconds: z
    .number({ error: everySecondsExpected })
    .min(0, { error: everySecondsExpected })
    .max(MAX_EVERY_SECONDS, { error: `a number from 0 to ${MAX_EVERY_SECONDS} (24.8 days, a bound against typos)` })
    .default(DEFAULT_CHECKPOINT_EVERY_SECONDS),
  /** At every epoch end; default: only when `monitor` names a metric (whose best checkpoint is kept). */
  everyEpoch: z.boolean({ error: 'true or false' }).optional(),
};
