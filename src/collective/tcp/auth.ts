/**
 * Mutual authentication of a new connection, before any other frame is accepted: the side that
 * accepted sends a nonce; the side that connected answers HMAC-SHA256(token, "connect", its
 * rank, both nonces) with a nonce of its own; the acceptor checks it and answers
 * HMAC-SHA256(token, "accept", both nonces), which the connector checks. Neither side ever sends
 * the token; a replayed answer fails against a fresh nonce.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ConnectionError, type FramedConnection } from './connection.js';
import { Op } from './frame.js';

const NONCE_BYTES = 32;
const MAC_BYTES = 32;
/** A peer must finish the handshake in this long. */
export const AUTH_TIMEOUT_MS = 10_000;

function mac(token: string, ...parts: (string | Buffer)[]): Buffer {
  const hmac = createHmac('sha256', token);
  for (const part of parts) hmac.update(part);
  return hmac.digest();
}

function sameMac(a: Uint8Array, b: Buffer): boolean {
  return a.byteLength === b.byteLength && timingSafeEqual(a, b);
}

/** The accepting side; resolves with the rank the peer proved it holds the token for. */
export async function authenticateIncoming(conn: FramedConnection, token: string): Promise<number> {
  const challenge = randomBytes(NONCE_BYTES);
  conn.send(Op.CHALLENGE, 0, challenge);
  const answer = await conn.next(Op.AUTH, 0, AUTH_TIMEOUT_MS, 'authentication');
  if (answer.payload.byteLength !== MAC_BYTES + NONCE_BYTES + 4) throw new ConnectionError(`authentication failed: malformed answer from ${conn.peer}`);
  const payload = Buffer.from(answer.payload);
  const theirNonce = payload.subarray(MAC_BYTES, MAC_BYTES + NONCE_BYTES);
  const rank = payload.readUInt32LE(MAC_BYTES + NONCE_BYTES);
  const expected = mac(token, 'connect', String(rank), challenge, theirNonce);
  if (!sameMac(payload.subarray(0, MAC_BYTES), expected)) throw new ConnectionError(`authentication failed: ${conn.peer} does not hold the run's token`);
  conn.send(Op.AUTH_OK, 0, mac(token, 'accept', theirNonce, challenge));
  return rank;
}

/** The connecting side: proves `rank` holds the token, and checks that the acceptor does too. */
export async function authenticateOutgoing(conn: FramedConnection, token: string, rank: number): Promise<void> {
  const challenge = await conn.next(Op.CHALLENGE, 0, AUTH_TIMEOUT_MS, 'authentication challenge');
  if (challenge.payload.byteLength !== NONCE_BYTES) throw new ConnectionError(`authentication failed: malformed challenge from ${conn.peer}`);
  const nonce = randomBytes(NONCE_BYTES);
  const rankBytes = Buffer.alloc(4);
  rankBytes.writeUInt32LE(rank);
  conn.send(Op.AUTH, 0, Buffer.concat([mac(token, 'connect', String(rank), Buffer.from(challenge.payload), nonce), nonce, rankBytes]));
  const ok = await conn.next(Op.AUTH_OK, 0, AUTH_TIMEOUT_MS, 'authentication answer');
  if (!sameMac(ok.payload, mac(token, 'accept', nonce, Buffer.from(challenge.payload)))) {
    throw new ConnectionError(`authentication failed: ${conn.peer} does not hold the run's token`);
  }
}
