/**
 * A framed connection: parses the frames a socket delivers (bounds checked on the header, see
 * frame.ts) into a queue, and hands them out with `next(op, step)`, which waits with a deadline
 * and treats a frame of another operation or step as desynchronisation, never as data. Data
 * payloads land in a fresh ArrayBuffer, so they can be read as aligned Float32Arrays.
 */
import type { Socket } from 'node:net';
import { decodeHeader, encodeHeader, HEADER_BYTES, opName, type FrameHeader, type OpCode } from './frame.js';

export interface Frame extends FrameHeader {
  payload: Uint8Array;
}

export class ConnectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionError';
  }
}

export class FramedConnection {
  private readonly queue: Frame[] = [];
  private waiter: { resolve: (frame: Frame) => void; reject: (error: Error) => void } | undefined;
  private header = Buffer.alloc(HEADER_BYTES);
  private headerFilled = 0;
  private current: { header: FrameHeader; payload: Uint8Array; filled: number } | undefined;
  private failure: Error | undefined;
  private sendSeq = 0;
  /** Set when the peer said goodbye: its end of the stream is then no failure. */
  saidBye = false;
  /** Called with every frame that nobody awaits by operation (heartbeats, aborts, byes). */
  onControl: ((frame: Frame) => boolean) | undefined;
  /** Called once when the connection fails or the peer closes it without a goodbye. */
  onFailure: ((error: Error) => void) | undefined;

  constructor(
    readonly socket: Socket,
    /** Who is at the other end, for messages (`rank 1 (10.0.0.2)`). */
    public peer: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', (error) => this.fail(new ConnectionError(`connection to ${this.peer}: ${error.message}`)));
    socket.on('close', () => {
      if (!this.saidBye) this.fail(new ConnectionError(`connection to ${this.peer} closed`));
    });
  }

  send(op: OpCode, step: number, payload: Uint8Array = new Uint8Array(0)): void {
    if (this.failure || this.socket.destroyed) return;
    this.socket.write(encodeHeader(op, step, this.sendSeq++, payload.byteLength));
    if (payload.byteLength > 0) this.socket.write(payload);
  }

  sendJson(op: OpCode, step: number, value: unknown): void {
    this.send(op, step, Buffer.from(JSON.stringify(value)));
  }

  /** Bytes queued in this process for the peer (for callers that want to pace themselves). */
  get pendingBytes(): number {
    return this.socket.writableLength;
  }

  /**
   * The next frame, which must be `op` for `step`; rejects after `timeoutMs`, on failure, or on
   * a frame of another operation or step (naming both).
   */
  next(op: OpCode, step: number, timeoutMs: number, what: string): Promise<Frame> {
    if (this.failure) return Promise.reject(this.failure);
    const check = (frame: Frame): Frame => {
      if (frame.op !== op || frame.step !== step) {
        throw new ConnectionError(`desynchronised: expected ${opName(op)} for step ${step} from ${this.peer}, got ${opName(frame.op)} for step ${frame.step}`);
      }
      return frame;
    };
    const queued = this.queue.shift();
    if (queued) {
      try {
        return Promise.resolve(check(queued));
      } catch (error) {
        this.fail(error as Error);
        return Promise.reject(error);
      }
    }
    if (this.waiter) return Promise.reject(new Error(`two readers of one connection to ${this.peer}`));
    return new Promise<Frame>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = undefined;
        reject(new ConnectionError(`no ${what} from ${this.peer} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiter = {
        resolve: (frame) => {
          clearTimeout(timer);
          this.waiter = undefined;
          try {
            resolve(check(frame));
          } catch (error) {
            this.fail(error as Error);
            reject(error);
          }
        },
        reject: (error) => {
          clearTimeout(timer);
          this.waiter = undefined;
          reject(error);
        },
      };
    });
  }

  nextJson<T>(op: OpCode, step: number, timeoutMs: number, what: string): Promise<T> {
    return this.next(op, step, timeoutMs, what).then((frame) => {
      try {
        return JSON.parse(Buffer.from(frame.payload).toString('utf8')) as T;
      } catch {
        throw new ConnectionError(`protocol violation: ${opName(op)} from ${this.peer} is not JSON`);
      }
    });
  }

  /** Ends the connection for good; later frames are dropped. */
  fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.waiter?.reject(error);
    this.socket.destroy();
    this.onFailure?.(error);
  }

  /** Says goodbye and closes the stream once what was written is sent. */
  end(): void {
    this.saidBye = true;
    this.socket.end();
  }

  private receive(chunk: Buffer): void {
    let offset = 0;
    while (offset < chunk.length && !this.failure) {
      if (!this.current) {
        const take = Math.min(HEADER_BYTES - this.headerFilled, chunk.length - offset);
        chunk.copy(this.header, this.headerFilled, offset, offset + take);
        this.headerFilled += take;
        offset += take;
        if (this.headerFilled < HEADER_BYTES) return;
        this.headerFilled = 0;
        let header: FrameHeader;
        try {
          header = decodeHeader(this.header);
        } catch (error) {
          this.fail(new ConnectionError(`${(error as Error).message} (from ${this.peer})`));
          return;
        }
        this.current = { header, payload: new Uint8Array(new ArrayBuffer(header.length)), filled: 0 };
      }
      const frame = this.current;
      const take = Math.min(frame.header.length - frame.filled, chunk.length - offset);
      frame.payload.set(chunk.subarray(offset, offset + take), frame.filled);
      frame.filled += take;
      offset += take;
      if (frame.filled === frame.header.length) {
        this.current = undefined;
        this.deliver({ ...frame.header, payload: frame.payload });
      }
    }
  }

  private deliver(frame: Frame): void {
    if (this.onControl?.(frame)) return;
    if (this.waiter) this.waiter.resolve(frame);
    else this.queue.push(frame);
  }
}
