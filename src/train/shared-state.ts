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
  /** Float64 rows of STATS_WIDTH, one per replica: see StatsColumn. */
  stats: SharedArrayBuffer;
  /** With other processes: the process bridge's buffer (params + 1 floats; process-bridge.ts). */
  bridge?: SharedArrayBuffer;
}

/**
 * Columns of a replica's statistics row. STEPS, SAMPLES and LOSS_SUM count the current epoch
 * (for progress); HEARTBEAT grows with every unit of work of any call, so the coordinator can
 * tell a slow replica from a stuck one; IN_COLLECTIVE is 1 while the replica waits for others,
 * so that when all stop beating the one stuck in its own work can be named. GLOBAL_STEP is the
 * update the replica is working on plus one (0 outside runSteps), so that a failure can be
 * placed: the same error at the same step after a recovery is deterministic.
 */
export const StatsColumn = { STEPS: 0, SAMPLES: 1, LOSS_SUM: 2, HEARTBEAT: 3, IN_COLLECTIVE: 4, GLOBAL_STEP: 5 } as const;
export const STATS_WIDTH = 6;

export function allocateTrainingBuffers(paramCount: number, replicas: number, stateArrays: number, otherProcesses: boolean): SharedTrainingBuffers {
  const floats = () => new SharedArrayBuffer(Math.max(1, paramCount) * 4);
  return {
    params: floats(),
    gradSlots: Array.from({ length: replicas }, floats),
    optimizerState: Array.from({ length: stateArrays }, floats),
    control: ControlBlock.allocate(replicas),
    ring: allocateShmRing(replicas, maxChunkLength(paramCount, replicas)),
    stats: new SharedArrayBuffer(replicas * STATS_WIDTH * 8),
    bridge: otherProcesses ? new SharedArrayBuffer((paramCount + 1) * 4) : undefined,
  };
}

/** Typed views of the buffers, made once per thread. */
export class TrainingViews {
  readonly params: Float32Array;
  readonly gradSlots: Float32Array[];
  readonly optimizerState: Float32Array[];
  readonly stats: Float64Array;

  constructor(buffers: SharedTrainingBuffers, paramCount: number) {
    const view = (b: SharedArrayBuffer) => new Float32Array(b, 0, paramCount);
    this.params = view(buffers.params);
    this.gradSlots = buffers.gradSlots.map(view);
    this.optimizerState = buffers.optimizerState.map(view);
    this.stats = new Float64Array(buffers.stats);
  }

  statsRow(rank: number): Float64Array {
    return this.stats.subarray(rank * STATS_WIDTH, (rank + 1) * STATS_WIDTH);
  }

  /** Zeroes the per-epoch counters of every replica (not the heartbeats). */
  resetEpochCounters(): void {
    for (let i = 0; i < this.stats.length; i += STATS_WIDTH) this.stats.fill(0, i, i + StatsColumn.HEARTBEAT);
  }
}
