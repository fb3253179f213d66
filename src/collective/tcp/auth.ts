/**
 * Mutual authentication of a new connection, before a single frame is read. Three fixed-size
 * messages, so nothing a stranger sends is ever parsed as a frame or sizes an allocation:
 *
 *   listener  -> connector   MAGIC, listener nonce                                    (40 bytes)
 *   connector -> listener    MAGIC, connector nonce, rank u32, purpose u8, 0 x3,
 *                            HMAC-SHA256(token, "ringtrain connect" | both nonces | rank | purpose)  (80 bytes)
 *   listener  -> connector   HMAC-SHA256(token, "ringtrain accept" | both nonces | rank | purpose |
 *                            listener rank), listener rank u32, 0 x4                  (40 bytes)
 *
 * Nonces come from crypto.randomBytes and MACs are compared with timingSafeEqual. The token is
 * never sent; fresh nonces on both sides defeat replays, and the two labels keep one side's
 * answer from being reflected as the other's. The listener proves itself only after the
 * connector did and was admitted (right rank, right purpose), so a stranger learns nothing.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Socket } from 'node:net';
import { AuthError } from './errors.js';

const MAGIC = Buffer.from('ringtrn1', 'latin1');
const NONCE_BYTES = 32;
const MAC_BYTES = 32;
const GREETING_BYTES = MAGIC.length + NONCE_BYTES;
const CLAIM_BYTES = MAGIC.length + NONCE_BYTES + 8 + MAC_BYTES;
const PROOF_BYTES = MAC_BYTES + 8;

/** What a connection is for: the star of control connections to rank 0, or the data ring. */
export const Purpose = { CONTROL: 1, DATA: 2 } as const;
export type Purpose = (typeof Purpose)[keyof typeof Purpose];

export function purposeName(purpose: Purpose): string {
  return purpose === Purpose.CONTROL ? 'control' : 'ring';
}

function mac(token: string, label: string, listenerNonce: Buffer, connectorNonce: Buffer, rank: number, purpose: number, listenerRank?: number): Buffer {
  const fields = Buffer.alloc(9);
  fields.writeUInt32LE(rank, 0);
  fields.writeUInt8(purpose, 4);
  if (listenerRank !== undefined) fields.writeUInt32LE(listenerRank, 5);
  return createHmac('sha256', token).update(label).update(listenerNonce).update(connectorNonce).update(fields).digest();
}

/**
 * Reads exact byte counts from a socket with a deadline (the caller keeps an 'error' listener
 * on the socket for its whole life). Between reads, and when done, the
 * socket is paused so no byte is lost; `leftover()` returns what arrived beyond the last read
 * (the first frames), for the connection that takes the socket over.
 */
class ExactReader {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly socket: Socket) {}

  read(n: number, deadline: number, what: string): Promise<Buffer> {
    const socket = this.socket;
    return new Promise<Buffer>((resolve, reject) => {
      const done = (error?: Error) => {
        clearTimeout(timer);
        socket.pause();
        socket.off('data', onData);
        socket.off('end', onEnd);
        socket.off('close', onEnd);
        socket.off('error', onError);
        if (error) reject(error);
        else resolve(this.take(n));
      };
      const onData = (chunk: Buffer) => {
        this.chunks.push(chunk);
        this.buffered += chunk.length;
        if (this.buffered >= n) done();
      };
      const onEnd = () => done(new AuthError(`connection closed during authentication (${what})`));
      const onError = (error: Error) => done(new AuthError(`${error.message} during authentication (${what})`));
      const ms = Math.max(1, deadline - Date.now());
      const timer = setTimeout(() => done(new AuthError(`no ${what} within ${ms} ms`)), ms);
      if (this.buffered >= n) return done();
      if (socket.destroyed || socket.readableEnded) return onEnd();
      socket.on('data', onData);
      socket.once('end', onEnd);
      socket.once('close', onEnd);
      socket.once('error', onError);
      socket.resume();
    });
  }

  leftover(): Buffer | undefined {
    return this.buffered > 0 ? Buffer.concat(this.chunks) : undefined;
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    const rest = all.subarray(n);
    this.chunks = rest.length > 0 ? [rest] : [];
    this.buffered = rest.length;
    return all.subarray(0, n);
  }
}

function sameMac(received: Buffer, expected: Buffer): boolean {
  return received.length === expected.length && timingSafeEqual(received, expected);
}

export interface Authenticated {
  rank: number;
  purpose: Purpose;
  /** Bytes that arrived after the handshake: the start of the first frames. */
  leftover: Buffer | undefined;
}

/**
 * The listening side. `admit` sees the rank and purpose a connector proved and returns why it
 * is refused, or undefined to take it. Throws AuthError (the caller closes and logs).
 */
export async function authenticateIncoming(
  socket: Socket,
  options: { token: string; rank: number; deadline: number; admit: (rank: number, purpose: Purpose) => string | undefined },
): Promise<Authenticated> {
  const reader = new ExactReader(socket);
  const listenerNonce = randomBytes(NONCE_BYTES);
  socket.write(Buffer.concat([MAGIC, listenerNonce]));
  const claim = await reader.read(CLAIM_BYTES, options.deadline, 'authentication');
  if (!claim.subarray(0, MAGIC.length).equals(MAGIC)) throw new AuthError('not a ringtrain peer (bad greeting)');
  let at = MAGIC.length;
  const connectorNonce = Buffer.from(claim.subarray(at, (at += NONCE_BYTES)));
  const rank = claim.readUInt32LE(at);
  const purpose = claim.readUInt8(at + 4);
  const padding = claim.readUIntLE(at + 5, 3);
  at += 8;
  const expected = mac(options.token, 'ringtrain connect', listenerNonce, connectorNonce, rank, purpose);
  if (!sameMac(claim.subarray(at, at + MAC_BYTES), expected) || padding !== 0) {
    throw new AuthError('authentication failed (wrong token?)');
  }
  if (purpose !== Purpose.CONTROL && purpose !== Purpose.DATA) throw new AuthError(`unknown connection purpose ${purpose} from rank ${rank}`);
  const refusal = options.admit(rank, purpose);
  if (refusal !== undefined) throw new AuthError(`rank ${rank} (${purposeName(purpose)} connection) refused: ${refusal}`);
  const proof = Buffer.alloc(PROOF_BYTES);
  mac(options.token, 'ringtrain accept', listenerNonce, connectorNonce, rank, purpose, options.rank).copy(proof, 0);
  proof.writeUInt32LE(options.rank, MAC_BYTES);
  socket.write(proof);
  return { rank, purpose, leftover: reader.leftover() };
}

/**
 * The connecting side: proves `rank` holds the token and checks that the listener does too and
 * is `expectRank`. `describe` names the listener for messages (`rank 0 at 10.0.0.1:29500`).
 * Returns the bytes that arrived after the handshake.
 */
export async function authenticateOutgoing(
  socket: Socket,
  options: { token: string; rank: number; purpose: Purpose; expectRank: number; deadline: number; describe: string },
): Promise<Buffer | undefined> {
  const reader = new ExactReader(socket);
  const greeting = await reader.read(GREETING_BYTES, options.deadline, `greeting from ${options.describe}`);
  if (!greeting.subarray(0, MAGIC.length).equals(MAGIC)) throw new AuthError(`${options.describe} is not a ringtrain listener`);
  const listenerNonce = Buffer.from(greeting.subarray(MAGIC.length));
  const connectorNonce = randomBytes(NONCE_BYTES);
  const fields = Buffer.alloc(8);
  fields.writeUInt32LE(options.rank, 0);
  fields.writeUInt8(options.purpose, 4);
  socket.write(Buffer.concat([MAGIC, connectorNonce, fields, mac(options.token, 'ringtrain connect', listenerNonce, connectorNonce, options.rank, options.purpose)]));
  let proof: Buffer;
  try {
    proof = await reader.read(PROOF_BYTES, options.deadline, `authentication answer from ${options.describe}`);
  } catch (error) {
    throw new AuthError(
      `${options.describe} refused this process: ${(error as Error).message} (is the token the same everywhere, and rank ${options.rank} unique and within rank 0's world size?)`,
    );
  }
  const listenerRank = proof.readUInt32LE(MAC_BYTES);
  const expected = mac(options.token, 'ringtrain accept', listenerNonce, connectorNonce, options.rank, options.purpose, listenerRank);
  if (!sameMac(proof.subarray(0, MAC_BYTES), expected)) throw new AuthError(`${options.describe} failed to prove it holds the token`);
  if (listenerRank !== options.expectRank) throw new AuthError(`${options.describe} answered as rank ${listenerRank}`);
  return reader.leftover();
}
