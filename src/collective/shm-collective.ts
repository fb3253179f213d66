/**
 * The collective of the worker threads of one process, over shared memory: the ring (through
 * per-edge mailboxes, see shm-transport.ts) or a direct read of every replica's gradient slot.
 * Parameters live in shared memory, so after each replica updates its chunk a barrier is all
 * the all-gather of parameters needs; allGather proper is for buffers that are not shared.
 */
import type { Collective } from './collective.js';
import type { ControlBlock } from './control-block.js';
import { chunkRange, directReduceScatter, ringAllGather, ringReduceScatter } from './ring.js';
import { ShmRingTransport, type ShmRingBuffers } from './shm-transport.js';

export type ReduceScatterKind = 'ring' | 'direct';

export class ShmCollective implements Collective {
  private readonly transport: ShmRingTransport;

  constructor(
    readonly rank: number,
    readonly size: number,
    private readonly control: ControlBlock,
    ring: ShmRingBuffers,
    /** 'direct' reads every slot in place: `slots[rank]` must be the buffer reduced. */
    private readonly kind: ReduceScatterKind,
    private readonly slots: readonly Float32Array[],
  ) {
    this.transport = new ShmRingTransport(rank, size, control, ring);
  }

  reduceScatter(buf: Float32Array, _step: number): [number, number] {
    // Direct reads the gradient slots in place; any other buffer (a small all-reduce) goes round the ring.
    if (this.kind === 'direct' && buf === this.slots[this.rank]) {
      this.control.barrier(this.size, 'gradient barrier');
      directReduceScatter(this.slots, this.rank);
    } else {
      ringReduceScatter(this.transport, buf);
    }
    return chunkRange(buf.length, this.size, this.rank);
  }

  allGather(buf: Float32Array, _step: number): void {
    ringAllGather(this.transport, buf);
  }

  allReduce(buf: Float32Array, step: number): void {
    this.reduceScatter(buf, step);
    this.allGather(buf, step);
  }

  any(flag: boolean, step: number): boolean {
    if (flag) this.control.markNonFinite(step);
    this.control.barrier(this.size, 'flag agreement');
    return this.control.isNonFinite(step);
  }

  barrier(what: string): void {
    this.control.barrier(this.size, what);
  }

  abort(): void {
    this.control.abort(this.rank);
  }
}
