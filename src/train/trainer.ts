/**
 * The coordinator: loads and shards the data, initialises the parameters once from the seed,
 * starts one replica per worker thread (a long piscina task each, driven over comlink), runs
 * the epochs, evaluates, and turns any replica failure into one clear error without leaving a
 * thread waiting.
 */
import { availableParallelism } from 'node:os';
import * as Comlink from 'comlink';
import * as tf from '@tensorflow/tfjs';
import { assertBackendAvailable, checkReplicasForBackend, resolveBackend, silenceCpuBanner, type BackendName } from '../backend/select-backend.js';
import { WaitTimeoutError } from '../collective/control-block.js';
import type { RunConfig } from '../config/schema.js';
import { resolveWorkers } from '../config/load.js';
import { createSharedDataset, product, splitValidation, type SharedDataset } from '../data/dataset.js';
import { loadData, type LoadedData } from '../data/load-data.js';
import { stepsPerEpoch } from '../data/sampler.js';
import { TrainingAbortedError, UserError } from '../errors.js';
import { buildModel } from '../model/build-model.js';
import { checkDataForModel } from '../model/check-data.js';
import { ParamLayout } from '../model/param-layout.js';
import { hasWeightFiles, tfjsFileHandler } from '../model/tfjs-files.js';
import { createOptimizer } from '../optim/create-optimizer.js';
import type { EpochEvent, MetricValues, TrainingEvent } from './events.js';
import {
  NON_FINITE_ERROR,
  zeroPhaseTimes,
  type DatasetRole,
  type EvaluationSums,
  type PhaseTimes,
  type ReduceScatterKind,
  type ReplicaApi,
  type ReplicaInit,
  type StepsResult,
} from './replica-protocol.js';
import { ReplicaGroup } from './replica-group.js';
import { StatsColumn, type TrainingViews } from './shared-state.js';
import { assertResumable, assertWarmStartable } from '../checkpoint/resume.js';
import type { CheckpointState } from '../checkpoint/state.js';
import { CheckpointStore, type CheckpointMetric } from '../checkpoint/store.js';
import type { ShardOptimizer } from '../optim/optimizer.js';
import { VERSION } from '../version.js';

/** Marks the in-progress epoch's sums in a checkpoint's history. */
const PARTIAL_EPOCH = 'partial-epoch';

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
const USER_ERROR_NAMES = new Set(['UserError', 'ConfigError', 'DataError']);

/** Sums of the epoch in progress: a checkpoint between steps carries them on. */
interface EpochProgress {
  skippedSteps: number;
  samples: number;
  lossSum: number;
  metricSums: number[];
  seconds: number;
  times: PhaseTimes[];
}

/** Global batches per runSteps call: keeps stop requests and checkpoints within reach. */
const SEGMENT_STEPS = 64;

export class Trainer {
  readonly history: EpochEvent[] = [];
  /** The next step to run is step `stepInEpoch` of epoch `epoch` (both from 0). */
  readonly position = { epoch: 0, stepInEpoch: 0 };
  private updates = 0;
  private samplesSeen = 0;
  private epochProgress: EpochProgress | undefined;
  private closed = false;
  private stopRequested = false;
  private store: CheckpointStore | undefined;
  private pendingWrites: Promise<unknown> = Promise.resolve();
  private lastCheckpointStep = -1;
  private recoveryPoint: CheckpointState | undefined;
  /** Replica groups restarted after failures so far. */
  recoveries = 0;
  /** Paths of the checkpoints this trainer wrote, oldest first. */
  readonly checkpointsWritten: string[] = [];

  private constructor(
    readonly config: RunConfig,
    /** Replicas now: fewer than asked for after a recovery that could not restart them all. */
    public workers: number,
    readonly backend: BackendName,
    readonly layout: ParamLayout,
    readonly datasets: Partial<Record<DatasetRole, SharedDataset>>,
    private readonly outputSize: number,
    private readonly topology: object,
    private readonly optimizer: ShardOptimizer,
    private group: ReplicaGroup | undefined,
    private readonly options: TrainerOptions,
  ) {}

  static async create(config: RunConfig, options: TrainerOptions = {}): Promise<Trainer> {
    const workers = resolveWorkers(config.parallel.workers);
    const backend = await resolveBackend(config.backend);
    await assertBackendAvailable(backend);
    checkReplicasForBackend(backend, workers);
    const data = options.data ?? (await loadData(config.data, { seed: config.training.seed, dataDir: options.dataDir, log: options.log }));
    const datasets = arrangeDatasets(config, data);
    const train = datasets.train!;
    if (train.size === 0) throw new UserError(`${train.name} has no samples to train on`);

    const roles = ['train', 'validation', 'test'] as const;
    const { layout, initialParams, outputSize, topology } = await initialModel(config, roles.flatMap((r) => datasets[r] ?? []));
    if (options.initialParams) {
      if (options.initialParams.length !== layout.length) {
        throw new Error(`initialParams has ${options.initialParams.length} values, the model has ${layout.length}`);
      }
      initialParams.set(options.initialParams);
    }
    const optimizer = createOptimizer(config.optimizer);
    if (options.resume) assertResumable(options.resume.file, options.resume.state, config, layout, optimizer);
    if (options.warmStart) assertWarmStartable(options.warmStart.file, options.warmStart.state, layout);
    checkMonitor(config, datasets.validation !== undefined);
    const trainer = new Trainer(config, workers, backend, layout, datasets, outputSize, topology, optimizer, undefined, options);
    if (options.checkpoints) trainer.store = new CheckpointStore(config.checkpoint.dir, { keepLast: config.checkpoint.keepLast });
    options.signal?.addEventListener('abort', () => trainer.stop(), { once: true });
    await trainer.startReplicas((views) => {
      views.params.set(options.warmStart?.state.params ?? initialParams);
      if (options.resume) trainer.restore(options.resume.state, views);
    });
    return trainer;
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
    if (this.recoveries === 0 || faults.persistent) return faults;
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
    const end = epochs === undefined ? this.config.training.epochs : this.position.epoch + epochs;
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
    const first = this.history.length;
    this.keepRecoveryPoint();
    while (this.position.epoch < end && !this.stopRequested) await this.runEpoch(end);
    if (this.store && this.lastCheckpointStep !== this.updates) this.checkpoint();
    await this.flushCheckpoints();
    return this.history.slice(first);
  }

  /** Asks fit() to return at the next step boundary (after a checkpoint, when they are on). */
  stop(): void {
    this.stopRequested = true;
  }

  get stopped(): boolean {
    return this.stopRequested;
  }

  private async runEpoch(epochs: number): Promise<void> {
    const steps = this.stepsPerEpoch;
    const epoch = this.position.epoch;
    this.epochProgress ??= this.freshEpochProgress();
    this.live.views.resetEpochCounters();
    let stopReporting = this.reportProgress(epoch, this.position.stepInEpoch, steps, this.epochProgress);
    try {
      while (this.position.stepInEpoch < steps) {
        const progress = this.epochProgress;
        const fromStep = this.position.stepInEpoch;
        const toStep = this.segmentEnd(fromStep, steps);
        const started = performance.now();
        let results: StepsResult[];
        try {
          results = await this.callAll(`epoch ${epoch + 1}`, (api) => api.runSteps({ epoch, fromStep, toStep, updatesBefore: this.updates }));
        } catch (error) {
          stopReporting();
          await this.recover(error as Error, epoch, fromStep, toStep);
          this.epochProgress ??= this.freshEpochProgress();
          this.live.views.resetEpochCounters();
          stopReporting = this.reportProgress(epoch, this.position.stepInEpoch, steps, this.epochProgress!);
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
        this.updates += toStep - fromStep;
        this.samplesSeen += sums.samples;
        this.position.stepInEpoch = toStep;
        if (toStep < steps && (this.stopRequested || this.checkpointDue())) this.checkpoint();
        if (this.stopRequested && toStep < steps) return;
        this.keepRecoveryPoint();
      }
    } finally {
      stopReporting();
    }
    const progress = this.epochProgress;
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
    this.history.push(event);
    this.epochProgress = undefined;
    this.position.epoch = epoch + 1;
    this.position.stepInEpoch = 0;
    this.emit(event);
    if (this.config.checkpoint.everyEpoch || this.checkpointDue()) this.checkpoint(event);
    this.keepRecoveryPoint();
  }

  /**
   * The last consistent state, copied at every segment boundary: a run whose replicas fail
   * restarts from it, and since training is deterministic ends as if nothing had failed.
   */
  private keepRecoveryPoint(): void {
    if (this.config.parallel.maxRecoveries > 0) this.recoveryPoint = this.captureState();
  }

  /** After a replica failure: start fresh replicas from the recovery point, or give up. */
  private async recover(error: Error, epoch: number, fromStep: number, toStep: number): Promise<void> {
    const limit = this.config.parallel.maxRecoveries;
    const point = this.recoveryPoint;
    const recoverable = error instanceof TrainingAbortedError && (error.cause as Error | undefined)?.name !== NON_FINITE_ERROR;
    if (!recoverable || this.closed || this.stopRequested || !point || this.recoveries >= limit) {
      if (point && this.store && this.lastCheckpointStep !== point.position.globalStep) {
        // Leave a checkpoint to resume from: the last consistent state.
        const store = this.store;
        this.pendingWrites = this.pendingWrites.then(() => store.write(point)).then((file) => this.checkpointsWritten.push(file));
        await this.flushCheckpoints().catch(() => undefined);
      }
      await this.close();
      if (recoverable && limit > 0 && this.recoveries >= limit) {
        throw new TrainingAbortedError(`${error.message} (gave up after ${this.recoveries} recover${this.recoveries === 1 ? 'y' : 'ies'})`, { cause: error });
      }
      throw error;
    }
    this.recoveries++;
    const started = performance.now();
    // Replicas that cannot be started again (a thread or backend that fails to come up) leave
    // the run with fewer: the global batches stay the same, so does the result (up to rounding).
    for (;;) {
      try {
        await this.startReplicas((views) => {
          this.history.length = 0;
          this.epochProgress = undefined;
          this.restore(point, views);
        });
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
      attempt: this.recoveries,
      of: limit,
      error: error.message,
      failedDuring: { epoch: epoch + 1, fromStep, toStep },
      resumedAt: { epoch: this.position.epoch + 1, step: this.position.stepInEpoch },
      replicas: this.workers,
      seconds: (performance.now() - started) / 1000,
    });
  }

  private freshEpochProgress(): EpochProgress {
    return { skippedSteps: 0, samples: 0, lossSum: 0, metricSums: this.config.metrics.map(() => 0), seconds: 0, times: [] };
  }

  /** The end of the next runSteps call: at most SEGMENT_STEPS, never past a checkpoint step. */
  private segmentEnd(fromStep: number, steps: number): number {
    let toStep = Math.min(steps, fromStep + SEGMENT_STEPS);
    const every = this.config.checkpoint.everySteps;
    if (this.store && every > 0) toStep = Math.min(toStep, fromStep + (every - (this.updates % every)));
    return toStep;
  }

  private checkpointDue(): boolean {
    const every = this.config.checkpoint.everySteps;
    return this.store !== undefined && every > 0 && this.updates % every === 0 && this.updates !== this.lastCheckpointStep;
  }

  /**
   * Copies the state out of shared memory now (at a step boundary, replicas idle) and writes it
   * while training goes on; writes happen one after another, in order.
   */
  private checkpoint(epoch?: EpochEvent): void {
    const store = this.store;
    if (!store) return;
    const state = this.captureState();
    this.lastCheckpointStep = this.updates;
    const metric = epoch ? this.monitoredMetric(epoch) : undefined;
    const write = this.pendingWrites.then(() => store.write(state, { metric })).then((file) => {
      this.checkpointsWritten.push(file);
    });
    // A failed write surfaces at flushCheckpoints (the end of fit), not as an unhandled rejection.
    write.catch(() => undefined);
    this.pendingWrites = write;
  }

  /** Waits for the checkpoints being written; throws the first write error. */
  async flushCheckpoints(): Promise<void> {
    await this.pendingWrites;
  }

  private monitoredMetric(epoch: EpochEvent): CheckpointMetric | undefined {
    const name = this.config.checkpoint.monitor;
    if (!name) return undefined;
    const values: Record<string, number> = { loss: epoch.loss, ...epoch.metrics };
    if (epoch.validation) {
      values.val_loss = epoch.validation.loss;
      for (const [k, v] of Object.entries(epoch.validation.metrics)) values[`val_${k}`] = v;
    }
    const value = values[name]!;
    const mode = this.config.checkpoint.mode ?? (/acc/i.test(name) ? 'max' : 'min');
    return { name, value, mode };
  }

  /** The run's whole state, copied out of shared memory (the one copy a checkpoint costs). */
  captureState(): CheckpointState {
    const partial = this.epochProgress && this.position.stepInEpoch > 0 ? [{ event: PARTIAL_EPOCH, epoch: this.position.epoch + 1, ...this.epochProgress }] : [];
    return {
      ringtrainVersion: VERSION,
      config: this.config,
      modelTopology: this.topology,
      layout: this.layout.entries.map((e) => ({ name: e.name, shape: [...e.shape], offset: e.offset, size: e.size })),
      params: this.live.views.params.slice(),
      optimizer: {
        name: this.optimizer.name,
        hyperParameters: { ...this.optimizer.hyperParameters },
        step: this.updates,
        state: this.optimizer.stateNames.map((name, i) => ({ name, shape: [this.layout.length], values: this.live.views.optimizerState[i]!.slice() })),
      },
      position: { epoch: this.position.epoch, stepInEpoch: this.position.stepInEpoch, globalStep: this.updates, samplesSeen: this.samplesSeen },
      sampler: { seed: this.config.training.seed, shuffle: this.config.training.shuffle },
      // Random layers are seeded from (seed, epoch, step, rank): the position is the RNG state.
      rngStates: [],
      history: [...this.history, ...partial],
      replicas: this.workers,
      createdAt: new Date().toISOString(),
    };
  }

  /** Takes over a checkpoint's parameters, optimizer state, position and history. */
  private restore(state: CheckpointState, views: TrainingViews): void {
    views.params.set(state.params);
    this.optimizer.stateNames.forEach((name, i) => {
      const saved = state.optimizer.state.find((t) => t.name === name);
      if (!saved) throw new UserError(`the checkpoint has no optimizer state "${name}"`);
      views.optimizerState[i]!.set(saved.values);
    });
    this.updates = state.position.globalStep;
    this.samplesSeen = state.position.samplesSeen;
    this.position.epoch = state.position.epoch;
    this.position.stepInEpoch = state.position.stepInEpoch;
    this.lastCheckpointStep = state.position.globalStep;
    for (const record of state.history as (EpochEvent | ({ event: string } & EpochProgress))[]) {
      if ('event' in record && record.event === PARTIAL_EPOCH) {
        const { skippedSteps = 0, samples, lossSum, metricSums, seconds, times } = record as EpochProgress;
        this.epochProgress = { skippedSteps, samples, lossSum, metricSums, seconds, times };
      } else {
        this.history.push(record as EpochEvent);
      }
    }
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

  /**
   * Calls every replica and waits for all, with a watchdog: a replica whose heartbeat stands
   * still for the step timeout while its call is pending is declared stuck. When one fails, the
   * abort word releases the others, and the error of the replica that failed first is raised,
   * naming it; the trainer is then closed, which ends every thread.
   */
  private async callAll<T>(
    what: string,
    call: (api: Comlink.Remote<ReplicaApi>, rank: number) => Promise<T>,
    timeoutMs = this.config.parallel.stepTimeoutMs,
  ): Promise<T[]> {
    if (this.closed) throw new Error(`cannot run ${what}: the trainer is closed`);
    const group = this.live;
    const { replicas, control, views } = group;
    const pending = new Set(replicas.keys());
    let declareStuck!: (error: Error) => void;
    const stuck = new Promise<never>((_, reject) => (declareStuck = reject));
    stuck.catch(() => undefined);
    const beats = replicas.map((_, r) => ({ value: views.statsRow(r)[StatsColumn.HEARTBEAT]!, at: performance.now() }));
    const watchdog = setInterval(() => {
      const t = performance.now();
      for (const r of pending) {
        const value = views.statsRow(r)[StatsColumn.HEARTBEAT]!;
        if (value !== beats[r]!.value) beats[r] = { value, at: t };
      }
      const stale = [...pending].filter((r) => t - beats[r]!.at > timeoutMs);
      if (stale.length === 0) return;
      // Replicas waiting in a collective for a stuck one stop beating too: name one that is not.
      const culprit = stale.find((r) => views.statsRow(r)[StatsColumn.IN_COLLECTIVE] === 0) ?? stale[0]!;
      control.abort(culprit);
      declareStuck(new WaitTimeoutError(`replica ${culprit}, which made no progress`, timeoutMs));
    }, Math.min(1000, Math.max(10, timeoutMs / 10)));
    const settled = await Promise.allSettled(
      replicas.map(async (replica, rank) => {
        try {
          const exited = replica.task.then(() => Promise.reject(new Error(`replica ${rank} exited`)));
          return await Promise.race([call(replica.api, rank), exited, stuck]);
        } catch (error) {
          control.abort(rank);
          throw error;
        } finally {
          pending.delete(rank);
        }
      }),
    );
    clearInterval(watchdog);
    const failures = settled.flatMap((s, rank) => (s.status === 'rejected' ? [{ rank, error: s.reason as Error }] : []));
    if (failures.length === 0) return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
    const origin = control.abortOrigin ?? failures[0]!.rank;
    const cause = failures.find((f) => f.rank === origin) ?? failures.find((f) => !/^aborted by /.test(f.error.message)) ?? failures[0]!;
    // Every thread of the failed group ends now; fit() may start a new group (recover).
    this.group = undefined;
    await group.end().catch(() => undefined);
    if (cause.error instanceof UserError) throw cause.error;
    // comlink keeps an error's name across threads, not its class.
    if (USER_ERROR_NAMES.has(cause.error.name)) throw new UserError(cause.error.message);
    throw new TrainingAbortedError(`${what} failed: replica ${origin}: ${cause.error.message}`, { cause: cause.error });
  }
}

/** Builds the model once on the coordinator (cpu backend) from the seed: starting weights do not depend on N. */
async function initialModel(config: RunConfig, datasets: SharedDataset[]) {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  silenceCpuBanner();
  try {
    // A model.json with its weight files beside it starts from those weights (warm start).
    const model =
      'topology' in config.model && hasWeightFiles(config.model.topology)
        ? await tf.loadLayersModel(tfjsFileHandler(config.model.topology))
        : await buildModel(config.model, config.training.seed);
    checkDataForModel(model, config.loss, datasets);
    const layout = ParamLayout.fromModel(model);
    const initialParams = new Float32Array(layout.length);
    layout.readFrom(model, initialParams);
    const outputShape = model.outputs[0]!.shape;
    const outputSize = product(outputShape.slice(1).map((d) => d ?? 1));
    const topology = model.toJSON(null, false) as object;
    model.dispose();
    return { layout, initialParams, outputSize, topology };
  } finally {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  }
}

/** checkpoint.monitor must name an epoch metric this run reports; checked before any step. */
function checkMonitor(config: RunConfig, validates: boolean): void {
  const name = config.checkpoint.monitor;
  if (!name) return;
  const names = ['loss', ...config.metrics];
  const known = validates ? [...names, ...names.map((n) => `val_${n}`)] : names;
  if (!known.includes(name)) {
    throw new UserError(`checkpoint.monitor: expected an epoch metric of this run (${known.join(', ')}), found "${name}"`);
  }
}

function arrangeDatasets(config: RunConfig, data: LoadedData): Partial<Record<DatasetRole, SharedDataset>> {
  const { validationSplit, validateOnTest } = config.training;
  const datasets: Partial<Record<DatasetRole, SharedDataset>> = { train: data.train, test: data.test };
  if (validateOnTest) {
    if (!data.test) throw new UserError('training.validateOnTest is set, but the data source has no test set');
    datasets.validation = data.test;
  } else if (validationSplit > 0) {
    const split = splitValidation(data.train, validationSplit);
    datasets.train = split.train;
    datasets.validation = split.validation;
  }
  return datasets;
}

function sumResults(parts: EvaluationSums[]): EvaluationSums {
  const metricSums = parts[0]!.metricSums.map(() => 0);
  let samples = 0;
  let lossSum = 0;
  for (const part of parts) {
    samples += part.samples;
    lossSum += part.lossSum;
    part.metricSums.forEach((v, i) => (metricSums[i]! += v));
  }
  return { samples, lossSum, metricSums };
}

/** Phase times summed over `times`, each divided by `divisor` (the count, for an average). */
function sumTimes(times: PhaseTimes[], divisor = 1): PhaseTimes {
  const total = zeroPhaseTimes();
  for (const t of times) for (const key of Object.keys(total) as (keyof PhaseTimes)[]) total[key] += t[key] / divisor;
  return total;
}

function averageTimes(times: PhaseTimes[]): PhaseTimes {
  return sumTimes(times, times.length);
}

