/**
 * Errors a user can fix (bad config, missing data, CLI misuse). The CLI prints their message
 * on one line without a stack and exits with code 2; anything else is an internal error.
 */
export class UserError extends Error {
  readonly hint: string | undefined;
  constructor(message: string, options?: { hint?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options?.hint;
  }
}

/** A run config that does not match the schema; `path` is the JSON path of the bad field. */
export class ConfigError extends UserError {
  readonly path: string;
  constructor(path: string, message: string, options?: { hint?: string; cause?: unknown }) {
    super(path ? `${path}: ${message}` : message, options);
    this.path = path;
  }
}

/** A data file or data source that cannot be read as expected. */
export class DataError extends UserError {}

/** Training stopped because a replica failed or the abort word was raised. */
export class TrainingAbortedError extends Error {
  /** The replica that failed first, when known. */
  readonly replica: number | undefined;
  /** The update (0-based global step) it was running when it failed, when known. */
  readonly globalStep: number | undefined;
  constructor(message: string, options?: { cause?: unknown; replica?: number; globalStep?: number }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TrainingAbortedError';
    this.replica = options?.replica;
    this.globalStep = options?.globalStep;
  }
}

/**
 * The run diverged: a non-finite loss or gradient with training.nonFinite "stop". Not a fault
 * to recover from (it comes back at the same step) and not a crash: the CLI prints its message
 * (epoch, step, the last good checkpoint or "none") on one line and exits with EXIT_DIVERGED.
 */
export class DivergedError extends TrainingAbortedError {
  /** 1-based, as printed. */
  readonly epoch: number;
  readonly stepInEpoch: number;
  /** The last checkpoint written (or resumed from) before it diverged, if any. */
  readonly checkpoint: string | undefined;
  constructor(message: string, details: { epoch: number; stepInEpoch: number; checkpoint: string | undefined; cause?: unknown; replica?: number; globalStep?: number }) {
    super(message, details);
    this.name = 'DivergedError';
    this.epoch = details.epoch;
    this.stepInEpoch = details.stepInEpoch;
    this.checkpoint = details.checkpoint;
  }
}

/** Exit codes of the CLI: 0 done, 1 failure or internal error, 2 user error, 3 diverged, 130/143 stopped by SIGINT/SIGTERM. */
export const EXIT_DIVERGED = 3;
