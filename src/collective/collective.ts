/**
 * What a replica calls during a step, whatever runs underneath: the threads of one process
 * (shm-collective.ts), or those threads composed with a network between processes
 * (hierarchical.ts). Buffers are flat Float32Arrays cut into chunks by chunkRange; a step
 * number travels with every operation so that a desynchronised peer is an error, not a sum.
 */
export interface Collective {
  /** This replica's place among the replicas that share its memory. */
  readonly rank: number;
  readonly size: number;
  /**
   * Sums `buf` over every replica of the world; afterwards the returned range [from, to) of
   * `buf` (this replica's chunk) holds the sum. Every element's reduction order is fixed.
   */
  reduceScatter(buf: Float32Array, step: number): [number, number];
  /** From each replica's own chunk valid, leaves every chunk valid on every replica. */
  allGather(buf: Float32Array, step: number): void;
  /** reduceScatter then allGather. */
  allReduce(buf: Float32Array, step: number): void;
  /** Whether any replica of the world passed true: every replica gets the same answer. */
  any(flag: boolean, step: number): boolean;
  /** Every replica of this process has arrived (the parameters they share are consistent). */
  barrier(what: string): void;
  /** Releases every replica waiting in any operation with an error naming this one. */
  abort(): void;
}
