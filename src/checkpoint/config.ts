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
