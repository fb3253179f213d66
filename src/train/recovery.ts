/**
 * In-process recovery: the last consistent state, kept at every segment boundary, and the rule
 * for when a failed group of replicas is started again from it. Training is deterministic, so
 * a recovered run ends as if nothing had failed, and for the same reason an error that comes
 * back at the same step after a restart is not retried again: it would come back every time.
 */
import type { CheckpointState } from '../checkpoint/state.js';
import { DivergedError, TrainingAbortedError } from '../errors.js';
import { NON_FINITE_ERROR } from './replica-protocol.js';

/** What a failure was: the replica's own error message, and the update it was running. */
interface FailureKey {
  message: string;
  globalStep: number | undefined;
}

export class Recovery {
  /** Replica groups restarted after failures so far. */
  attempts = 0;
  private point: CheckpointState | undefined;
  /** The failure the last recovery was for. */
  private recovered: FailureKey | undefined;

  constructor(private readonly maxRecoveries: number) {}

  get enabled(): boolean {
    return this.maxRecoveries > 0;
  }

  /** Keeps `capture()` as the state to restart from (only when recovery is on: it costs a copy). */
  keep(capture: () => CheckpointState): void {
    if (this.enabled) this.point = capture();
  }

  get lastConsistentState(): CheckpointState | undefined {
    return this.point;
  }

  /**
   * Whether a failure may be recovered: a replica fault, not a deterministic non-finite stop,
   * not the failure the last recovery was for, within the limit.
   */
  mayRecover(error: Error): boolean {
    return isRecoverable(error) && !this.isRepeat(error) && this.point !== undefined && this.attempts < this.maxRecoveries;
  }

  /** Records that the group is being restarted after `error`. */
  recovering(error: Error): void {
    this.attempts++;
    this.recovered = failureKey(error);
  }

  /** The error to raise when recovery is not tried. */
  finalError(error: Error): Error {
    const times = `${this.attempts} recover${this.attempts === 1 ? 'y' : 'ies'}`;
    if (isRecoverable(error) && this.isRepeat(error)) {
      const step = (error as TrainingAbortedError).globalStep;
      const where = step === undefined ? 'again' : `again at global step ${step + 1}`;
      return new TrainingAbortedError(`${error.message} (${where} after ${times}: a deterministic error, not retried)`, {
        cause: error,
        replica: (error as TrainingAbortedError).replica,
        globalStep: step,
      });
    }
    if (isRecoverable(error) && this.enabled && this.attempts >= this.maxRecoveries) {
      return new TrainingAbortedError(`${error.message} (gave up after ${times})`, { cause: error });
    }
    return error;
  }

  /** A non-finite stop as a DivergedError naming the epoch, step and the last good checkpoint; undefined for other errors. */
  divergence(error: Error, fallback: { epoch: number; stepInEpoch: number }, checkpoint: string | undefined): DivergedError | undefined {
    if (!isNonFinite(error)) return undefined;
    const cause = (error as TrainingAbortedError).cause as Error;
    // The replica's message says where: "non-finite gradient at epoch 1, step 6 (global step 6)".
    const at = /^(non-finite .*) at epoch (\d+), step (\d+)/.exec(cause.message);
    const epoch = at ? Number(at[2]) : fallback.epoch;
    const stepInEpoch = at ? Number(at[3]) : fallback.stepInEpoch;
    const what = at ? at[1]! : cause.message;
    // No replica is named: a gradient is checked by the replica that owns its chunk after the
    // all-reduce, whichever replica's samples made it non-finite.
    return new DivergedError(`training diverged: ${what} at epoch ${epoch}, step ${stepInEpoch}; last good checkpoint: ${checkpoint ?? 'none'}`, {
      epoch,
      stepInEpoch,
      checkpoint,
      cause: error,
      replica: (error as TrainingAbortedError).replica,
      globalStep: (error as TrainingAbortedError).globalStep,
    });
  }

  private isRepeat(error: Error): boolean {
    const key = failureKey(error);
    return this.recovered !== undefined && key.message === this.recovered.message && key.globalStep === this.recovered.globalStep;
  }
}

function failureKey(error: Error): FailureKey {
  const cause = error.cause as Error | undefined;
  return { message: cause?.message ?? error.message, globalStep: (error as Partial<TrainingAbortedError>).globalStep };
}

function isNonFinite(error: Error): boolean {
  return error instanceof TrainingAbortedError && (error.cause as Error | undefined)?.name === NON_FINITE_ERROR;
}

function isRecoverable(error: Error): boolean {
  return error instanceof TrainingAbortedError && !isNonFinite(error);
}
