/**
 * A world of processes over TCP: rendezvous at rank 0, a ring of authenticated connections for
 * data (rank r sends to r+1 and receives from r-1), and a star of control connections to rank 0
 * for small exchanges, heartbeats and aborts. Every wait has a deadline; a peer that closes
 * without a goodbye, falls silent for stepTimeoutMs, aborts, or breaks the protocol fails the
 * group at once on every rank (rank 0 relays), naming that peer, its host and the step.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { TrainingAbortedError, UserError } from '../../errors.js';
import { authenticateIncoming, authenticateOutgoing } from './auth.js';
import { ConnectionError, FramedConnection } from './connection.js';
import { Op, SEGMENT_BYTES } from './frame.js';
import { ringAllGatherTcp, ringAllReduceTcp, ringReduceScatterTcp, type RingLinks } from './ring-allreduce.js';

export interface RendezvousOptions {
  rank: number;
  size: number;
  masterAddr: string;
  masterPort: number;
  token: string;
  fingerprint: Record<string, string | number>;
  info: unknown;
  timeoutMs: number;
  stepTimeoutMs: number;
  log?: (line: string) => void;
}

/** A peer process failed (or this one is failing because of one): names it, its host and the step. */
export class PeerFailureError extends TrainingAbortedError {
  constructor(
    readonly rank: number,
    readonly host: string,
    readonly step: number,
    reason: string,
  ) {
    super(`rank ${rank} (host ${host}) failed at step ${step}: ${reason}`);
    this.name = 'PeerFailureError';
  }
}

const HEARTBEAT_MS = 1_000;
const CONNECT_RETRY_MS = 200;
const CLOSE_TIMEOUT_MS = 5_000;

interface Hello {
  rank: number;
  fingerprint: Record<string, string | number>;
  info: unknown;
  ringHost: string;
  ringPort: number;
}

interface Table {
  hosts: string[];
  ringPorts: number[];
  infos: unknown[];
}

interface AbortMessage {
  origin: number;
  host: string;
  step: number;
  reason: string;
}

export class ProcessGroup implements RingLinks {
  /** Control connections: rank 0 holds one per other rank (index = rank); others hold [rank 0]. */
  private readonly control = new Map<number, FramedConnection>();
  private next: FramedConnection | undefined;
  private prev: FramedConnection | undefined;
  private readonly lastHeard = new Map<number, number>();
  private heartbeat: NodeJS.Timeout | undefined;
  private failure: PeerFailureError | undefined;
  private rejectFailed!: (error: Error) => void;
  private closing = false;
  /** The step of the last operation begun, for messages. */
  private step = 0;
  readonly failed: Promise<never>;
  hosts: string[] = [];
  infos: unknown[] = [];

  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly stepTimeoutMs: number,
  ) {
    this.failed = new Promise<never>((_, reject) => (this.rejectFailed = reject));
    this.failed.catch(() => undefined);
  }

  // ---- ring data -------------------------------------------------------------------------

  sendNext(segment: Float32Array, step: number): void {
    this.next!.send(Op.DATA, step, Buffer.from(new Uint8Array(segment.buffer, segment.byteOffset, segment.byteLength)));
  }

  async receivePrev(length: number, step: number): Promise<Float32Array> {
    const frame = await this.prev!.next(Op.DATA, step, 2 * this.stepTimeoutMs, `data for step ${step}`);
    if (frame.payload.byteLength !== length * 4) {
      throw this.protocolError(this.prev!, `expected a segment of ${length * 4} bytes for step ${step}, got ${frame.payload.byteLength}`);
    }
    return new Float32Array(frame.payload.buffer, frame.payload.byteOffset, length);
  }

  async allReduce(buf: Float32Array, step: number): Promise<void> {
    await this.guard(step, () => ringAllReduceTcp(this, buf, step));
  }

  async reduceScatter(buf: Float32Array, step: number): Promise<[number, number]> {
    return this.guard(step, () => ringReduceScatterTcp(this, buf, step));
  }

  async allGather(buf: Float32Array, step: number): Promise<void> {
    await this.guard(step, () => ringAllGatherTcp(this, buf, step));
  }

  /** Copies `root`'s buffer to every rank along the ring, segment by segment. */
  async broadcast(buf: Float32Array | Uint8Array, root: number, step: number): Promise<void> {
    if (this.size === 1) return;
    const bytes = new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
    await this.guard(step, async () => {
      const last = (root + this.size - 1) % this.size;
      for (let start = 0; start < bytes.length || (start === 0 && bytes.length === 0); start += SEGMENT_BYTES) {
        const end = Math.min(bytes.length, start + SEGMENT_BYTES);
        if (this.rank !== root) {
          const frame = await this.prev!.next(Op.DATA, step, 2 * this.stepTimeoutMs, `broadcast data for step ${step}`);
          if (frame.payload.byteLength !== end - start) throw this.protocolError(this.prev!, `expected ${end - start} broadcast bytes, got ${frame.payload.byteLength}`);
          bytes.set(frame.payload, start);
        }
        if (this.rank !== last) this.next!.send(Op.DATA, step, Buffer.from(bytes.subarray(start, end)));
        if (bytes.length === 0) break;
      }
    });
  }

  /** Every rank's `value` in rank order, on every rank (gathered at rank 0, sent back). */
  async exchange<T>(value: T, step: number): Promise<T[]> {
    if (this.size === 1) return [value];
    return this.guard(step, async () => {
      if (this.rank !== 0) {
        const zero = this.control.get(0)!;
        zero.sendJson(Op.EXCHANGE, step, value);
        return zero.nextJson<T[]>(Op.EXCHANGE_RESULT, step, 2 * this.stepTimeoutMs, `exchange result for step ${step}`);
      }
      const values: T[] = [value];
      for (let r = 1; r < this.size; r++) values.push(await this.control.get(r)!.nextJson<T>(Op.EXCHANGE, step, 2 * this.stepTimeoutMs, `exchange for step ${step}`));
      const payload = Buffer.from(JSON.stringify(values));
      for (let r = 1; r < this.size; r++) this.control.get(r)!.send(Op.EXCHANGE_RESULT, step, payload);
      return values;
    });
  }

  async barrier(step: number): Promise<void> {
    await this.exchange(null, step);
  }

  /** Tells every peer this rank is failing; they fail naming it. */
  abort(reason: string, step = this.step): void {
    if (this.failure) return;
    const message: AbortMessage = { origin: this.rank, host: this.hosts[this.rank] ?? 'unknown', step, reason };
    this.broadcastAbort(message);
    this.fail(new PeerFailureError(this.rank, message.host, step, `aborted: ${reason}`), false);
  }

  /** Orderly end: a barrier, then goodbyes, so no peer takes the closing for a failure. */
  async close(): Promise<void> {
    if (this.closing || this.size === 1) return;
    this.closing = true;
    clearInterval(this.heartbeat);
    if (!this.failure) {
      try {
        await Promise.race([this.barrier(this.step + 1), new Promise((resolve) => setTimeout(resolve, CLOSE_TIMEOUT_MS))]);
      } catch {
        // a peer already gone: nothing to say goodbye to
      }
    }
    for (const conn of this.connections()) {
      conn.saidBye = true;
      if (!this.failure) conn.send(Op.BYE, 0);
      conn.end();
    }
    const destroyLater = setTimeout(() => this.connections().forEach((c) => c.socket.destroy()), CLOSE_TIMEOUT_MS);
    destroyLater.unref();
  }

  // ---- failure -------------------------------------------------------------------------

  /** Runs one collective operation, raced against the group's failure. */
  private async guard<T>(step: number, work: () => Promise<T>): Promise<T> {
    if (this.failure) throw this.failure;
    this.step = step;
    const running = work();
    running.catch(() => undefined);
    try {
      return await Promise.race([running, this.failed]);
    } catch (error) {
      if (error instanceof PeerFailureError) throw error;
      // A connection error (timeout, desynchronisation, closed socket) names the peer of that connection.
      throw this.failure ?? error;
    }
  }

  private connections(): FramedConnection[] {
    return [...new Set([...this.control.values(), ...(this.next ? [this.next] : []), ...(this.prev ? [this.prev] : [])])];
  }

  private protocolError(conn: FramedConnection, message: string): Error {
    const error = new ConnectionError(`protocol violation from ${conn.peer}: ${message}`);
    conn.fail(error);
    return error;
  }

  /** A connection to `peerRank` failed: the group fails naming that rank, and tells the others. */
  private peerFailed(peerRank: number, error: Error): void {
    if (this.failure || this.closing) return;
    const message: AbortMessage = { origin: peerRank, host: this.hosts[peerRank] ?? 'unknown', step: this.step, reason: error.message };
    this.broadcastAbort(message);
    this.fail(new PeerFailureError(peerRank, message.host, this.step, error.message), true);
  }

  private broadcastAbort(message: AbortMessage): void {
    const payload = Buffer.from(JSON.stringify(message));
    for (const [rank, conn] of this.control) if (rank !== message.origin) conn.send(Op.ABORT, message.step, payload);
  }

  private fail(error: PeerFailureError, _fromPeer: boolean): void {
    if (this.failure) return;
    this.failure = error;
    clearInterval(this.heartbeat);
    this.rejectFailed(error);
    // Let the abort frames leave before the sockets go.
    for (const conn of this.connections()) {
      conn.saidBye = true;
      conn.socket.end();
    }
    const destroyLater = setTimeout(() => this.connections().forEach((c) => c.socket.destroy()), 1_000);
    destroyLater.unref();
  }

  /** Control frames that are no one's reply: heartbeats, aborts, goodbyes. */
  private watch(conn: FramedConnection, peerRank: number): void {
    this.lastHeard.set(peerRank, Date.now());
    conn.onControl = (frame) => {
      this.lastHeard.set(peerRank, Date.now());
      if (frame.op === Op.HEARTBEAT) return true;
      if (frame.op === Op.BYE) {
        conn.saidBye = true;
        return true;
      }
      if (frame.op === Op.ABORT) {
        let message: AbortMessage;
        try {
          message = JSON.parse(Buffer.from(frame.payload).toString('utf8')) as AbortMessage;
        } catch {
          message = { origin: peerRank, host: this.hosts[peerRank] ?? 'unknown', step: frame.step, reason: 'aborted' };
        }
        if (this.failure) return true;
        // Rank 0 relays, so that ranks not connected to the origin learn it at once.
        if (this.rank === 0) this.broadcastAbort(message);
        const reason = message.origin === peerRank ? `aborted: ${message.reason}` : message.reason;
        this.fail(new PeerFailureError(message.origin, message.host, message.step, reason), true);
        return true;
      }
      return false;
    };
    conn.onFailure = (error) => {
      if (conn.saidBye || this.closing) return;
      this.peerFailed(peerRank, error);
    };
  }

  /** Heartbeats on the control connections; a peer silent for stepTimeoutMs has failed. */
  private startHeartbeats(): void {
    this.heartbeat = setInterval(() => {
      const now = Date.now();
      for (const [rank, conn] of this.control) {
        conn.send(Op.HEARTBEAT, 0);
        const silent = now - (this.lastHeard.get(rank) ?? now);
        if (silent > this.stepTimeoutMs) this.peerFailed(rank, new Error(`no heartbeat for ${silent} ms`));
      }
    }, Math.min(HEARTBEAT_MS, Math.max(50, this.stepTimeoutMs / 4)));
    this.heartbeat.unref();
  }

  // ---- rendezvous -------------------------------------------------------------------------

  static async rendezvous(options: RendezvousOptions): Promise<ProcessGroup> {
    const group = new ProcessGroup(options.rank, options.size, options.stepTimeoutMs);
    if (options.size === 1) {
      group.hosts = [options.masterAddr];
      group.infos = [options.info];
      return group;
    }
    const deadline = Date.now() + options.timeoutMs;
    try {
      if (options.rank === 0) await group.hostRendezvous(options, deadline);
      else await group.joinRendezvous(options, deadline);
      await group.connectRing(options, deadline);
    } catch (error) {
      for (const conn of group.connections()) conn.socket.destroy();
      throw error;
    }
    group.startHeartbeats();
    return group;
  }

  private async hostRendezvous(options: RendezvousOptions, deadline: number): Promise<void> {
    const { size, token, log } = options;
    const server = await listen(options.masterPort, options.masterAddr, `rank 0 cannot listen on ${options.masterAddr}:${options.masterPort}`);
    const ring = await listen(0, options.masterAddr, `rank 0 cannot open its ring port on ${options.masterAddr}`);
    this.ringServer = ring;
    const hellos = new Map<number, Hello>();
    try {
      await withDeadline(
        new Promise<void>((resolve, reject) => {
          server.on('connection', (socket: Socket) => {
            const conn = new FramedConnection(socket, `${socket.remoteAddress}:${socket.remotePort}`);
            conn.onFailure = () => undefined;
            (async () => {
              const rank = await authenticateIncoming(conn, token);
              const hello = await conn.nextJson<Hello>(Op.HELLO, 0, 10_000, 'hello');
              if (hello.rank !== rank || !Number.isInteger(rank) || rank < 1 || rank >= size) throw new ConnectionError(`a peer claims rank ${hello.rank}, which is not in 1..${size - 1}`);
              if (hellos.has(rank)) throw new ConnectionError(`a second process claims rank ${rank}`);
              conn.peer = `rank ${rank} (${socket.remoteAddress})`;
              hellos.set(rank, hello);
              this.control.set(rank, conn);
              if (hellos.size === size - 1) resolve();
            })().catch((error: Error) => {
              log?.(`refused a connection from ${socket.remoteAddress}:${socket.remotePort}: ${error.message}`);
              conn.fail(error);
            });
          });
          server.on('error', reject);
        }),
        deadline,
        () => {
          const missing = Array.from({ length: size - 1 }, (_, i) => i + 1).filter((r) => !hellos.has(r));
          return `rendezvous: rank${missing.length > 1 ? 's' : ''} ${missing.join(', ')} did not join rank 0 at ${options.masterAddr}:${options.masterPort} within ${options.timeoutMs} ms`;
        },
      );
    } finally {
      // Listen only while the world gathers.
      server.close();
    }
    const mismatch = findMismatch(options.fingerprint, hellos);
    if (mismatch) {
      for (const conn of this.control.values()) conn.sendJson(Op.REJECT, 0, { message: mismatch });
      throw new UserError(mismatch);
    }
    const ringPort = (ring.address() as { port: number }).port;
    const table: Table = {
      hosts: [options.masterAddr, ...Array.from({ length: size - 1 }, (_, i) => hellos.get(i + 1)!.ringHost)],
      ringPorts: [ringPort, ...Array.from({ length: size - 1 }, (_, i) => hellos.get(i + 1)!.ringPort)],
      infos: [options.info, ...Array.from({ length: size - 1 }, (_, i) => hellos.get(i + 1)!.info)],
    };
    for (const conn of this.control.values()) conn.sendJson(Op.TABLE, 0, table);
    this.adopt(table);
    for (const [rank, conn] of this.control) this.watch(conn, rank);
  }

  private ringServer: Server | undefined;

  private async joinRendezvous(options: RendezvousOptions, deadline: number): Promise<void> {
    const { rank, token } = options;
    const address = `${options.masterAddr}:${options.masterPort}`;
    const socket = await connectWithRetry(options.masterAddr, options.masterPort, deadline, () => `rendezvous: could not reach rank 0 at ${address} within ${options.timeoutMs} ms`);
    const conn = new FramedConnection(socket, `rank 0 (${address})`);
    conn.onFailure = () => undefined;
    await authenticateOutgoing(conn, token, rank);
    const ringHost = socket.localAddress ?? '127.0.0.1';
    this.ringServer = await listen(0, ringHost, `rank ${rank} cannot open its ring port on ${ringHost}`);
    const hello: Hello = { rank, fingerprint: options.fingerprint, info: options.info, ringHost, ringPort: (this.ringServer.address() as { port: number }).port };
    conn.sendJson(Op.HELLO, 0, hello);
    // Rank 0 answers with the table, or with the reason it refuses the world.
    const answer = await Promise.race([
      conn.nextJson<Table>(Op.TABLE, 0, Math.max(1, deadline - Date.now()), 'rendezvous table').then((table) => ({ table })),
      new Promise<{ reject: string }>((resolve) => {
        conn.onControl = (frame) => {
          if (frame.op !== Op.REJECT) return false;
          resolve({ reject: (JSON.parse(Buffer.from(frame.payload).toString('utf8')) as { message: string }).message });
          return true;
        };
      }),
    ]).catch((error: Error) => {
      throw new UserError(`rendezvous with rank 0 at ${address} failed: ${error.message}`);
    });
    if ('reject' in answer) throw new UserError(answer.reject);
    this.control.set(0, conn);
    this.adopt(answer.table);
    this.watch(conn, 0);
  }

  private adopt(table: Table & { ringPorts: number[] }): void {
    this.hosts = table.hosts;
    this.infos = table.infos;
    this.ringPorts = table.ringPorts;
  }

  private ringPorts: number[] = [];

  /** Connects to the next rank's ring port and accepts the previous rank on this one. */
  private async connectRing(options: RendezvousOptions, deadline: number): Promise<void> {
    const { rank, size, token, log } = options;
    const nextRank = (rank + 1) % size;
    const prevRank = (rank + size - 1) % size;
    const server = this.ringServer!;
    const accepted = withDeadline(
      new Promise<FramedConnection>((resolve) => {
        server.on('connection', (socket: Socket) => {
          const conn = new FramedConnection(socket, `rank ${prevRank} (${socket.remoteAddress})`);
          conn.onFailure = () => undefined;
          (async () => {
            const peer = await authenticateIncoming(conn, token);
            if (peer !== prevRank) throw new ConnectionError(`rank ${peer} connected to the ring port of rank ${rank}, which takes only rank ${prevRank}`);
            resolve(conn);
          })().catch((error: Error) => {
            log?.(`refused a ring connection from ${socket.remoteAddress}:${socket.remotePort}: ${error.message}`);
            conn.fail(error);
          });
        });
      }),
      deadline,
      () => `rendezvous: rank ${prevRank} did not connect to the ring port of rank ${rank} within ${options.timeoutMs} ms`,
    );
    accepted.catch(() => undefined);
    const host = this.hosts[nextRank]!;
    const socket = await connectWithRetry(host, this.ringPorts[nextRank]!, deadline, () => `rendezvous: could not reach rank ${nextRank} at ${host}:${this.ringPorts[nextRank]} within ${options.timeoutMs} ms`);
    const next = new FramedConnection(socket, `rank ${nextRank} (${host})`);
    next.onFailure = () => undefined;
    await authenticateOutgoing(next, token, rank);
    try {
      this.prev = await accepted;
    } finally {
      server.close();
    }
    this.next = next;
    this.watch(this.next, nextRank);
    this.watch(this.prev, prevRank);
    // The ring connections carry only data: their silence is not a failure (heartbeats are on control).
    this.lastHeard.delete(nextRank);
    this.lastHeard.delete(prevRank);
    for (const rank of this.control.keys()) this.lastHeard.set(rank, Date.now());
  }
}

export function rendezvous(options: RendezvousOptions): Promise<ProcessGroup> {
  return ProcessGroup.rendezvous(options);
}

/** The first field whose value differs between rank 0 and another rank, as one line. */
function findMismatch(mine: Record<string, string | number>, hellos: Map<number, Hello>): string | undefined {
  for (const [rank, hello] of [...hellos].sort((a, b) => a[0] - b[0])) {
    const fields = new Set([...Object.keys(mine), ...Object.keys(hello.fingerprint ?? {})]);
    for (const field of fields) {
      const a = mine[field];
      const b = hello.fingerprint?.[field];
      if (a !== b) return `rendezvous: fingerprint field "${field}" differs: rank 0 has ${JSON.stringify(a)}, rank ${rank} has ${JSON.stringify(b)}`;
    }
  }
  return undefined;
}

function listen(port: number, host: string, what: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error) => reject(new UserError(`${what}: ${error.message}`)));
    server.listen(port, host, () => resolve(server));
  });
}

async function connectWithRetry(host: string, port: number, deadline: number, what: () => string): Promise<Socket> {
  for (;;) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const socket = connect({ host, port });
        const timer = setTimeout(() => socket.destroy(new Error('connect timed out')), Math.max(1, Math.min(5_000, deadline - Date.now())));
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.removeAllListeners('error');
          resolve(socket);
        });
        socket.once('error', (error) => {
          clearTimeout(timer);
          reject(error);
        });
      });
    } catch {
      if (Date.now() + CONNECT_RETRY_MS > deadline) throw new UserError(what());
      await new Promise((resolve) => setTimeout(resolve, CONNECT_RETRY_MS));
    }
  }
}

function withDeadline<T>(promise: Promise<T>, deadline: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new UserError(what())), Math.max(1, deadline - Date.now()));
    }),
  ]).finally(() => clearTimeout(timer));
}
