// The few wire-level things the process-group tests do by hand (hostile peers), written against
// the compiled transport in dist/collective/tcp; everything else in those tests goes through the
// public API (rendezvous, ProcessGroup).
import { authenticateOutgoing, Purpose } from '../../dist/collective/tcp/auth.js';
import { encodeHeader, Op } from '../../dist/collective/tcp/frame.js';

/** The operation code that carries all-reduce segments. */
export const DATA_OP = Op.ALL_REDUCE;
export const HELLO_OP = Op.HELLO;

/** A frame header claiming `length` payload bytes of `op` for `step`. */
export function header(op, step, length) {
  return encodeHeader(op, step, length);
}

/**
 * Runs the connecting side of the handshake on `socket` as `rank` (a control connection to
 * rank 0) with `token`; resolves when rank 0 accepted, rejects when it refused or closed.
 */
export async function authenticateAs(socket, token, rank) {
  await authenticateOutgoing(socket, { token, rank, purpose: Purpose.CONTROL, expectRank: 0, deadline: Date.now() + 5_000, describe: 'rank 0' });
}

/** Writes raw bytes on a formed group's ring connection to rank + 1, bypassing the protocol. */
export function writeToNext(group, bytes) {
  group.unsafeWriteForTests('next', bytes);
}
