/**
 * When the trainer writes checkpoints and how: at the first step boundary (a segment's or an
 * epoch's end) `checkpoint.everySeconds` after the last one (the default, 60 s), every
 * `checkpoint.everySteps` updates, at epoch ends when `checkpoint.everyEpoch`, at the end of
 * fit() and when stopped. The state is captured at a step boundary and written while training
 * goes on, in order. Time-based checkpoints bound what checkpointing costs whatever an epoch
 * takes (bench/checkpoint.ts measures it).
 *
 * Backpressure: at most one write is in flight and one state waits behind it. A state due
 * while one is already waiting replaces it when the waiting one is a periodic checkpoint
 * (everySteps; it is counted as skipped: the newer state makes it redundant), and the waiting
 * state is released before the new one is captured. An epoch-end or final (end of fit, stop)
 * checkpoint is never dropped: the trainer waits for the write in flight to finish instead.
 * So the queue holds at most two captured states (besides the live parameters), and `latest`
 * on disk trails training by at most the write in flight and the one waiting, however slow
 * the disk. With recovery on (parallel.maxRecoveries > 0, one process), the trainer also
 * keeps a recovery point (src/train/recovery.ts), another full copy of the state, replaced
 * after every segment: three copies then, two of them here (for a moment four, while a new
 * recovery point is captured and the old one not yet let go).
 *
 * Every write has a deadline (`writeTimeoutMs`, default max(parallel.stepTimeoutMs, 60 s)),
 * counted from when it starts: a write that has not finished by then (an fsync hanging on an
 * NFS or FUSE mount) stops the run with a CheckpointWriteError naming the file, whatever
 * checkpoint.onWriteError says (no later checkpoint could be written behind it), and the
 * waits for it (an epoch-end or final checkpoint behind it, flush at the end of fit(), on a
 * stop, after a failed recovery) end then instead of hanging. The deadline follows
 * stepTimeoutMs, the run's limit on anything that makes no progress, so a user who raises it
 * for a slow cluster raises this too, but is never below 60 s: writing and flushing a large
 * state legitimately takes longer than a step.
 *
 * A failed write (a full disk, a read-only folder, ...) stops the run: the error is kept and
 * thrown at the next step boundary the trainer sees (`throwIfFailed`), naming the file, the OS
 * error and the last good checkpoint. With `checkpoint.onWriteError: "warn"` it is a warning
 * instead and training goes on (one warning per run of failures, and a note when writes work
 * again).
 */
import path from 'node:path';
import type { RunConfig } from '../config/schema.js';
import { CheckpointError } from '../checkpoint/errors.js';
import type { CheckpointState } from '../checkpoint/state.js';
import { LATEST_POINTER, checkpointFileName, type CheckpointMetric, type CheckpointStore } from '../checkpoint/store.js';
import { UserError } from '../errors.js';
import { epochLogs } from './callbacks/callback-list.js';
import { monitorMode } from './callbacks/early-stopping-config.js';
import type { EpochEvent } from './events.js';

function formatSeconds(ms: number): string {
  return String(Math.round(ms / 100) / 10);
}

/** A checkpoint that could not be written (the run stops, unless checkpoint.onWriteError is "warn"). */
export class CheckpointWriteError extends UserError {
  constructor(
    message: string,
    /** The checkpoint file that was being written. */
    readonly file: string,
    /** The newest checkpoint on disk, if any. */
    readonly lastGood: string | undefined,
    options: { cause: unknown },
  ) {
    super(message, options);
  }
}

interface PendingWrite {
  state: CheckpointState;
  metric: CheckpointMetric | undefined;
  /** An epoch-end or final checkpoint: never replaced by a newer state. */
  keep: boolean;
}

/** The shortest default deadline of a checkpoint write. */
export const MIN_CHECKPOINT_WRITE_TIMEOUT_MS = 60_000;

export interface CheckpointScheduleOptions {
  /** Deadline of each write, from its start; default max(parallel.stepTimeoutMs, 60 s). */
  writeTimeoutMs?: number;
  /** Milliseconds of a monotonic clock (default performance.now; tests pass their own). */
  now?: () => number;
}

export interface CheckpointWriteStats {
  /** Checkpoints written. */
  written: number;
  /** Periodic checkpoints replaced, before their write started, by a newer state. */
  skipped: number;
  /** Writes that failed. */
  failed: number;
  /** The most captured states held at once (in flight and waiting). */
  maxStatesAlive: number;
}

export class CheckpointSchedule {
  /** Global step of the last checkpoint written or queued (or resumed from). */
  lastStep = -1;
  /** The step of the previous due() (none yet). */
  private lookedAt: number | undefined;
  /** Paths of the checkpoints written, oldest first. */
  readonly written: string[] = [];
  /** Milliseconds the trainer spent in write() and flush(): capturing states and waiting for writes (what checkpoints cost a run). */
  blockedMs = 0;
  private readonly counts = { skipped: 0, failed: 0, maxStatesAlive: 0 };
  /** Settles (never rejects) when the write in flight is done and the waiting one, if any, has started. */
  private inFlight: Promise<void> | undefined;
  /** Settles when the write in flight is past its deadline (then `failure` is set); never, if it finishes first. */
  private overdue: Promise<void> | undefined;
  private readonly writeTimeoutMs: number;
  private readonly now: () => number;
  /** When the last checkpoint was captured, or the clock started (time-based checkpoints count from it). */
  private lastAt: number;
  private waiting: PendingWrite | undefined;
  /** The failure that stops the run ("stop"), thrown at the next step boundary. */
  private failure: Error | undefined;
  /** Failures since the last write that worked ("warn"). */
  private failureStreak = 0;

  constructor(
    private readonly config: RunConfig,
    /** Undefined when this process writes no checkpoints. */
    readonly store: CheckpointStore | undefined,
    private readonly warn: (line: string) => void = () => undefined,
    options: CheckpointScheduleOptions = {},
  ) {
    this.writeTimeoutMs = options.writeTimeoutMs ?? Math.max(config.parallel.stepTimeoutMs, MIN_CHECKPOINT_WRITE_TIMEOUT_MS);
    this.now = options.now ?? (() => performance.now());
    this.lastAt = this.now();
  }

  /** Time-based checkpoints count from now (fit() starts it: start-up and pauses between fits are not training). */
  startClock(): void {
    this.lastAt = this.now();
  }

  get stats(): CheckpointWriteStats {
    return { written: this.written.length, ...this.counts };
  }

  /** Captured states held now: the one being written and the one waiting. */
  get statesAlive(): number {
    return (this.inFlight ? 1 : 0) + (this.waiting ? 1 : 0);
  }

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

  /**
   * Whether a periodic checkpoint is due at this step boundary: by everySteps (a multiple passed
   * since the previous look and the last checkpoint; segments may end past it, as with gradient
   * accumulation, whose segments end on update boundaries), or by everySeconds since the last one.
   */
  due(updates: number): boolean {
    const since = Math.max(this.lookedAt ?? updates - 1, this.lastStep);
    this.lookedAt = updates;
    if (this.store === undefined || updates === this.lastStep) return false;
    const { everySteps, everySeconds } = this.config.checkpoint;
    if (everySteps > 0 && Math.floor(updates / everySteps) > Math.floor(since / everySteps)) return true;
    return everySeconds > 0 && this.now() - this.lastAt >= everySeconds * 1000;
  }

  /**
   * Queues a write of `capture()`, called at this step boundary (after waiting, when an
   * epoch-end or final checkpoint is waiting, for the write in flight). `keep` marks an
   * epoch-end or final checkpoint, which a newer state never replaces; an epoch event makes
   * one too. Throws the failure of an earlier write, if one stopped the run.
   */
  async write(capture: () => CheckpointState, epoch?: EpochEvent, keep = epoch !== undefined): Promise<void> {
    if (!this.store) return;
    const started = performance.now();
    try {
      await this.queue(capture, epoch, keep);
    } finally {
      this.blockedMs += performance.now() - started;
    }
  }

  private async queue(capture: () => CheckpointState, epoch: EpochEvent | undefined, keep: boolean): Promise<void> {
    this.throwIfFailed();
    if (this.waiting?.keep) await this.inFlightOrDeadline(); // it starts once the one in flight is done
    this.throwIfFailed();
    if (this.waiting) {
      // Superseded by the state captured now: release it first, so that only two are alive.
      const replaced = this.waiting.state;
      this.waiting = undefined;
      this.counts.skipped++;
      this.released(replaced);
    }
    const state = capture();
    this.lastStep = state.position.globalStep;
    this.lastAt = this.now();
    const pending: PendingWrite = { state, metric: epoch ? this.monitoredMetric(epoch) : undefined, keep };
    if (this.inFlight) this.waiting = pending;
    else this.start(pending);
    this.counts.maxStatesAlive = Math.max(this.counts.maxStatesAlive, this.statesAlive);
  }

  /** The write in flight settles or passes its deadline (`failure` is set then). */
  private async inFlightOrDeadline(): Promise<void> {
    if (this.inFlight) await Promise.race([this.inFlight, this.overdue]);
  }

  private start(pending: PendingWrite): void {
    const store = this.store!;
    let timer: NodeJS.Timeout | undefined;
    this.overdue = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.timedOut(pending);
        resolve();
      }, this.writeTimeoutMs);
      timer.unref(); // the waits race it; alone it must not keep the process alive
    });
    const write = Promise.resolve()
      .then(() => store.write(pending.state, { metric: pending.metric }))
      .then(
        (file) => this.succeeded(file),
        (error: unknown) => this.failed(error),
      )
      .finally(() => {
        clearTimeout(timer);
        this.inFlight = undefined;
        this.released(pending.state);
        const next = this.waiting;
        this.waiting = undefined;
        if (next) this.start(next);
      });
    this.inFlight = write;
  }

  /**
   * The write in flight is past its deadline: the run stops (even with onWriteError "warn":
   * nothing could be written behind it). The last good checkpoint named is the last one this
   * run wrote, not the `latest` pointer: reading it could hang on the same mount.
   */
  private timedOut(pending: PendingWrite): void {
    const file = path.join(this.store!.dir, checkpointFileName(pending.state.position));
    const lastGood = this.written.at(-1);
    if (this.waiting) {
      const dropped = this.waiting.state;
      this.waiting = undefined;
      this.released(dropped);
    }
    this.failure ??= new CheckpointWriteError(
      `checkpoint write of ${file} did not finish within ${formatSeconds(this.writeTimeoutMs)} s (the disk or mount hangs?); training stopped; last good checkpoint: ${lastGood ?? 'none written by this run'}`,
      file,
      lastGood,
      { cause: undefined },
    );
  }

  /**
   * Called when the queue lets go of a captured state: its write is done (or failed), or it was
   * replaced by a newer one, or dropped after a failure. Nothing to do; tests watch it.
   */
  protected released(_state: CheckpointState): void {}

  private succeeded(file: string): void {
    this.written.push(file);
    if (this.failureStreak > 0) {
      this.warn(`checkpoints are written again (${file}) after ${this.failureStreak} failed write${this.failureStreak === 1 ? '' : 's'}`);
      this.failureStreak = 0;
    }
  }

  private failed(error: unknown): void {
    this.counts.failed++;
    // Only file-system failures may be warned about; anything else is a bug and stops the run.
    if (!(error instanceof CheckpointError && error.problem === 'io') || this.config.checkpoint.onWriteError === 'stop') {
      if (this.waiting) {
        const dropped = this.waiting.state;
        this.waiting = undefined;
        this.released(dropped);
      }
      this.failure ??= error instanceof CheckpointError ? this.writeError(error) : (error as Error);
      return;
    }
    if (this.failureStreak++ === 0) {
      this.warn(`warning: checkpoint not written: ${error.message}; training goes on (checkpoint.onWriteError is "warn"); last good checkpoint: ${this.lastGood() ?? 'none'}`);
    }
  }

  private writeError(error: CheckpointError): CheckpointWriteError {
    const lastGood = this.lastGood();
    return new CheckpointWriteError(
      `checkpoint not written: ${error.message}; training stopped (checkpoint.onWriteError "warn" would train on); last good checkpoint: ${lastGood ?? 'none'}`,
      error.file,
      lastGood,
      { cause: error },
    );
  }

  /** The checkpoint `latest` names now (it is only ever replaced after a complete write), if any. */
  private lastGood(): string | undefined {
    try {
      return this.store?.resolve(LATEST_POINTER);
    } catch {
      return undefined;
    }
  }

  /** Throws the failed write that stopped the run, if there was one. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  /**
   * Waits for the checkpoints being written; throws the first write failure that stops the run,
   * or a CheckpointWriteError when a write does not finish by its deadline.
   */
  async flush(): Promise<void> {
    const started = performance.now();
    try {
      while (this.inFlight && !this.failure) await this.inFlightOrDeadline();
    } finally {
      this.blockedMs += performance.now() - started;
    }
    this.throwIfFailed();
  }

  private monitoredMetric(epoch: EpochEvent): CheckpointMetric | undefined {
    const name = this.config.checkpoint.monitor;
    if (!name) return undefined;
    return { name, value: epochLogs(epoch)[name]!, mode: monitorMode(name, this.config.checkpoint.mode) };
  }
}
