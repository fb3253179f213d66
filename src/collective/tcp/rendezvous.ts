/**
 * Forming a group of processes. Rank 0 listens on masterAddr:masterPort; every other rank
 * connects (retrying until the deadline), authenticates, opens its own ring listener on the
 * local address it used to reach rank 0 (port 0) and says hello: world size, fingerprint, info
 * and ring port. When all have joined, rank 0 compares fingerprints (a mismatch fails every
 * rank with one line) and sends everyone the table (host, ring port, info of every rank). Each
 * rank then connects to rank - 1, from which it receives ring data (the reads of a socket a
 * process opens can reuse one buffer: reused-reads.ts), and accepts rank + 1, to which it sends
 * (rank 0 accepts it on the master port), says ready, and waits for rank 0's go: when
 * rendezvous returns, the whole ring is up.
 *
 * Any failure on any rank is sent to the others as an abort and fails rendezvous everywhere
 * with the same message; every socket and listener is closed on every failure path.
 */
import { connect, type Socket } from 'node:net';
import { endianness } from 'node:os';
import { authenticateOutgoing, Purpose } from './auth.js';
import { Connection, type AbortMessage, type ConnectionEvents } from './connection.js';
import { AuthError, RendezvousError, type ProtocolError } from './errors.js';
import { MAX_MESSAGE_BYTES, Op, RENDEZVOUS_STEP } from './frame.js';
import { Listener } from './listener.js';
import { ReusedReads } from './reused-reads.js';

export interface RendezvousOptions {
  rank: number;
  size: number;
  /** Rank 0 listens here (this address only); the others connect here. */
  masterAddr: string;
  masterPort: number;
  /** Shared secret: every connection proves it (HMAC challenge) before any data is accepted. */
  token: string;
  /** Must agree on every rank; a mismatch fails rendezvous everywhere, naming the field. */
  fingerprint: Record<string, string | number>;
  /** Per-rank JSON (e.g. replica count, host name), returned to all in rank order. */
  info: unknown;
  /** Deadline of the rendezvous. */
  timeoutMs: number;
  /** Deadline of every collective wait and of a peer's silence. */
  stepTimeoutMs: number;
  /** Where refused connections and other notices go (default: stderr). */
  log?: (line: string) => void;
  /** Rank 0: called with the port it listens on (useful with masterPort 0). */
  onListening?: (port: number) => void;
  /** Ends a rendezvous still forming (a stop request), as a failure would: every socket and listener closed, the others told. */
  signal?: AbortSignal;
}

/** A formed group's connections; the caller takes over their events. */
export interface Formed {
  /** Rank 0: one per other rank; others: rank 0's. */
  control: Map<number, Connection>;
  next: Connection;
  prev: Connection;
  hosts: string[];
  infos: unknown[];
}

interface Hello {
  size: number;
  fingerprint: Record<string, string | number>;
  info: unknown;
  host: string;
  port: number;
}

interface TableEntry {
  rank: number;
  host: string;
  port: number;
  info: unknown;
}

const MAX_INFO_BYTES = 256 << 10;
const GRACE_MS = 1_000;

export function defaultLog(line: string): void {
  process.stderr.write(`ringtrain: ${line}\n`);
}

export async function formGroup(options: RendezvousOptions): Promise<Formed> {
  const infoBytes = Buffer.byteLength(JSON.stringify(options.info ?? null));
  if (infoBytes > MAX_INFO_BYTES) throw new RendezvousError(`rendezvous: info of ${infoBytes} bytes exceeds the limit of ${MAX_INFO_BYTES}`);
  const { signal } = options;
  const stopped = `rendezvous: rank ${options.rank} was stopped before the group was formed`;
  if (signal?.aborted) throw new RendezvousError(stopped);
  const forming = new Forming(options);
  const onAbort = () => forming.fail(new RendezvousError(stopped));
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return options.rank === 0 ? await forming.host() : await forming.join();
  } catch (error) {
    forming.fail(error instanceof RendezvousError ? error : new RendezvousError(`rendezvous: ${(error as Error).message}`));
    throw forming.failure;
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

class Forming implements ConnectionEvents {
  failure: RendezvousError | undefined;
  private readonly failed: Promise<never>;
  private rejectFailed!: (error: Error) => void;
  private readonly connections = new Set<Connection>();
  private readonly sockets = new Set<Socket>();
  private readonly listeners = new Set<Listener>();
  private timer: NodeJS.Timeout | undefined;
  private readonly log: (line: string) => void;
  private readonly prevRank: number;
  private readonly nextRank: number;

  constructor(private readonly options: RendezvousOptions) {
    this.log = options.log ?? defaultLog;
    this.prevRank = (options.rank + options.size - 1) % options.size;
    this.nextRank = (options.rank + 1) % options.size;
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => undefined);
  }

  // ---- rank 0 ----------------------------------------------------------------------------

  async host(): Promise<Formed> {
    const { size, masterAddr, masterPort, timeoutMs } = this.options;
    const control = new Map<number, Connection>();
    const hellos = new Map<number, Hello>();
    const reserved = new Set<string>();
    let allJoined!: () => void;
    const joined = new Promise<void>((resolve) => (allJoined = resolve));
    let acceptNext!: (conn: Connection) => void;
    const nextConnected = new Promise<Connection>((resolve) => (acceptNext = resolve));
    if (size === 1) allJoined();

    this.setDeadline(() => {
      const missing = range(1, size).filter((r) => !hellos.has(r));
      return `rendezvous: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not join within ${timeoutMs} ms`;
    });
    const listener = await this.listen(masterAddr, masterPort, `rank 0 could not listen on ${masterAddr}:${masterPort}`, {
      admit: (rank, purpose) => {
        const key = `${purpose}:${rank}`;
        if (purpose === Purpose.CONTROL && (rank < 1 || rank >= size)) return `no rank ${rank} in a world of ${size}`;
        if (purpose === Purpose.DATA && rank !== this.nextRank) return `only rank ${this.nextRank} receives ring data from rank 0`;
        if (reserved.has(key)) return `rank ${rank} is already connected`;
        reserved.add(key);
        return undefined;
      },
      onPeer: (rank, purpose, socket, leftover) => {
        const conn = this.adopt(socket, rank, socket.remoteAddress ?? 'unknown', leftover);
        if (purpose === Purpose.DATA) return acceptNext(conn);
        control.set(rank, conn);
        void conn.nextMessage(Op.HELLO, RENDEZVOUS_STEP).then((bytes) => {
          if (this.failure) return;
          try {
            hellos.set(rank, parseHello(bytes, rank));
          } catch (error) {
            return this.fail(error as RendezvousError);
          }
          if (hellos.size === size - 1) allJoined();
        });
      },
    });
    this.options.onListening?.(listener.port);
    await this.race(joined);

    const mismatch = findMismatch(this.fingerprint(), size, hellos);
    if (mismatch) throw new RendezvousError(mismatch);
    const entries: TableEntry[] = [
      { rank: 0, host: masterAddr, port: listener.port, info: this.options.info ?? null },
      ...range(1, size).map((rank) => ({ rank, host: hellos.get(rank)!.host, port: hellos.get(rank)!.port, info: hellos.get(rank)!.info })),
    ];
    const encoded = entries.map((entry) => Buffer.from(JSON.stringify(entry)));
    for (const conn of control.values()) for (const bytes of encoded) conn.send(Op.TABLE, RENDEZVOUS_STEP, bytes);

    this.setDeadline(() => `rendezvous: the ring did not form within ${timeoutMs} ms`);
    const prev = await this.connectRing(entries[this.prevRank]!);
    const next = await this.race(nextConnected);
    await this.race(Promise.all([...control.values()].map((conn) => conn.nextMessage(Op.READY, RENDEZVOUS_STEP))));
    for (const conn of control.values()) conn.send(Op.GO, RENDEZVOUS_STEP);
    return this.done({ control, next, prev, hosts: entries.map((e) => e.host), infos: entries.map((e) => e.info) });
  }

  // ---- other ranks -----------------------------------------------------------------------

  async join(): Promise<Formed> {
    const { rank, size, masterAddr, masterPort, timeoutMs } = this.options;
    const where = `rank 0 at ${masterAddr}:${masterPort}`;
    this.setDeadline(() => `rendezvous: could not reach ${where} within ${timeoutMs} ms`);
    const socket = await this.connect(masterAddr, masterPort, 'rank 0');
    const leftover = await this.authenticate(socket, Purpose.CONTROL, 0, where);
    const zero = this.adopt(socket, 0, masterAddr, leftover);
    const localHost = socket.localAddress ?? masterAddr;

    // From here on, the deadline counts from joining: rank 0 may still wait for others.
    this.setDeadline(() => `rendezvous: ${where} did not answer within ${timeoutMs} ms`);
    let acceptNext!: (conn: Connection) => void;
    const nextConnected = new Promise<Connection>((resolve) => (acceptNext = resolve));
    let nextTaken = false;
    const listener = await this.listen(localHost, 0, `rank ${rank} could not open its ring port on ${localHost}`, {
      admit: (peer, purpose) => {
        if (purpose !== Purpose.DATA || peer !== this.nextRank) return `rank ${rank} takes only rank ${this.nextRank}'s ring connection`;
        if (nextTaken) return `rank ${peer} is already connected`;
        nextTaken = true;
        return undefined;
      },
      onPeer: (peer, _purpose, peerSocket, peerLeftover) => acceptNext(this.adopt(peerSocket, peer, peerSocket.remoteAddress ?? 'unknown', peerLeftover)),
    });
    const hello: Hello = { size, fingerprint: this.fingerprint(), info: this.options.info ?? null, host: localHost, port: listener.port };
    zero.send(Op.HELLO, RENDEZVOUS_STEP, Buffer.from(JSON.stringify(hello)));

    const entries: TableEntry[] = [];
    for (let k = 0; k < size; k++) entries.push(parseEntry(await this.race(zero.nextMessage(Op.TABLE, RENDEZVOUS_STEP)), k, size));
    this.setDeadline(() => `rendezvous: the ring did not form within ${timeoutMs} ms`);
    const prev = await this.connectRing(entries[this.prevRank]!);
    const next = await this.race(nextConnected);
    listener.close();
    zero.send(Op.READY, RENDEZVOUS_STEP);
    await this.race(zero.nextMessage(Op.GO, RENDEZVOUS_STEP));
    return this.done({ control: new Map([[0, zero]]), next, prev, hosts: entries.map((e) => e.host), infos: entries.map((e) => e.info) });
  }

  // ---- shared ----------------------------------------------------------------------------

  /** The connection ring data arrives on, from rank - 1: its reads reuse one buffer. */
  private async connectRing(entry: TableEntry): Promise<Connection> {
    const where = `rank ${entry.rank} at ${entry.host}:${entry.port}`;
    const reads = new ReusedReads();
    const socket = await this.connect(entry.host, entry.port, `rank ${entry.rank}`, reads);
    const leftover = await this.authenticate(socket, Purpose.DATA, entry.rank, where);
    return this.adopt(socket, entry.rank, entry.host, leftover, reads);
  }

  private fingerprint(): Record<string, string | number> {
    // Float32 bytes travel raw: every process must read them in the same byte order.
    return { ...this.options.fingerprint, byteOrder: endianness() };
  }

  private adopt(socket: Socket, rank: number, host: string, leftover: Buffer | undefined, reads?: ReusedReads): Connection {
    this.sockets.delete(socket);
    const conn = new Connection(socket, rank, host, this, leftover, reads);
    this.connections.add(conn);
    if (this.failure) conn.destroy();
    return conn;
  }

  private async listen(host: string, port: number, what: string, handlers: Pick<Parameters<typeof Listener.open>[0], 'admit' | 'onPeer'>): Promise<Listener> {
    try {
      const listener = await Listener.open({ host, port, token: this.options.token, rank: this.options.rank, log: this.log, ...handlers });
      this.listeners.add(listener);
      if (this.failure) listener.close();
      return listener;
    } catch (error) {
      throw new RendezvousError(`rendezvous: ${what}: ${(error as Error).message}`);
    }
  }

  /** Connects, retrying while the peer is not listening yet, until the deadline. */
  private async connect(host: string, port: number, who: string, reads?: ReusedReads): Promise<Socket> {
    let lastError = '';
    for (let wait = 50; ; wait = Math.min(1_000, wait * 2)) {
      if (this.failure) throw this.failure;
      try {
        return await this.race(this.connectOnce(host, port, reads));
      } catch (error) {
        if (this.failure) throw this.failure;
        lastError = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
      }
      const left = this.deadline - Date.now();
      if (left <= 0) {
        throw new RendezvousError(`rendezvous: could not reach ${who} at ${host}:${port} within ${this.options.timeoutMs} ms (last error: ${lastError})`);
      }
      await this.race(new Promise((resolve) => setTimeout(resolve, Math.min(wait, left))));
    }
  }

  private connectOnce(host: string, port: number, reads: ReusedReads | undefined): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = reads ? reads.connect(host, port) : connect({ host, port });
      this.sockets.add(socket);
      const timer = setTimeout(() => socket.destroy(Object.assign(new Error('connect timed out'), { code: 'ETIMEDOUT' })), Math.max(1, Math.min(10_000, this.deadline - Date.now())));
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        socket.on('error', () => undefined);
        socket.setNoDelay(true);
        resolve(socket);
      });
      const onError = (error: Error) => {
        clearTimeout(timer);
        this.sockets.delete(socket);
        socket.destroy();
        reject(error);
      };
      socket.once('error', onError);
    });
  }

  private async authenticate(socket: Socket, purpose: Purpose, expectRank: number, where: string): Promise<Buffer | undefined> {
    try {
      const { token, rank } = this.options;
      return await this.race(authenticateOutgoing(socket, { token, rank, purpose, expectRank, deadline: this.deadline, describe: where }));
    } catch (error) {
      socket.destroy();
      if (error instanceof AuthError) throw new RendezvousError(`rendezvous: ${error.message}`);
      throw error;
    }
  }

  private deadline = 0;

  /** (Re)starts the rendezvous deadline; on expiry it fails with `describe()`. */
  private setDeadline(describe: () => string): void {
    clearTimeout(this.timer);
    this.deadline = Date.now() + this.options.timeoutMs;
    this.timer = setTimeout(() => this.fail(new RendezvousError(describe())), this.options.timeoutMs);
  }

  private race<T>(work: Promise<T>): Promise<T> {
    return Promise.race([work, this.failed]);
  }

  private done(formed: Formed): Formed {
    clearTimeout(this.timer);
    for (const listener of this.listeners) listener.close();
    return formed;
  }

  /** Fails rendezvous here and on every rank connected so far. */
  fail(error: RendezvousError): void {
    if (this.failure) return;
    this.failure = error;
    clearTimeout(this.timer);
    this.rejectFailed(error);
    for (const listener of this.listeners) listener.close();
    for (const socket of this.sockets) socket.destroy();
    for (const conn of this.connections) {
      conn.sendAbort({ rank: this.options.rank, reason: error.message, step: RENDEZVOUS_STEP });
      conn.end();
    }
    const connections = [...this.connections];
    setTimeout(() => connections.forEach((conn) => conn.destroy()), GRACE_MS).unref();
  }

  // ---- connection events during rendezvous -----------------------------------------------

  abort(_conn: Connection, message: AbortMessage): void {
    this.fail(new RendezvousError(message.reason));
  }

  goodbye(conn: Connection): void {
    this.fail(new RendezvousError(`rendezvous: ${conn.label} left before the group was formed`));
  }

  closed(conn: Connection, reason: string): void {
    this.fail(new RendezvousError(`rendezvous: ${conn.label}: ${reason} before the group was formed`));
  }

  violation(_conn: Connection, error: ProtocolError): void {
    this.fail(new RendezvousError(`rendezvous: ${error.message}`));
  }
}

function range(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from) }, (_, i) => from + i);
}

function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new RendezvousError(`rendezvous: ${what} is not JSON`);
  }
}

function parseHello(bytes: Buffer, rank: number): Hello {
  const hello = parseJson(bytes, `the hello of rank ${rank}`) as Partial<Hello> | null;
  if (
    !hello ||
    !Number.isSafeInteger(hello.size) ||
    typeof hello.fingerprint !== 'object' ||
    hello.fingerprint === null ||
    typeof hello.host !== 'string' ||
    !Number.isInteger(hello.port) ||
    hello.port! < 1 ||
    hello.port! > 65535
  ) {
    throw new RendezvousError(`rendezvous: rank ${rank} sent a malformed hello`);
  }
  return hello as Hello;
}

function parseEntry(bytes: Buffer, rank: number, size: number): TableEntry {
  if (bytes.length > MAX_MESSAGE_BYTES) throw new RendezvousError('rendezvous: table entry too large');
  const entry = parseJson(bytes, 'the rendezvous table') as Partial<TableEntry> | null;
  if (!entry || entry.rank !== rank || typeof entry.host !== 'string' || !Number.isInteger(entry.port) || rank >= size) {
    throw new RendezvousError(`rendezvous: malformed table entry for rank ${rank}`);
  }
  return entry as TableEntry;
}

function show(value: string | number | undefined): string {
  return value === undefined ? 'no such field' : JSON.stringify(value);
}

/** The first disagreement with rank 0, in rank order then field order, as one line. */
function findMismatch(mine: Record<string, string | number>, size: number, hellos: Map<number, Hello>): string | undefined {
  for (const rank of range(1, size)) {
    const hello = hellos.get(rank)!;
    if (hello.size !== size) return `rendezvous: world size differs: rank 0 has ${size}, rank ${rank} has ${hello.size}`;
    const theirs = hello.fingerprint;
    for (const field of new Set([...Object.keys(mine), ...Object.keys(theirs)])) {
      const a = Object.prototype.hasOwnProperty.call(mine, field) ? mine[field] : undefined;
      const b = Object.prototype.hasOwnProperty.call(theirs, field) ? theirs[field] : undefined;
      if (a !== b) return `rendezvous: fingerprint field "${field}" differs: rank 0 has ${show(a)}, rank ${rank} has ${show(b)}`;
    }
  }
  return undefined;
}
