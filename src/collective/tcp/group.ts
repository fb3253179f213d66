/**
 * A group of processes over TCP, run on the main thread of each process. Data moves on a ring
 * of authenticated connections (rank r sends to r+1, receives from r-1; ring-allreduce.ts);
 * small values, barriers, abort relays and heartbeats use a star of control connections to
 * rank 0. Collectives run one at a time, in call order, and every frame carries its operation
 * and step, so a rank that calls something else is a clear desynchronisation error.
 *
 * Failures: a peer whose socket closes without a goodbye fails the group at once; a peer silent
 * for stepTimeoutMs (heartbeats flow every ~1 s on idle links, from a timer) fails it too; so
 * does an abort from a peer, a protocol violation, or a collective wait that makes no progress
 * for stepTimeoutMs. The first failure rejects `failed`, every pending and later call, and is
 * sent to every peer as an abort naming the failed rank (relayed by everyone, so ranks not
 * connected to it learn it at once too); then the sockets close.
 */
import { TrainingAbortedError } from '../../errors.js';
import { WaitTimeoutError } from '../control-block.js';
import { chunkRange } from '../ring.js';
import type { AbortMessage, Connection, ConnectionEvents } from './connection.js';
import { PeerFailureError, ProtocolError, RendezvousError } from './errors.js';
import { MAX_MESSAGE_BYTES, Op } from './frame.js';
import { ringAllGather, ringAllReduce, ringReduceScatter, type RingLinks } from './ring-allreduce.js';
import { ringBroadcast } from './ring-broadcast.js';
import { formGroup, type Formed, type RendezvousOptions } from './rendezvous.js';

export { PeerFailureError } from './errors.js';
export type { RendezvousOptions } from './rendezvous.js';

/** After a failure, abort frames get this long to leave before the sockets are destroyed. */
const GRACE_MS = 1_000;
const CLOSE_TIMEOUT_MS = 5_000;

/** Forms the group (see rendezvous.ts); with size 1 it returns at once without listening. */
export async function rendezvous(options: RendezvousOptions): Promise<ProcessGroup> {
  checkOptions(options);
  if (options.size === 1) return new ProcessGroup(options, undefined);
  return new ProcessGroup(options, await formGroup(options));
}

export class ProcessGroup {
  readonly rank: number;
  readonly size: number;
  /** The address each rank is reached at, in rank order. */
  readonly hosts: string[];
  /** Every rank's info, in rank order. */
  readonly infos: unknown[];
  /** Rejects (never resolves) with the group's first failure. */
  readonly failed: Promise<never>;

  private readonly control: Map<number, Connection>;
  private readonly links: RingLinks | undefined;
  private readonly connections: Connection[];
  private readonly stepTimeoutMs: number;
  private readonly heartbeatMs: number;
  private readonly timer: NodeJS.Timeout | undefined;
  private rejectFailed!: (error: Error) => void;
  private failure: Error | undefined;
  private closing: Promise<void> | undefined;
  /** Rejecters of the calls in flight, told of a failure. */
  private readonly inFlight = new Set<(error: Error) => void>();
  private tail: Promise<unknown> = Promise.resolve();
  /** The step of the latest call, for messages and heartbeats. */
  private step = -1;

  /** @internal Use rendezvous(). */
  constructor(options: RendezvousOptions, formed: Formed | undefined) {
    this.rank = options.rank;
    this.size = options.size;
    this.stepTimeoutMs = options.stepTimeoutMs;
    this.heartbeatMs = Math.max(20, Math.min(1_000, options.stepTimeoutMs / 4));
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => undefined);
    this.hosts = formed?.hosts ?? [options.masterAddr];
    this.infos = formed?.infos ?? [options.info ?? null];
    this.control = formed?.control ?? new Map();
    this.links = formed && { rank: this.rank, size: this.size, next: formed.next, prev: formed.prev };
    this.connections = formed ? [...new Set([...formed.control.values(), formed.next, formed.prev])] : [];
    const events: ConnectionEvents = {
      abort: (conn, message) => this.fail(new PeerFailureError(message.rank, this.hostOf(message.rank), message.step, message.reason), message, conn),
      goodbye: (conn) => {
        // A peer says goodbye once its own calls are done; it is missing only if this rank
        // still waits for frames from it.
        if (conn.waiting) this.peerFailed(conn, 'closed the group during a collective');
      },
      closed: (conn, reason) => this.peerFailed(conn, reason),
      // The rank that finds a violation aborts; the message names the peer that committed it.
      violation: (_conn, error) => this.fail(error, { rank: this.rank, reason: error.message, step: this.step }),
    };
    for (const conn of this.connections) conn.events = events;
    if (this.connections.length > 0) {
      this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(250, options.stepTimeoutMs / 8)));
      this.timer.unref();
    }
  }

  // ---- collectives -----------------------------------------------------------------------

  /** In-place sum over ranks; every rank ends with bitwise identical values. */
  allReduce(buf: Float32Array, step: number): Promise<void> {
    return this.run(step, async () => {
      if (this.links) await ringAllReduce(this.links, buf, step);
    });
  }

  /** Afterwards this rank's chunk (the returned range, chunkRange(buf.length, size, rank)) holds the sum. */
  reduceScatter(buf: Float32Array, step: number): Promise<[number, number]> {
    return this.run(step, async () => (this.links ? ringReduceScatter(this.links, buf, step) : chunkRange(buf.length, 1, 0)));
  }

  /** From each rank's own chunk valid, every chunk valid everywhere. */
  allGather(buf: Float32Array, step: number): Promise<void> {
    return this.run(step, async () => {
      if (this.links) await ringAllGather(this.links, buf, step);
    });
  }

  /** `root`'s bytes of `buf` become every rank's (along the ring, pipelined by segments). */
  broadcast(buf: Float32Array | Uint8Array, root: number, step: number): Promise<void> {
    if (!Number.isInteger(root) || root < 0 || root >= this.size) return Promise.reject(new RangeError(`broadcast root ${root} is not a rank of a world of ${this.size}`));
    return this.run(step, async () => {
      if (this.links) await ringBroadcast(this.links, buf, root, step);
    });
  }

  /** Every rank's JSON `value` (at most 1 MiB), in rank order, on every rank. */
  exchange<T>(value: T, step: number): Promise<T[]> {
    return this.run(step, async () => {
      const bytes = Buffer.from(JSON.stringify(value ?? null));
      if (bytes.length > MAX_MESSAGE_BYTES) throw new RangeError(`exchange value of ${bytes.length} bytes exceeds the limit of ${MAX_MESSAGE_BYTES}`);
      const all = await this.gatherAndShare(Op.EXCHANGE, step, bytes);
      return all.map((part, rank) => this.parse<T>(part, rank));
    });
  }

  barrier(step: number): Promise<void> {
    return this.run(step, async () => {
      await this.gatherAndShare(Op.BARRIER, step, undefined);
    });
  }

  /** Tells every peer this rank is failing; their pending and later calls reject naming it. */
  abort(reason: string, step = this.step): void {
    const error = new PeerFailureError(this.rank, this.hostOf(this.rank), step, `aborted: ${reason}`);
    this.fail(error, { rank: this.rank, reason: `aborted: ${reason}`, step });
  }

  /** Orderly end: a goodbye to every peer, so their end of the sockets is no failure. */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  /**
   * Test-only: writes raw bytes to the connection to the next rank, the previous rank, or the
   * control connection with `rank`, bypassing the protocol (to test hostile peers).
   */
  unsafeWriteForTests(to: 'next' | 'prev' | number, bytes: Uint8Array): void {
    const conn = to === 'next' ? this.links?.next : to === 'prev' ? this.links?.prev : this.control.get(to);
    conn?.socket.write(bytes);
  }

  /**
   * Rank 0 gathers every rank's payload on the control connections, then sends all of them, in
   * rank order, to every rank (one frame each, so no frame outgrows the message limit).
   */
  private async gatherAndShare(op: Op, step: number, mine: Buffer | undefined): Promise<Buffer[]> {
    const empty = Buffer.alloc(0);
    if (this.size === 1) return [mine ?? empty];
    if (this.rank === 0) {
      const ranks = [...this.control.keys()].sort((a, b) => a - b);
      const theirs = await Promise.all(ranks.map((rank) => this.control.get(rank)!.nextMessage(op, step)));
      const all = [mine ?? empty, ...theirs];
      for (const conn of this.control.values()) {
        if (mine === undefined) conn.send(op, step);
        else for (const part of all) conn.send(op, step, part);
      }
      return all;
    }
    const zero = this.control.get(0)!;
    zero.send(op, step, mine);
    if (mine === undefined) return [await zero.nextMessage(op, step)];
    const all: Buffer[] = [];
    for (let rank = 0; rank < this.size; rank++) all.push(await zero.nextMessage(op, step));
    return all;
  }

  private parse<T>(bytes: Buffer, rank: number): T {
    try {
      return JSON.parse(bytes.toString('utf8')) as T;
    } catch {
      throw new ProtocolError(`the exchange value of rank ${rank} is not JSON`);
    }
  }

  /** Runs one collective after the previous one, raced against the group's failure. */
  private run<T>(step: number, body: () => Promise<T>): Promise<T> {
    if (!Number.isSafeInteger(step)) return Promise.reject(new RangeError(`step must be an integer, got ${step}`));
    const result = this.tail.then(() => this.guarded(step, body));
    this.tail = result.then(
      () => undefined,
      () => undefined,
    );
    return result;
  }

  private guarded<T>(step: number, body: () => Promise<T>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.closing) return Promise.reject(new TrainingAbortedError('the process group is closed'));
    this.step = step;
    const gone = this.connections.find((conn) => conn.saidGoodbye);
    if (gone) this.peerFailed(gone, 'has closed the group');
    return new Promise<T>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.inFlight.add(reject);
      body().then(
        (value) => {
          this.inFlight.delete(reject);
          resolve(value);
        },
        (error: Error) => {
          this.inFlight.delete(reject);
          // A local error mid-collective leaves the peers waiting: they must learn it.
          if (!this.failure) this.fail(error, { rank: this.rank, reason: error.message, step });
          reject(this.failure ?? error);
        },
      );
    });
  }

  // ---- failure ---------------------------------------------------------------------------

  private hostOf(rank: number): string {
    return this.hosts[rank] ?? 'unknown';
  }

  /** The group's first failure: reject everything, tell every peer (but `from`), close. */
  private fail(error: Error, message: AbortMessage, from?: Connection): void {
    if (this.failure || this.closing) return;
    this.failure = error;
    clearInterval(this.timer);
    this.rejectFailed(error);
    for (const reject of this.inFlight) reject(error);
    this.inFlight.clear();
    for (const conn of this.connections) {
      if (conn !== from) conn.sendAbort(message);
      conn.end();
    }
    const connections = this.connections;
    setTimeout(() => connections.forEach((conn) => conn.destroy()), GRACE_MS).unref();
  }

  private peerFailed(conn: Connection, what: string): void {
    const message: AbortMessage = { rank: conn.peer, reason: what, step: this.step };
    this.fail(new PeerFailureError(conn.peer, this.hostOf(conn.peer), this.step, what), message, conn);
  }

  /** Heartbeats, silence and step deadlines. */
  private tick(): void {
    const now = Date.now();
    const limit = this.stepTimeoutMs;
    let abnormalSilence = false;
    for (const conn of this.connections) {
      if (!conn.usable) continue;
      if (now - conn.lastSent >= this.heartbeatMs) conn.send(Op.HEARTBEAT, this.step);
      if (conn.saidGoodbye || conn.paused) continue;
      const silent = now - conn.lastReceived;
      if (silent > limit) return this.peerFailed(conn, `no heartbeat for ${limit} ms`);
      if (silent > 2 * this.heartbeatMs + 250) abnormalSilence = true;
    }
    // A wait without progress fails at the step deadline, unless a peer has gone quiet: then
    // that peer is the likely cause, and its silence deadline (soon) names it instead.
    if (abnormalSilence) return;
    for (const conn of this.connections) {
      if (conn.waiting && now - conn.consumerProgress > limit) {
        const error = new WaitTimeoutError(`${conn.label} in the collective of step ${this.step}`, limit);
        return this.fail(error, { rank: this.rank, reason: error.message, step: this.step });
      }
      if (conn.pendingWrites > 0 && now - conn.writeProgress > limit) {
        const error = new WaitTimeoutError(`${conn.label} to take the data of step ${this.step}`, limit);
        return this.fail(error, { rank: this.rank, reason: error.message, step: this.step });
      }
    }
  }

  private async shutdown(): Promise<void> {
    clearInterval(this.timer);
    const error = new TrainingAbortedError('the process group was closed during a collective');
    for (const reject of this.inFlight) reject(error);
    this.inFlight.clear();
    if (!this.failure) {
      for (const conn of this.connections) {
        conn.send(Op.GOODBYE, this.step);
        conn.end();
      }
    }
    // Wait for the peers to close their ends too. Even after a failure: destroying a socket
    // with unread bytes resets it, and a reset can make a peer drop our abort unread (it would
    // then blame this rank instead of the one that failed).
    const allClosed = Promise.all(this.connections.map((conn) => new Promise<void>((resolve) => (conn.socket.destroyed ? resolve() : conn.socket.once('close', () => resolve())))));
    let timer: NodeJS.Timeout | undefined;
    const patience = this.failure ? GRACE_MS : Math.min(this.stepTimeoutMs, CLOSE_TIMEOUT_MS);
    await Promise.race([allClosed, new Promise<void>((resolve) => (timer = setTimeout(resolve, patience)))]);
    clearTimeout(timer);
    for (const conn of this.connections) conn.destroy();
  }
}

function checkOptions(options: RendezvousOptions): void {
  const { rank, size, masterPort, token, timeoutMs, stepTimeoutMs } = options;
  if (!Number.isInteger(size) || size < 1) throw new RendezvousError(`rendezvous: world size must be a positive integer, got ${size}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= size) throw new RendezvousError(`rendezvous: rank ${rank} is not in 0..${size - 1}`);
  if (!Number.isInteger(masterPort) || masterPort < 0 || masterPort > 65535) throw new RendezvousError(`rendezvous: master port ${masterPort} is not a TCP port`);
  if (typeof token !== 'string' || token.length === 0) throw new RendezvousError('rendezvous: the token is empty (every process needs the same shared secret)');
  for (const [name, value] of [['timeoutMs', timeoutMs], ['stepTimeoutMs', stepTimeoutMs]] as const) {
    if (!(value > 0) || !Number.isFinite(value)) throw new RendezvousError(`rendezvous: ${name} must be a positive number of milliseconds, got ${value}`);
  }
}
