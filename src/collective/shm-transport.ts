/**
 * Point-to-point over shared memory between worker threads: one mailbox per ring edge
 * (rank r -> rank r+1). Empty messages are not sent: both ends skip them alike. A mailbox holds one message piece at a time; the sender waits until
 * the previous piece was consumed, the receiver until a new one was written.
 */
import type { ControlBlock } from './control-block.js';
import type { PointToPoint } from './transport.js';

export interface ShmRingBuffers {
  /** size mailboxes of `capacity` floats each; mailbox r receives from rank r-1. */
  mailboxes: SharedArrayBuffer;
  capacity: number;
}

export function allocateShmRing(size: number, capacity: number): ShmRingBuffers {
  const floats = Math.max(1, capacity);
  return { mailboxes: new SharedArrayBuffer(size * floats * 4), capacity: floats };
}

export class ShmRingTransport implements PointToPoint {
  private readonly inbox: Float32Array;
  private readonly outbox: Float32Array;
  private readonly next: number;
  private readonly prev: number;
  private sent = 0;
  private received = 0;

  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly control: ControlBlock,
    buffers: ShmRingBuffers,
  ) {
    const { capacity } = buffers;
    this.next = (rank + 1) % size;
    this.prev = (rank + size - 1) % size;
    this.inbox = new Float32Array(buffers.mailboxes, rank * capacity * 4, capacity);
    this.outbox = new Float32Array(buffers.mailboxes, this.next * capacity * 4, capacity);
  }

  send(peer: number, data: Float32Array): void {
    this.checkPeer(peer, this.next, 'send to');
    this.checkLength(data.length);
    const words = this.control.words;
    const seq = this.sent;
    const consumed = this.control.mailboxWord(this.next, 1);
    this.control.waitWhileEqual(consumed, seq - 1, `replica ${this.next} to take message ${seq - 1}`);
    this.outbox.set(data);
    this.sent = seq + 1;
    const written = this.control.mailboxWord(this.next, 0);
    Atomics.store(words, written, this.sent);
    Atomics.notify(words, written);
  }

  recvAdd(peer: number, into: Float32Array): void {
    this.receive(peer, into, true);
  }

  recv(peer: number, into: Float32Array): void {
    this.receive(peer, into, false);
  }

  private receive(peer: number, into: Float32Array, add: boolean): void {
    this.checkPeer(peer, this.prev, 'receive from');
    this.checkLength(into.length);
    const words = this.control.words;
    const seq = this.received;
    this.control.waitWhileEqual(this.control.mailboxWord(this.rank, 0), seq, `a message from replica ${this.prev}`);
    const inbox = this.inbox;
    const n = into.length;
    if (add) for (let i = 0; i < n; i++) into[i] = into[i]! + inbox[i]!;
    else into.set(inbox.subarray(0, n));
    this.received = seq + 1;
    const consumed = this.control.mailboxWord(this.rank, 1);
    Atomics.store(words, consumed, this.received);
    Atomics.notify(words, consumed);
  }

  private checkLength(length: number): void {
    if (length > this.inbox.length) {
      throw new RangeError(`message of ${length} floats exceeds the mailbox capacity of ${this.inbox.length}`);
    }
  }

  private checkPeer(peer: number, expected: number, verb: string): void {
    if (peer !== expected) {
      throw new Error(`shared-memory ring transport of rank ${this.rank} can only ${verb} rank ${expected}, not ${peer}`);
    }
  }
}
