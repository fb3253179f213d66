/**
 * Two levels composed: the threads of a process reduce-scatter in shared memory, then each
 * replica's reduced chunk is all-reduced with the same chunk of every other process (through
 * the process bridge and the main thread's network group), so every process ends with the
 * world's sum and applies the same update to its own copy of the parameters.
 *
 * Reduction order of an element: the fixed in-process order (ring.ts), then the fixed
 * cross-process order (tcp/ring-allreduce.ts); fixed for a given world, so runs repeat bitwise.
 */
import type { Collective } from './collective.js';
import type { BridgeClient } from './process-bridge.js';

export class HierarchicalCollective implements Collective {
  constructor(
    private readonly local: Collective,
    private readonly bridge: BridgeClient,
  ) {}

  get rank(): number {
    return this.local.rank;
  }

  get size(): number {
    return this.local.size;
  }

  reduceScatter(buf: Float32Array, step: number): [number, number] {
    const [from, to] = this.local.reduceScatter(buf, step);
    this.bridge.allReduceRange(buf, from, to, buf.length, step, false);
    return [from, to];
  }

  allGather(buf: Float32Array, step: number): void {
    // After reduceScatter every process holds every chunk: gathering inside it is enough.
    this.local.allGather(buf, step);
  }

  allReduce(buf: Float32Array, step: number): void {
    this.reduceScatter(buf, step);
    this.allGather(buf, step);
  }

  any(flag: boolean, step: number): boolean {
    const local = this.local.any(flag, step);
    const empty = new Float32Array(0);
    // One deposit per replica; the flags of a process count once per replica that raised one.
    return this.bridge.allReduceRange(empty, 0, 0, 0, step, local && this.rank === 0);
  }

  barrier(what: string): void {
    this.local.barrier(what);
  }

  abort(): void {
    this.local.abort();
  }
}
