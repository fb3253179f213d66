/**
 * The point-to-point interface the ring algorithms are written against. A transport moves
 * float32 messages between ranks; the shared-memory one copies through per-edge mailboxes, a
 * network one would write to sockets. Messages between a pair of ranks arrive in order.
 */
export interface PointToPoint {
  readonly rank: number;
  readonly size: number;
  /** Hands `data` to `peer`; may return before the peer has read it. */
  send(peer: number, data: Float32Array): void;
  /** Receives the next message from `peer` (of `into.length` floats) and adds it into `into`. */
  recvAdd(peer: number, into: Float32Array): void;
  /** Receives the next message from `peer` into `into`. */
  recv(peer: number, into: Float32Array): void;
}
