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
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TrainingAbortedError';
  }
}
