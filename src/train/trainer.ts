/**
 * The coordinator: the public face of a run (create, fit, stop, evaluate, predict, close) and
 * its epoch loop. Set-up is in setup.ts, the fan-out of calls to replicas in fan-out.ts, the
 * run's position and its capture and restore in run-state.ts, checkpoint timing in
 * checkpointing.ts and in-process recovery in recovery.ts.
 */
import { availableParallelism } from 'node:os';
import type * as Comlink from 'comlink';
import type { BackendName } from '../backend/select-backend.js';
import type { RunConfig } from '../config/schema.js';
import { createSharedDataset, product, type SharedDataset } from '../data/dataset.js';
import type { LoadedData } from '../data/load-data.js';
import { stepsPerEpoch } from '../data/sampler.js';
import { TrainingAbortedError, UserError } from '../errors.js';
import type { ParamLayout } from '../model/param-layout.js';
import { assertResumable, assertWarmStartable } from '../checkpoint/resume.js';
import type { CheckpointState } from '../checkpoint/state.js';
import { CheckpointStore } from '../checkpoint/store.js';
import type { ShardOptimizer } from '../optim/optimizer.js';
import { CheckpointSchedule } from './checkpointing.js';
import type { EpochEvent, MetricValues, TrainingEvent } from './events.js';
import { callAll } from './fan-out.js';
import { Recovery } from './recovery.js';
import type { DatasetRole, ReduceScatterKind, ReplicaApi, ReplicaInit, StepsResult } from './replica-protocol.js';
import { ReplicaGroup } from './replica-group.js';
import { averageTimes, RunState, sumResults, sumTimes, type EpochProgress } from './run-state.js';
import { prepareRun, type RunDatasets } from './setup.js';
import { StatsColumn, type TrainingViews } from './shared-state.js';

export interface TrainerOptions {
  /** Data already loaded (otherwise loaded from config.data). */
  data?: LoadedData;
  /** Overrides config.data.dir. */
  dataDir?: string;
  /** Start from these parameters instead of the seeded initialisation. */
  initialParams?: Float32Array;
  reduceScatter?: ReduceScatterKind;
  onEvent?: (event: TrainingEvent) => void;
  log?: (line: string) => void;
  /** How often progress is read from the replicas' counters. */
  progressIntervalMs?: number;
  /** Continue from this checkpoint (read and verified); `file` names it in messages. */
  resume?: { file: string; state: CheckpointState };
  /** Start a new run from the weights of this checkpoint alone. */
  warmStart?: { file: string; state: CheckpointState };
  /** Write checkpoints as config.checkpoint says (the CLI turns this on). */
  checkpoints?: boolean;
  /** Asks fit() to stop at the next step boundary (as stop() does), e.g. on SIGINT. */
  signal?: AbortSignal;
  /**
   * Test-only: make replica `rank` throw, spin forever, exit or see a NaN gradient at global
   * batch `step`; `failRestart` makes that rank fail to start again after a failure.
   */
  faults?: { rank: number; throwAtStep?: number; hangAtStep?: number; nanAtStep?: number; exitAtStep?: number; persistent?: boolean; failRestart?: boolean };
}

export interface Evaluation {
  samples: number;
  loss: number;
  metrics: MetricValues;
}

const EVALUATION_BATCH = 256;
const INIT_TIMEOUT_MS = 120_000;

/** Global batches per runSteps call: keeps stop requests and checkpoints within reach. */
const SEGMENT_STEPS = 64;

export class Trainer {
  private readonly state: RunState;
  private readonly checkpoints: CheckpointSchedule;
  private readonly recovery: Recovery;
  private closed = false;
  private stopRequested = false;

  private constructor(
    readonly config: RunConfig,
    /** Replicas now: fewer than asked for after a recovery that could not restart them all. */
    public workers: number,
    readonly backend: BackendName,
    readonly layout: ParamLayout,
    readonly datasets: RunDatasets,
    private readonly outputSize: number,
    private readonly topology: object,
    private readonly optimizer: ShardOptimizer,
    private group: ReplicaGroup | undefined,
    private readonly options: TrainerOptions,
  ) {
    this.state = new RunState(config.metrics.length);
    const store = options.checkpoints ? new CheckpointStore(config.checkpoint.dir, { keepLast: config.checkpoint.keepLast }) : undefined;
    this.checkpoints = new CheckpointSchedule(config, store);
    this.recovery = new Recovery(config.parallel.maxRecoveries);
  }

  static async create(config: RunConfig, options: TrainerOptions = {}): Promise<Trainer> {
    const run = await prepareRun(config, options);
    if (options.resume) assertResumable(options.resume.file, options.resume.state, config, run.layout, run.optimizer);
    if (options.warmStart) assertWarmStartable(options.warmStart.file, options.warmStart.state, run.layout);
    const trainer = new Trainer(config, run.workers, run.backend, run.layout, run.datasets, run.outputSize, run.topology, run.optimizer, undefined, options);
    options.signal?.addEventListener('abort', () => trainer.stop(), { once: true });
    await trainer.startReplicas((views) => {
      views.params.set(options.warmStart?.state.params ?? run.initialParams);
      if (options.resume) trainer.restore(options.resume.state, views);
    });
    return trainer;
  }

  /** Epoch records of the run so far (including those of a resumed checkpoint). */
  get history(): EpochEvent[] {
    return this.state.history;
  }

  /** The next step to run is step `stepInEpoch` of epoch `epoch` (both from 0). */
  get position(): { readonly epoch: number; readonly stepInEpoch: number } {
    return this.state.position;
  }

  /** Replica groups restarted after failures so far. */
  get recoveries(): number {
    return this.recovery.attempts;
  }

  /** Paths of the checkpoints this trainer wrote, oldest first. */
  get checkpointsWritten(): readonly string[] {
    return this.checkpoints.written;
  }

  /** Starts a fresh group of replicas; `fill` writes the state they start from. */
  private async startReplicas(fill: (views: TrainingViews) => void): Promise<void> {
    const group = ReplicaGroup.start(this.workers, this.layout.length, this.optimizer.stateNames.length, this.config.parallel.stepTimeoutMs);
    fill(group.views);
    this.group = group;
    // Starting a thread and its backend takes seconds, more than a step may.
    const initTimeoutMs = Math.max(this.config.parallel.stepTimeoutMs, INIT_TIMEOUT_MS);
    await this.callAll('initialising replicas', (api, rank) => api.init(this.replicaInit(rank)), initTimeoutMs);
  }

  private get live(): ReplicaGroup {
    if (!this.group) throw new Error(this.closed ? 'the trainer is closed' : 'the replicas failed and were not restarted');
    return this.group;
  }

  private replicaInit(rank: number): ReplicaInit {
    const { config } = this;
    return {
      rank,
      replicas: this.workers,
      backend: this.backend,
      model: config.model,
      seed: config.training.seed,
      loss: config.loss,
      metrics: config.metrics,
      optimizer: config.optimizer,
      batchSize: config.training.batchSize,
      shuffle: config.training.shuffle,
      layout: [...this.layout.entries],
      buffers: this.live.buffers,
      datasets: this.datasets,
      reduceScatter: this.options.reduceScatter ?? 'ring',
      // A backstop: the coordinator's watchdog (stepTimeoutMs) sees every heartbeat and names
      // the stuck replica, where a replica's own wait would only name its ring neighbour.
      timeoutMs: 2 * config.parallel.stepTimeoutMs,
      spinMicros: this.workers <= availableParallelism() ? 200 : 0,
      nonFinite: config.training.nonFinite,
      faults: this.injectedFaults(rank),
    };
  }

  /** Injected faults strike the first incarnation only, unless persistent; failRestart strikes later ones. */
  private injectedFaults(rank: number): ReplicaInit['faults'] {
    const faults = this.options.faults;
    if (faults?.rank !== rank) return undefined;
    if (this.recovery.attempts === 0 || faults.persistent) return faults;
    return faults.failRestart ? { failInit: true } : undefined;
  }

  get stepsPerEpoch(): number {
    return stepsPerEpoch(this.datasets.train!.size, this.config.training.batchSize);
  }

  /**
   * Trains until config.training.epochs epochs are done (or `epochs` more), evaluating after
   * each, writing checkpoints as configured. Returns the epochs it finished. After `stop()`
   * it returns at the next step boundary, with a checkpoint there when checkpoints are on.
   */
  async fit(epochs?: number): Promise<EpochEvent[]> {
    const end = epochs === undefined ? this.config.training.epochs : this.state.position.epoch + epochs;
    this.emit({
      type: 'start',
      name: this.config.name,
      workers: this.workers,
      backend: this.backend,
      epochs: end,
      stepsPerEpoch: this.stepsPerEpoch,
      trainSamples: this.datasets.train!.size,
      validationSamples: this.datasets.validation?.size ?? 0,
      parameters: this.layout.length,
    });
    const first = this.state.history.length;
    this.keepRecoveryPoint();
    while (this.state.position.epoch < end && !this.stopRequested) await this.runEpoch(end);
    if (this.checkpoints.lastStep !== this.state.updates) this.checkpoint();
    await this.checkpoints.flush();
    return this.state.history.slice(first);
  }

  /** Asks fit() to return at the next step boundary (after a checkpoint, when they are on). */
  stop(): void {
    this.stopRequested = true;
  }

  get stopped(): boolean {
    return this.stopRequested;
  }

  private async runEpoch(epochs: number): Promise<void> {
    const { state } = this;
    const steps = this.stepsPerEpoch;
    const epoch = state.position.epoch;
    state.epochProgress ??= state.freshEpochProgress();
    this.live.views.resetEpochCounters();
    let stopReporting = this.reportProgress(epoch, state.position.stepInEpoch, steps, state.epochProgress);
    try {
      while (state.position.stepInEpoch < steps) {
        const progress = state.epochProgress;
        const fromStep = state.position.stepInEpoch;
        const toStep = this.checkpoints.limitSegment(fromStep, Math.min(steps, fromStep + SEGMENT_STEPS), state.updates);
        const started = performance.now();
        let results: StepsResult[];
        try {
          results = await this.callAll(`epoch ${epoch + 1}`, (api) => api.runSteps({ epoch, fromStep, toStep, updatesBefore: state.updates }));
        } catch (error) {
          stopReporting();
          await this.recover(error as Error, epoch, fromStep, toStep);
          state.epochProgress ??= state.freshEpochProgress();
          this.live.views.resetEpochCounters();
          stopReporting = this.reportProgress(epoch, state.position.stepInEpoch, steps, state.epochProgress);
          continue;
        }
        const sums = sumResults(results);
        progress.seconds += (performance.now() - started) / 1000;
        progress.samples += sums.samples;
        // Every replica counts the same skipped steps.
        progress.skippedSteps += results[0]!.skippedSteps;
        progress.lossSum += sums.lossSum;
        sums.metricSums.forEach((v, i) => (progress.metricSums[i]! += v));
        progress.times.push(averageTimes(results.map((r) => r.times)));
        state.updates += toStep - fromStep;
        state.samplesSeen += sums.samples;
        state.position.stepInEpoch = toStep;
        if (toStep < steps && (this.stopRequested || this.checkpoints.due(state.updates))) this.checkpoint();
        if (this.stopRequested && toStep < steps) return;
        this.keepRecoveryPoint();
      }
    } finally {
      stopReporting();
    }
    const progress = state.epochProgress;
    const validation = this.datasets.validation ? await this.evaluate('validation') : undefined;
    const event: EpochEvent = {
      type: 'epoch',
      epoch: epoch + 1,
      epochs,
      steps,
      samples: progress.samples,
      seconds: progress.seconds,
      samplesPerSec: progress.samples / progress.seconds,
      loss: progress.lossSum / progress.samples,
      metrics: this.metricValues(progress.metricSums, progress.samples),
      validation: validation && { loss: validation.loss, metrics: validation.metrics },
      phaseTimes: sumTimes(progress.times),
      skippedSteps: progress.skippedSteps,
    };
    state.history.push(event);
    state.epochProgress = undefined;
    state.position.epoch = epoch + 1;
    state.position.stepInEpoch = 0;
    this.emit(event);
    if (this.config.checkpoint.everyEpoch || this.checkpoints.due(state.updates)) this.checkpoint(event);
    this.keepRecoveryPoint();
  }

  private keepRecoveryPoint(): void {
    this.recovery.keep(() => this.captureState());
  }

  /** After a replica failure: start fresh replicas from the recovery point, or give up. */
  private async recover(error: Error, epoch: number, fromStep: number, toStep: number): Promise<void> {
    const point = this.recovery.lastConsistentState;
    if (this.closed || this.stopRequested || !this.recovery.mayRecover(error)) {
      if (point && this.checkpoints.store && this.checkpoints.lastStep !== point.position.globalStep) {
        // Leave a checkpoint to resume from: the last consistent state.
        this.checkpoints.write(() => point);
        await this.checkpoints.flush().catch(() => undefined);
      }
      await this.close();
      throw this.recovery.finalError(error);
    }
    this.recovery.attempts++;
    const started = performance.now();
    // Replicas that cannot be started again (a thread or backend that fails to come up) leave
    // the run with fewer: the global batches stay the same, so does the result (up to rounding).
    for (;;) {
      try {
        await this.startReplicas((views) => this.restore(point!, views));
        break;
      } catch (startError) {
        if (this.workers === 1 || startError instanceof UserError) {
          await this.close();
          throw new TrainingAbortedError(`${error.message}; restarting the replicas failed: ${(startError as Error).message}`, { cause: startError });
        }
        this.workers--;
      }
    }
    this.emit({
      type: 'recovery',
      attempt: this.recovery.attempts,
      of: this.config.parallel.maxRecoveries,
      error: error.message,
      failedDuring: { epoch: epoch + 1, fromStep, toStep },
      resumedAt: { epoch: this.state.position.epoch + 1, step: this.state.position.stepInEpoch },
      replicas: this.workers,
      seconds: (performance.now() - started) / 1000,
    });
  }

  private checkpoint(epoch?: EpochEvent): void {
    this.checkpoints.write(() => this.captureState(), epoch);
  }

  /** Waits for the checkpoints being written; throws the first write error. */
  async flushCheckpoints(): Promise<void> {
    await this.checkpoints.flush();
  }

  /** The run's whole state, copied out of shared memory (the one copy a checkpoint costs). */
  captureState(): CheckpointState {
    const { config, topology, layout, optimizer } = this;
    return this.state.capture({ config, topology, layout, optimizer, replicas: this.workers }, this.live.views);
  }

  /** Takes over a checkpoint's parameters, optimizer state, position and history. */
  private restore(saved: CheckpointState, views: TrainingViews): void {
    this.state.restore(saved, this.optimizer, views);
    this.checkpoints.lastStep = saved.position.globalStep;
  }

  /** Loss and metrics of the current parameters on one of the run's datasets, sharded. */
  async evaluate(role: DatasetRole): Promise<Evaluation> {
    if (!this.datasets[role]) throw new UserError(`this run has no ${role} data to evaluate on`);
    const parts = await this.callAll(`evaluating on ${role} data`, (api) => api.evaluate({ dataset: role, batchSize: EVALUATION_BATCH }));
    const sums = sumResults(parts);
    return { samples: sums.samples, loss: sums.lossSum / sums.samples, metrics: this.metricValues(sums.metricSums, sums.samples) };
  }

  /** Model outputs for `count` samples of `features` (count * product(featureShape) floats). */
  async predict(features: Float32Array): Promise<Float32Array> {
    const train = this.datasets.train!;
    const perSample = product(train.featureShape);
    if (features.length % perSample !== 0) {
      throw new UserError(`predict: ${features.length} values are not a whole number of samples of shape [${train.featureShape.join(', ')}]`);
    }
    const count = features.length / perSample;
    const inputs = createSharedDataset({ name: 'predict', featureShape: train.featureShape, labelShape: [], features, labels: new Float32Array(count) });
    const outputs = new SharedArrayBuffer(Math.max(1, count * this.outputSize) * 4);
    await this.callAll('predicting', (api) => api.predict({ inputs, outputs, outputSize: this.outputSize, batchSize: EVALUATION_BATCH }));
    return new Float32Array(outputs, 0, count * this.outputSize).slice();
  }

  /** Live TensorFlow.js tensors in each replica's thread. */
  async tensorCounts(): Promise<number[]> {
    return this.callAll('counting tensors', (api) => api.tensorCount());
  }

  /** A copy of the current flat parameters. */
  params(): Float32Array {
    return this.live.views.params.slice();
  }

  namedParams(): { name: string; shape: number[]; values: number[] }[] {
    return this.layout.named(this.live.views.params);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const group = this.group;
    this.group = undefined;
    await group?.end();
  }

  private metricValues(sums: number[], samples: number): MetricValues {
    return Object.fromEntries(this.config.metrics.map((name, i) => [name, sums[i]! / samples]));
  }

  private emit(event: TrainingEvent): void {
    this.options.onEvent?.(event);
  }

  /** Polls the replicas' step counters for progress events while an epoch runs. */
  private reportProgress(epoch: number, firstStep: number, steps: number, before: EpochProgress): () => void {
    const started = performance.now();
    const timer = setInterval(() => {
      const group = this.group;
      if (!group) return; // between a failure and its recovery
      let samples = 0;
      let lossSum = 0;
      let done = Infinity;
      for (let r = 0; r < this.workers; r++) {
        const row = group.views.statsRow(r);
        done = Math.min(done, row[StatsColumn.STEPS]!);
        samples += row[StatsColumn.SAMPLES]!;
        lossSum += row[StatsColumn.LOSS_SUM]!;
      }
      if (samples > 0) {
        const seconds = (performance.now() - started) / 1000;
        const loss = (before.lossSum + lossSum) / (before.samples + samples);
        this.emit({ type: 'progress', epoch: epoch + 1, step: firstStep + done, steps, samples: before.samples + samples, loss, samplesPerSec: samples / seconds });
      }
    }, this.options.progressIntervalMs ?? 200);
    return () => clearInterval(timer);
  }

  /** Calls every replica of the live group; a failure ends the group (see fan-out.ts). */
  private async callAll<T>(what: string, call: (api: Comlink.Remote<ReplicaApi>, rank: number) => Promise<T>, timeoutMs = this.config.parallel.stepTimeoutMs): Promise<T[]> {
    if (this.closed) throw new Error(`cannot run ${what}: the trainer is closed`);
    const group = this.live;
    try {
      return await callAll(group, what, call, timeoutMs);
    } catch (error) {
      if (this.group === group) this.group = undefined;
      throw error;
    }
  }
}
