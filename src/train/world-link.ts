/**
 * The coordinator's side of a world of several processes: rendezvous with a fingerprint of
 * what must agree, the start-up broadcast of rank 0's state (as DDP broadcasts the module's
 * state at construction, so every process starts from the same bits whatever each one read),
 * serving the replicas' bridge rounds during a call, and combining per-process sums.
 *
 * Every process runs the same loop over the same segments, so the collective calls here are
 * made in the same order everywhere; the step carried by each frame checks it.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import { BridgeWord } from '../collective/control-block.js';
import { BridgeServer } from '../collective/process-bridge.js';
import { rendezvous, type ProcessGroup } from '../collective/tcp/group.js';
import type { RunConfig } from '../config/schema.js';
import { canonicalDataInfo } from '../data/data-info.js';
import { TrainingAbortedError } from '../errors.js';
import type { WorldSpec } from '../launch/world.js';
import { VERSION } from '../version.js';
import type { EvaluationSums } from './replica-protocol.js';
import type { ReplicaGroup } from './replica-group.js';
import type { PreparedRun } from './setup.js';
import type { TrainingViews } from './shared-state.js';

/** Where the world is, and the secret its processes share. */
export interface WorldOptions {
  spec: WorldSpec;
  /** Shared secret of the run (RINGTRAIN_TOKEN, or derived from the run id). */
  token: string;
}

interface ProcessInfo {
  replicas: number;
  host: string;
}

export class WorldLink {
  /** The group's failure, once known, and who waits for it now (not a race on `failed` per call: those would pile up). */
  private failure: Error | undefined;
  private readonly failureListeners = new Set<(error: Error) => void>();

  private constructor(
    readonly group: ProcessGroup,
    readonly spec: WorldSpec,
    /** World index of this process's first replica. */
    readonly replicaOffset: number,
    /** Replicas in all processes together. */
    readonly replicas: number,
  ) {
    group.failed.catch((error: Error) => {
      this.failure = error;
      for (const listener of this.failureListeners) listener(error);
    });
  }

  get rank(): number {
    return this.group.rank;
  }

  /** Forms the world; `signal` (a stop request) ends a rendezvous still waiting, closing its sockets. */
  static async join(world: WorldOptions, config: RunConfig, run: PreparedRun, log?: (line: string) => void, signal?: AbortSignal): Promise<WorldLink> {
    const { spec } = world;
    const info: ProcessInfo = { replicas: run.workers, host: hostname() };
    const group = await rendezvous({
      rank: spec.rank,
      size: spec.worldSize,
      masterAddr: spec.masterAddr,
      masterPort: spec.masterPort,
      token: world.token,
      fingerprint: runFingerprint(config, run, spec),
      info,
      timeoutMs: config.parallel.rendezvousTimeoutMs,
      stepTimeoutMs: config.parallel.stepTimeoutMs,
      log,
      signal,
    });
    const infos = group.infos as ProcessInfo[];
    const replicaOffset = infos.slice(0, spec.rank).reduce((n, p) => n + p.replicas, 0);
    const replicas = infos.reduce((n, p) => n + p.replicas, 0);
    return new WorldLink(group, spec, replicaOffset, replicas);
  }

  /** Rank 0's parameters, optimizer state and `runState` (JSON) become every process's. */
  async broadcastState<T>(views: TrainingViews, runState: T): Promise<T> {
    const step = -1;
    await this.group.broadcast(views.params, 0, step);
    if (views.nonTrainable.length > 0) await this.group.broadcast(views.nonTrainable, 0, step);
    for (const state of views.optimizerState) await this.group.broadcast(state, 0, step);
    const states = await this.group.exchange(this.rank === 0 ? runState : null, step);
    return states[0] as T;
  }

  /** Told of each all-reduce of a bridge round over the network (Unix ms), e.g. for a trace. */
  onNetworkRound: ((step: number, start: number, end: number) => void) | undefined;

  /**
   * Serves the replicas' bridge rounds while `call` runs. A failure of another process aborts
   * the local replicas and is raised as itself (naming that process); a local failure is told
   * to the other processes before it is raised.
   */
  async during<T>(replicas: ReplicaGroup, step: number, call: Promise<T>): Promise<T> {
    const bridge = replicas.buffers.bridge;
    if (!bridge) throw new Error('the replica group has no process bridge');
    let running = true;
    const observe = this.onNetworkRound;
    const network = observe
      ? {
          allReduce: async (buf: Float32Array, round: number) => {
            const start = performance.timeOrigin + performance.now();
            await this.group.allReduce(buf, round);
            observe(round, start, performance.timeOrigin + performance.now());
          },
        }
      : this.group;
    const server = new BridgeServer(replicas.control, bridge, replicas.replicas.length, network);
    const serving = server.serve(() => running);
    // The loser of the race below must not surface as an unhandled rejection.
    call.catch(() => undefined);
    serving.catch(() => undefined);
    const failed = this.whenFailed();
    try {
      return await Promise.race([call, serving.then(() => call), failed.promise]);
    } catch (error) {
      replicas.control.abort(-1);
      if (!isPeerFailure(error)) this.group.abort((error as Error).message, step);
      throw error;
    } finally {
      failed.dispose();
      running = false;
      // Wakes the server from its wait for a deposit, so it sees the end at once.
      Atomics.notify(replicas.control.words, BridgeWord.DEPOSITED);
      await serving.catch(() => undefined);
    }
  }

  /** Sums of every process, and whether any process asked to stop. */
  async combine(sums: EvaluationSums & { skippedSteps?: number }, stop: boolean, step: number): Promise<{ sums: EvaluationSums & { skippedSteps: number }; stop: boolean }> {
    // A failure of the group rejects the exchange itself.
    const all = await this.group.exchange<{ sums: EvaluationSums & { skippedSteps?: number }; stop: boolean }>({ sums, stop }, step);
    const total = { samples: 0, lossSum: 0, metricSums: sums.metricSums.map(() => 0), skippedSteps: 0 };
    for (const part of all) {
      total.samples += part.sums.samples;
      total.lossSum += part.sums.lossSum;
      part.sums.metricSums.forEach((v, i) => (total.metricSums[i]! += v));
    }
    // Every process skips the same steps (they see the same world gradient).
    total.skippedSteps = all[0]!.sums.skippedSteps ?? 0;
    return { sums: total, stop: all.some((p) => p.stop) };
  }

  /** Tells the other processes this one is failing (they stop at once, naming it). */
  abort(reason: string, step?: number): void {
    this.group.abort(reason, step);
  }

  async close(): Promise<void> {
    await this.group.close();
  }

  /** A promise that rejects when the group fails, until disposed. */
  private whenFailed(): { promise: Promise<never>; dispose: () => void } {
    let listener!: (error: Error) => void;
    const promise = new Promise<never>((_, reject) => (listener = reject));
    promise.catch(() => undefined);
    if (this.failure) listener(this.failure);
    else this.failureListeners.add(listener);
    return { promise, dispose: () => this.failureListeners.delete(listener) };
  }
}

export function isPeerFailure(error: unknown): boolean {
  return error instanceof TrainingAbortedError && error.name === 'PeerFailureError';
}

/**
 * What every process must agree on before any data moves: a mismatch would train different
 * models or different batches silently. Large items are hashed; the launcher's run id and
 * restart count keep a straggler of an earlier attempt out.
 */
export function runFingerprint(config: RunConfig, run: PreparedRun, spec: WorldSpec): Record<string, string | number> {
  const hash = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex').slice(0, 16);
  const { datasets } = run;
  return {
    ringtrainVersion: VERSION,
    parameterLayout: hash(run.layout.entries.map((e) => [e.name, e.shape])),
    nonTrainableLayout: hash(run.layout.nonTrainable.map((e) => [e.name, e.shape])),
    modelTopology: hash(run.topology),
    optimizer: JSON.stringify({ name: run.optimizer.name, ...run.optimizer.hyperParameters }),
    loss: JSON.stringify(config.loss),
    metrics: config.metrics.join(','),
    batchSize: config.training.batchSize,
    epochs: config.training.epochs,
    seed: config.training.seed,
    shuffle: String(config.training.shuffle),
    nonFinite: config.training.nonFinite,
    // Another k would reduce at other batches (a hang or desynchronised ring), other class weights train another model.
    accumulateSteps: config.training.accumulateSteps,
    classWeight: JSON.stringify(config.training.classWeight ?? {}),
    syncBatchNorm: String(config.parallel.syncBatchNorm),
    checkpointEverySteps: config.checkpoint.everySteps,
    datasetSizes: `train ${datasets.train?.size ?? 0}, validation ${datasets.validation?.size ?? 0}, test ${datasets.test?.size ?? 0}`,
    // Class ids and category indices come from each process's own files: they must mean the same.
    dataInfo: hash(canonicalDataInfo(run.dataInfo)),
    worldSize: spec.worldSize,
    runId: spec.runId,
    restartCount: spec.restartCount,
  };
}
