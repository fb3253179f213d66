/**
 * Errors of the process-level transport. A failure of another process is a PeerFailureError
 * naming that rank; a broken protocol (desynchronised collectives, oversized frames) is a
 * ProtocolError; a rendezvous that cannot form the group is a RendezvousError, which a user
 * fixes (address, token, fingerprint), so the CLI prints it as one line.
 */
import { TrainingAbortedError, UserError } from '../../errors.js';

export class PeerFailureError extends TrainingAbortedError {
  readonly rank: number;
  readonly host: string;
  readonly step: number;
  constructor(rank: number, host: string, step: number, what: string) {
    super(`rank ${rank} (host ${host}) failed${step >= 0 ? ` at step ${step}` : ''}: ${what}`);
    this.name = 'PeerFailureError';
    this.rank = rank;
    this.host = host;
    this.step = step;
  }
}

/** A peer sent something the protocol does not allow; the group cannot go on. */
export class ProtocolError extends TrainingAbortedError {
  constructor(message: string) {
    super(message);
    this.name = 'ProtocolError';
  }
}

export class RendezvousError extends UserError {}

/** An authentication handshake failed; the connection is closed (and logged by a listener). */
export class AuthError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuthError';
  }
}
