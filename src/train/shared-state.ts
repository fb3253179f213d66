/**
 * The shared memory of one run: parameters, one gradient slot per replica, the optimizer
 * state, the control block, the ring mailboxes and the per-replica statistics. The coordinator
 * allocates it; every replica maps the same buffers.
 */
import { ControlBlock } from '../collective/control-block.js';
import { maxChunkLength } from '../collective/ring.js';
import { allocateShmRing, type ShmRingBuffers } from '../collective/shm-transport.js';

export interface SharedTrainingBuffers {
  params: SharedArrayBuffer;
  gradSlots: SharedArrayBuffer[];
  optimizerState: SharedArrayBuffer[];
  control: SharedArrayBuffer;
  ring: ShmRingBuffers;
  /** Float64 rows, one per replica: see StatsColumn. */
  stats: SharedArrayBuffer;
}

/** Columns of a replica's statistics row; metric sums follow from METRICS on. */
export const StatsColumn = { STEPS: 0, SAMPLES: 1, LOSS_SUM: 2, METRICS: 3 } as const;

export function statsWidth(metrics: number): number {
  return StatsColumn.METRICS + metrics;
}

export function allocateTrainingBuffers(paramCount: number, replicas: number, stateArrays: number, metrics: number): SharedTrainingBuffers {
  const floats = () => new SharedArrayBuffer(Math.max(1, paramCount) * 4);
  return {
    params: floats(),
    gradSlots: Array.from({ length: replicas }, floats),
    optimizerState: Array.from({ length: stateArrays }, floats),
    control: ControlBlock.allocate(replicas),
    ring: allocateShmRing(replicas, maxChunkLength(paramCount, replicas)),
    stats: new SharedArrayBuffer(replicas * statsWidth(metrics) * 8),
  };
}

/** Typed views of the buffers, made once per thread. */
export class TrainingViews {
  readonly params: Float32Array;
  readonly gradSlots: Float32Array[];
  readonly optimizerState: Float32Array[];
  readonly stats: Float64Array;

  constructor(buffers: SharedTrainingBuffers, paramCount: number, readonly metrics: number) {
    const view = (b: SharedArrayBuffer) => new Float32Array(b, 0, paramCount);
    this.params = view(buffers.params);
    this.gradSlots = buffers.gradSlots.map(view);
    this.optimizerState = buffers.optimizerState.map(view);
    this.stats = new Float64Array(buffers.stats);
  }

  statsRow(rank: number): Float64Array {
    const width = statsWidth(this.metrics);
    return this.stats.subarray(rank * width, (rank + 1) * width);
  }
}
