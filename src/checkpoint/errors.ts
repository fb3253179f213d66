import { oneLine } from '../util/one-line.js';
import { UserError } from '../errors.js';

/** What is wrong with a checkpoint file, for callers that react to some problems differently. */
export type CheckpointProblem =
  /** The path does not exist. */
  | 'missing'
  /** The path is a directory. */
  | 'directory'
  /** The file has 0 bytes. */
  | 'empty'
  /** Fewer bytes than the header says. */
  | 'truncated'
  /** More bytes than the header says. */
  | 'trailing-data'
  /** Not a ringtrain checkpoint at all. */
  | 'magic'
  /** A format version or header flags this ringtrain does not read. */
  | 'version'
  /** The header's own CRC32C does not match. */
  | 'header-checksum'
  /** The payload's CRC32C does not match. */
  | 'checksum'
  /** A tensor's CRC32C does not match its data. */
  | 'tensor-checksum'
  /** A tensor's data is not 4 x product(shape) bytes, or has the wrong length or dtype. */
  | 'tensor-length'
  /** The payload passed its checksum but is not a consistent checkpoint message. */
  | 'malformed'
  /** A well-formed message whose contents do not make sense (config, optimizer state, position, history...). */
  | 'contents'
  /** The `latest` or `best` pointer of a checkpoint directory is missing, damaged or dangling. */
  | 'pointer'
  /** The file system refused a read or write. */
  | 'io';

/**
 * A checkpoint that cannot be read, found or written. The message always starts with the
 * path of the file concerned, then says what is wrong: `<file>: <problem>: <details>`.
 */
export class CheckpointError extends UserError {
  readonly file: string;
  readonly problem: CheckpointProblem;

  constructor(file: string, problem: CheckpointProblem, detail: string, options?: { hint?: string; cause?: unknown }) {
    // A crafted file's names and texts (and JSON.parse's quotes of them) end up in the detail.
    super(`${file}: ${oneLine(detail)}`, options);
    this.file = file;
    this.problem = problem;
  }
}
