/**
 * The shared memory of one run: parameters, one gradient slot per replica, the optimizer
 * state, the control block, the ring mailboxes and the per-replica statistics. The coordinator
 * allocates it; every replica maps the same buffers.
 *
 * The non-trainable weights (param-layout.ts) follow the parameters in the params buffer, and
 * each gradient slot has a region of the same size after the gradient, where a replica leaves
 * its step's change of them weighted by its sample count: the reduce-scatter that sums the
 * gradient sums those too (same collective, same fixed order), and the owner of a chunk of
 * that region adds the average change (replica.ts). The optimizer state covers the parameters only.
 */
import { ControlBlock } from '../collective/control-block.js';
import { maxChunkLength } from '../collective/ring.js';
import { allocateShmRing, type ShmRingBuffers } from '../collective/shm-transport.js';

export interface SharedTrainingBuffers {
  /** The parameters, then the non-trainable weights. */
  params: SharedArrayBuffer;
  /** Each as long as params: the gradient, then the change of the non-trainable weights. */
  gradSlots: SharedArrayBuffer[];
  optimizerState: SharedArrayBuffer[];
  control: SharedArrayBuffer;
  ring: ShmRingBuffers;
  /** Float64 rows of statsWidth(metrics), one per replica: see StatsColumn. */
  stats: SharedArrayBuffer;
  /** With other processes: the process bridge's buffer (params and non-trainable + 1 floats; process-bridge.ts). */
  bridge?: SharedArrayBuffer;
}

/**
 * Columns of a replica's statistics row. STEPS, SAMPLES, LOSS_SUM and the metric sums from
 * METRIC_SUMS on (one column per metric) count the current segment (runSteps call) for
 * progress: the coordinator adds a finished segment's sums to the epoch's and zeroes them in
 * the same turn of its event loop, so that the epoch's sums plus these are the epoch's so far.
 * SAMPLES and the sums leave out skipped steps, as the epoch's do. HEARTBEAT grows with every
 * unit of work of any call, so the coordinator can tell a slow replica from a stuck one;
 * IN_COLLECTIVE is 1 while the replica waits for others, so that when all stop beating the one
 * stuck in its own work can be named. GLOBAL_STEP is the update the replica is working on plus
 * one (0 outside runSteps), so that a failure can be placed: the same error at the same step
 * after a recovery is deterministic.
 */
export const StatsColumn = { STEPS: 0, SAMPLES: 1, LOSS_SUM: 2, HEARTBEAT: 3, IN_COLLECTIVE: 4, GLOBAL_STEP: 5, METRIC_SUMS: 6 } as const;

/** Columns of a statistics row with `metrics` metric sums. */
export function statsWidth(metrics: number): number {
  return StatsColumn.METRIC_SUMS + metrics;
}

export function allocateTrainingBuffers(paramCount: number, replicas: number, stateArrays: number, otherProcesses: boolean, metrics = 0, nonTrainableCount = 0): SharedTrainingBuffers {
  const reduced = paramCount + nonTrainableCount;
  const floats = (n: number) => () => new SharedArrayBuffer(Math.max(1, n) * 4);
  return {
    params: floats(reduced)(),
    gradSlots: Array.from({ length: replicas }, floats(reduced)),
    optimizerState: Array.from({ length: stateArrays }, floats(paramCount)),
    control: ControlBlock.allocate(replicas),
    ring: allocateShmRing(replicas, maxChunkLength(reduced, replicas)),
    stats: new SharedArrayBuffer(replicas * statsWidth(metrics) * 8),
    bridge: otherProcesses ? new SharedArrayBuffer((reduced + 1) * 4) : undefined,
  };
}

/** Typed views of the buffers, made once per thread. */
export class TrainingViews {
  readonly params: Float32Array;
  /** The non-trainable weights (BatchNormalization's moving statistics...), after the params. */
  readonly nonTrainable: Float32Array;
  /** Each: the gradient (params.length), then the non-trainable region (nonTrainable.length). */
  readonly gradSlots: Float32Array[];
  readonly optimizerState: Float32Array[];
  readonly stats: Float64Array;
  /** Columns of a statistics row (the buffer holds one row per gradient slot). */
  readonly statsWidth: number;

  constructor(buffers: SharedTrainingBuffers, paramCount: number, nonTrainableCount = 0) {
    const view = (b: SharedArrayBuffer) => new Float32Array(b, 0, paramCount);
    this.params = view(buffers.params);
    this.nonTrainable = new Float32Array(buffers.params, paramCount * 4, nonTrainableCount);
    this.gradSlots = buffers.gradSlots.map((b) => new Float32Array(b, 0, paramCount + nonTrainableCount));
    this.optimizerState = buffers.optimizerState.map(view);
    this.stats = new Float64Array(buffers.stats);
    this.statsWidth = this.stats.length / buffers.gradSlots.length;
  }

  statsRow(rank: number): Float64Array {
    return this.stats.subarray(rank * this.statsWidth, (rank + 1) * this.statsWidth);
  }

  /** Zeroes the per-segment counters and sums of every replica (not the heartbeats). */
  resetSegmentCounters(): void {
    for (let i = 0; i < this.stats.length; i += this.statsWidth) {
      this.stats.fill(0, i, i + StatsColumn.HEARTBEAT);
      this.stats.fill(0, i + StatsColumn.METRIC_SUMS, i + this.statsWidth);
    }
  }
}
