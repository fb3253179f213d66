/**
 * A framed, authenticated connection to one peer. Incoming frames are cut by FrameParser;
 * heartbeats, aborts and goodbyes are handled on arrival, every other frame goes, in order, to
 * the one consumer the owner installed (a collective waiting for exactly that frame), or is
 * queued until one is. Payload bytes reach a consumer that reads them in place as views on the
 * received bytes, so a ring segment is summed straight from them, with no copy and no
 * allocation of its size. On a connection whose reads reuse one buffer (reused-reads.ts), every
 * piece kept beyond the call (queued frames, other consumers, out-of-band payloads) is copied.
 *
 * The connection keeps the clocks the owner's deadlines need: when bytes last arrived (silence
 * of the peer), when its consumer last made progress (step deadline), and when writes last
 * completed. It never fails the group itself: it reports to `events`.
 */
import type { Socket } from 'node:net';
import { ProtocolError } from './errors.js';
import { encodeHeader, FrameParser, isOutOfBand, MAX_ABORT_BYTES, Op, opName, type FrameSink } from './frame.js';
import type { ReusedReads } from './reused-reads.js';

/** Receives the in-band frames of a connection, one after the other. */
export interface FrameConsumer {
  /** A frame starts; throws ProtocolError when it is not the one expected. */
  begin(op: Op, step: number, length: number): void;
  /** The next piece of its payload (valid only during the call unless copied for it). */
  data(piece: Buffer): void;
  /** The frame is complete; returns true when no further frame is expected. */
  end(): boolean;
  /** Done with each piece when data() returns: it may be a view of a reused read buffer. */
  readonly inPlace?: boolean;
}

/** The payload of an abort: which rank failed, why, and at which step. */
export interface AbortMessage {
  rank: number;
  reason: string;
  step: number;
}

export interface ConnectionEvents {
  abort(conn: Connection, message: AbortMessage): void;
  goodbye(conn: Connection): void;
  /** The peer's end went away without a goodbye. */
  closed(conn: Connection, reason: string): void;
  /** The peer broke the protocol; the connection already stopped reading. */
  violation(conn: Connection, error: ProtocolError): void;
}

interface QueuedFrame {
  op: Op;
  step: number;
  length: number;
  parts: Buffer[];
  bytes: number;
  complete: boolean;
}

/** Queued bytes beyond which reading pauses (TCP then holds the peer back). */
const QUEUE_HIGH_WATER = 64 << 20;

export class Connection implements FrameSink {
  /** When bytes last arrived (or reading resumed). */
  lastReceived = Date.now();
  /** When a frame was last written. */
  lastSent = Date.now();
  /** When the consumer last received part of a frame, or was installed. */
  consumerProgress = 0;
  /** Frames written whose bytes the kernel has not taken yet. */
  pendingWrites = 0;
  /** When a write last completed (or the first pending one started). */
  writeProgress = 0;
  /** The peer said goodbye: its end of the stream is no failure. */
  saidGoodbye = false;
  /** Paused because too much arrived before anyone asked for it. */
  paused = false;

  private readonly parser: FrameParser;
  private consumer: FrameConsumer | undefined;
  private readonly queue: QueuedFrame[] = [];
  private queuedBytes = 0;
  private target: 'consumer' | 'queue' | 'oob' | undefined;
  private oobOp: Op = Op.HEARTBEAT;
  private readonly oobParts: Buffer[] = [];
  private now = Date.now();
  /** This side ended or destroyed the connection: later events are not failures. */
  private ended = false;
  /** Stopped reading after a protocol violation. */
  private discarding = false;
  private reportedClosed = false;
  private flushWaiters: (() => void)[] = [];
  /** The bytes being parsed are a view of a buffer the next read overwrites. */
  private transient = false;

  constructor(
    readonly socket: Socket,
    /** The peer's rank. */
    readonly peer: number,
    /** The peer's address, for messages. */
    readonly host: string,
    public events: ConnectionEvents,
    leftover?: Buffer,
    /** Set when the socket reads into one reused buffer. */
    reads?: ReusedReads,
  ) {
    this.parser = new FrameParser(this, `rank ${peer} (host ${host})`);
    socket.setNoDelay(true);
    if (reads) reads.setReader((view) => this.receive(view, true));
    else socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('end', () => this.lost('connection closed'));
    socket.on('error', (error: NodeJS.ErrnoException) => this.lost(`connection closed (${error.code ?? error.message})`));
    socket.on('close', () => {
      this.lost('connection closed');
      this.releaseFlushWaiters();
    });
    if (leftover) this.receive(leftover);
    socket.resume();
  }

  get label(): string {
    return `rank ${this.peer} (host ${this.host})`;
  }

  /** Whether the consumer is still waiting for frames. */
  get waiting(): boolean {
    return this.consumer !== undefined;
  }

  /** Neither end has closed it and the peer keeps to the protocol. */
  get usable(): boolean {
    return this.writable && !this.reportedClosed && !this.discarding;
  }

  private get writable(): boolean {
    return !this.ended && !this.socket.destroyed && this.socket.writable;
  }

  // ---- sending ---------------------------------------------------------------------------

  /** Queues one frame; the payload must not change until `flushed()` resolves. */
  send(op: Op, step: number, payload?: Uint8Array): void {
    if (!this.writable) return;
    const socket = this.socket;
    const length = payload ? payload.length : 0;
    if (this.pendingWrites++ === 0) this.writeProgress = Date.now();
    this.lastSent = Date.now();
    if (length === 0) {
      socket.write(encodeHeader(op, step, 0), this.afterWrite);
      return;
    }
    socket.cork();
    socket.write(encodeHeader(op, step, length));
    socket.write(payload!, this.afterWrite);
    socket.uncork();
  }

  sendAbort(message: AbortMessage): void {
    const reason = message.reason.length > MAX_ABORT_BYTES / 8 ? `${message.reason.slice(0, MAX_ABORT_BYTES / 8)}...` : message.reason;
    this.send(Op.ABORT, message.step, Buffer.from(JSON.stringify({ ...message, reason })));
  }

  /** Resolves when the kernel holds every frame written so far (or the connection is gone). */
  flushed(): Promise<void> {
    if (this.pendingWrites === 0 || this.socket.destroyed) return Promise.resolve();
    return new Promise((resolve) => this.flushWaiters.push(resolve));
  }

  private readonly afterWrite = (): void => {
    this.writeProgress = Date.now();
    if (--this.pendingWrites === 0) this.releaseFlushWaiters();
  };

  private releaseFlushWaiters(): void {
    const waiters = this.flushWaiters;
    this.flushWaiters = [];
    for (const resolve of waiters) resolve();
  }

  /** Closes the write side once everything queued is sent; arrivals are no longer failures. */
  end(): void {
    this.ended = true;
    this.consumer = undefined;
    if (!this.socket.destroyed) this.socket.end();
  }

  destroy(): void {
    this.ended = true;
    this.consumer = undefined;
    this.socket.destroy();
  }

  // ---- receiving -------------------------------------------------------------------------

  /** Installs the reader of the next in-band frames; frames that arrived early go first. */
  setConsumer(consumer: FrameConsumer): void {
    if (this.consumer) throw new Error(`two readers of the connection to ${this.label}`);
    if (this.discarding) return;
    this.consumer = consumer;
    this.consumerProgress = Date.now();
    try {
      while (this.queue.length > 0 && this.consumer) {
        const frame = this.queue.shift()!;
        this.queuedBytes -= frame.bytes;
        consumer.begin(frame.op, frame.step, frame.length);
        for (const part of frame.parts) consumer.data(part);
        if (!frame.complete) {
          // The rest of this frame is still arriving: it streams to the consumer.
          this.target = 'consumer';
          break;
        }
        if (consumer.end()) this.consumer = undefined;
      }
    } catch (error) {
      this.violate(error);
    }
    if (this.paused && this.queuedBytes < QUEUE_HIGH_WATER / 2) {
      this.paused = false;
      this.lastReceived = Date.now();
      this.socket.resume();
    }
  }

  /** The next frame, which must be `op` for `step`, whole. Never rejects: the owner races it. */
  nextMessage(op: Op, step: number): Promise<Buffer> {
    return new Promise((resolve) => {
      const parts: Buffer[] = [];
      this.setConsumer({
        begin: (got, gotStep) => {
          if (got !== op || gotStep !== step) throw desynchronised(this, op, step, got, gotStep);
        },
        data: (piece) => {
          parts.push(piece);
        },
        end: () => {
          resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
          return true;
        },
      });
    });
  }

  private receive(chunk: Buffer, transient = false): void {
    if (this.discarding) return;
    this.now = this.lastReceived = Date.now();
    this.transient = transient;
    try {
      this.parser.push(chunk);
    } catch (error) {
      this.violate(error);
    }
    this.transient = false;
  }

  /** `piece` as something that may be kept: a copy when the next read would overwrite it. */
  private keepable(piece: Buffer): Buffer {
    return this.transient ? Buffer.from(piece) : piece;
  }

  header(op: Op, step: number, length: number): void {
    if (isOutOfBand(op)) {
      this.target = 'oob';
      this.oobOp = op;
      this.oobParts.length = 0;
    } else if (this.consumer && this.queue.length === 0) {
      this.target = 'consumer';
      this.consumerProgress = this.now;
      this.consumer.begin(op, step, length);
    } else {
      this.target = 'queue';
      this.queue.push({ op, step, length, parts: [], bytes: 0, complete: false });
    }
  }

  payload(piece: Buffer): void {
    if (this.target === 'consumer') {
      this.consumerProgress = this.now;
      const consumer = this.consumer!;
      consumer.data(consumer.inPlace ? piece : this.keepable(piece));
    } else if (this.target === 'queue') {
      const frame = this.queue[this.queue.length - 1]!;
      frame.parts.push(this.keepable(piece));
      frame.bytes += piece.length;
      this.queuedBytes += piece.length;
      if (this.queuedBytes > QUEUE_HIGH_WATER && !this.paused) {
        this.paused = true;
        this.socket.pause();
      }
    } else {
      this.oobParts.push(this.keepable(piece));
    }
  }

  frameEnd(): void {
    const target = this.target;
    this.target = undefined;
    if (target === 'consumer') {
      if (this.consumer!.end()) this.consumer = undefined;
    } else if (target === 'queue') {
      this.queue[this.queue.length - 1]!.complete = true;
    } else {
      this.outOfBand();
    }
  }

  private outOfBand(): void {
    if (this.oobOp === Op.HEARTBEAT) return;
    if (this.oobOp === Op.GOODBYE) {
      this.saidGoodbye = true;
      this.events.goodbye(this);
      return;
    }
    let message: AbortMessage = { rank: this.peer, reason: 'aborted', step: -1 };
    try {
      const parsed = JSON.parse(Buffer.concat(this.oobParts).toString('utf8')) as Partial<AbortMessage>;
      if (Number.isSafeInteger(parsed.rank) && typeof parsed.reason === 'string' && Number.isSafeInteger(parsed.step)) message = parsed as AbortMessage;
    } catch {
      // An unreadable abort is still an abort, by this peer.
    }
    this.oobParts.length = 0;
    this.events.abort(this, message);
  }

  private violate(error: unknown): void {
    if (this.discarding) return;
    this.discarding = true;
    this.consumer = undefined;
    this.queue.length = 0;
    this.queuedBytes = 0;
    const violation = error instanceof ProtocolError ? error : new ProtocolError(`protocol violation by ${this.label}: ${(error as Error).message}`);
    this.events.violation(this, violation);
  }

  private lost(reason: string): void {
    if (this.reportedClosed) return;
    this.reportedClosed = true;
    this.consumer = undefined;
    if (this.ended || this.saidGoodbye || this.discarding) return;
    this.events.closed(this, reason);
  }
}

export function desynchronised(conn: Connection, op: Op, step: number, got: Op, gotStep: number): ProtocolError {
  return new ProtocolError(`desynchronised: expected ${opName(op)} for step ${step} from rank ${conn.peer}, got ${opName(got)} for step ${gotStep}`);
}
