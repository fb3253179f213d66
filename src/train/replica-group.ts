/**
 * One incarnation of the run's replicas: the shared buffers, the control block, the piscina
 * pool and a comlink handle per replica. After a replica failure the coordinator ends the
 * group (every thread) and may start a new one from its last consistent state.
 */
import { MessageChannel } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import { Piscina } from 'piscina';
import { ControlBlock } from '../collective/control-block.js';
import { compiledModuleUrl } from '../util/compiled-url.js';
import type { ReplicaApi } from './replica-protocol.js';
import { allocateTrainingBuffers, TrainingViews, type SharedTrainingBuffers } from './shared-state.js';

export interface ReplicaHandle {
  api: Comlink.Remote<ReplicaApi>;
  /** Settles when the replica's piscina task ends; rejects if its thread dies. */
  task: Promise<void>;
}

export class ReplicaGroup {
  private ended = false;

  private constructor(
    readonly buffers: SharedTrainingBuffers,
    readonly views: TrainingViews,
    readonly control: ControlBlock,
    private readonly pool: Piscina,
    readonly replicas: ReplicaHandle[],
  ) {}

  /** Allocates the shared memory and starts one thread per replica (not yet initialised). */
  static start(workers: number, paramCount: number, stateArrays: number, timeoutMs: number, otherProcesses = false, metrics = 0, nonTrainableCount = 0): ReplicaGroup {
    const buffers = allocateTrainingBuffers(paramCount, workers, stateArrays, otherProcesses, metrics, nonTrainableCount);
    const pool = new Piscina({
      filename: compiledModuleUrl(import.meta.url, './replica.js').href,
      minThreads: workers,
      maxThreads: workers,
      concurrentTasksPerWorker: 1,
      idleTimeout: Number.POSITIVE_INFINITY,
      // Replicas serve comlink calls during their task; piscina must not block their event loop.
      atomics: 'disabled',
    });
    const replicas = Array.from({ length: workers }, () => startReplica(pool));
    return new ReplicaGroup(buffers, new TrainingViews(buffers, paramCount, nonTrainableCount), new ControlBlock(buffers.control, timeoutMs), pool, replicas);
  }

  /** Ends every thread: politely when nothing failed, at once after an abort. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    // After an abort a replica may be stuck for good: end the threads without asking.
    if (!this.control.aborted) {
      await Promise.allSettled(this.replicas.map((r) => withDeadline(r.api.close(), 5_000, 'closing a replica')));
    }
    await this.pool.destroy();
  }
}

function startReplica(pool: Piscina): ReplicaHandle {
  const { port1, port2 } = new MessageChannel();
  const task = pool.run({ port: port2 }, { transferList: [port2] }) as Promise<void>;
  // The race in the trainer's callAll observes failures; this keeps an unobserved rejection from crashing.
  task.catch(() => undefined);
  return { api: Comlink.wrap<ReplicaApi>(nodeEndpoint(port1)), task };
}

export function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
