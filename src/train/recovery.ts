/**
 * In-process recovery: the last consistent state, kept at every segment boundary, and the rule
 * for when a failed group of replicas is started again from it. Training is deterministic, so
 * a recovered run ends as if nothing had failed.
 */
import type { CheckpointState } from '../checkpoint/state.js';
import { TrainingAbortedError } from '../errors.js';
import { NON_FINITE_ERROR } from './replica-protocol.js';

export class Recovery {
  /** Replica groups restarted after failures so far. */
  attempts = 0;
  private point: CheckpointState | undefined;

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

  /** Whether a failure may be recovered: a replica fault, not a deterministic non-finite stop, within the limit. */
  mayRecover(error: Error): boolean {
    return isRecoverable(error) && this.point !== undefined && this.attempts < this.maxRecoveries;
  }

  /** The error to raise when recovery is not tried. */
  finalError(error: Error): Error {
    if (isRecoverable(error) && this.enabled && this.attempts >= this.maxRecoveries) {
      const times = `${this.attempts} recover${this.attempts === 1 ? 'y' : 'ies'}`;
      return new TrainingAbortedError(`${error.message} (gave up after ${times})`, { cause: error });
    }
    return error;
  }
}

function isRecoverable(error: Error): boolean {
  return error instanceof TrainingAbortedError && (error.cause as Error | undefined)?.name !== NON_FINITE_ERROR;
}
