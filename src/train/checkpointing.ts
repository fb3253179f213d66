/**
 * When the trainer writes checkpoints and how: every `checkpoint.everySteps` updates, at epoch
 * ends, at the end of fit() and when stopped. The state is captured at a step boundary and
 * written while training goes on; writes happen one after another, in order.
 */
import type { RunConfig } from '../config/schema.js';
import type { CheckpointState } from '../checkpoint/state.js';
import type { CheckpointMetric, CheckpointStore } from '../checkpoint/store.js';
import type { EpochEvent } from './events.js';

export class CheckpointSchedule {
  private pendingWrites: Promise<unknown> = Promise.resolve();
  /** Global step of the last checkpoint written or queued (or resumed from). */
  lastStep = -1;
  /** Paths of the checkpoints written, oldest first. */
  readonly written: string[] = [];

  constructor(
    private readonly config: RunConfig,
    /** Undefined when this process writes no checkpoints. */
    readonly store: CheckpointStore | undefined,
  ) {}

  /**
   * The end of the next runSteps call starting at `fromStep`: never past a checkpoint step.
   * Whether or not this process writes checkpoints: every process of a world must cut the
   * same segments (they meet between segments), and only rank 0 writes.
   */
  limitSegment(fromStep: number, toStep: number, updates: number): number {
    const every = this.config.checkpoint.everySteps;
    if (every > 0) return Math.min(toStep, fromStep + (every - (updates % every)));
    return toStep;
  }

  due(updates: number): boolean {
    const every = this.config.checkpoint.everySteps;
    return this.store !== undefined && every > 0 && updates % every === 0 && updates !== this.lastStep;
  }

  /** Queues a write of `capture()` (called now, at the step boundary). */
  write(capture: () => CheckpointState, epoch?: EpochEvent): void {
    const store = this.store;
    if (!store) return;
    const state = capture();
    this.lastStep = state.position.globalStep;
    const metric = epoch ? this.monitoredMetric(epoch) : undefined;
    const write = this.pendingWrites.then(() => store.write(state, { metric })).then((file) => {
      this.written.push(file);
    });
    // A failed write surfaces at flush (the end of fit), not as an unhandled rejection.
    write.catch(() => undefined);
    this.pendingWrites = write;
  }

  /** Waits for the checkpoints being written; throws the first write error. */
  async flush(): Promise<void> {
    await this.pendingWrites;
  }

  private monitoredMetric(epoch: EpochEvent): CheckpointMetric | undefined {
    const name = this.config.checkpoint.monitor;
    if (!name) return undefined;
    const values: Record<string, number> = { loss: epoch.loss, ...epoch.metrics };
    if (epoch.validation) {
      values.val_loss = epoch.validation.loss;
      for (const [k, v] of Object.entries(epoch.validation.metrics)) values[`val_${k}`] = v;
    }
    const value = values[name]!;
    const mode = this.config.checkpoint.mode ?? (/acc/i.test(name) ? 'max' : 'min');
    return { name, value, mode };
  }
}
