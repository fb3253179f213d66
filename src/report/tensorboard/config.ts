/** The `report.tensorboard` section of the run config: TensorBoard event files (on by default). */
import { z } from 'zod';

/** Step-level scalars every this many global steps unless the config says otherwise. */
export const DEFAULT_TENSORBOARD_EVERY_STEPS = 100;

const boolean = () => z.boolean({ error: 'true or false' });
const everySteps = 'an integer >= 0 (0: per epoch only)';

export const tensorboardSchema = z.strictObject(
  {
    enabled: boolean().default(true),
    /** Also write the epoch's running loss and metrics every this many global steps (0: per epoch only). */
    everySteps: z.int({ error: everySteps }).min(0, { error: everySteps }).default(DEFAULT_TENSORBOARD_EVERY_STEPS),
    /** A histogram of every weight after each epoch. */
    histograms: boolean().default(false),
  },
  { error: 'an object such as {"everySteps": 100, "histograms": true}' },
);

export type TensorboardConfig = z.output<typeof tensorboardSchema>;
