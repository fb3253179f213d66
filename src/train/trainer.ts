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
import type { DataInfo } from '../data/data-info.js';
import type { LoadedData } from '../data/load-data.js';
import { stepsPerEpoch } from '../data/sampler.js';
import { TrainingAbortedError, UserError } from '../errors.js';
import type { ParamLayout } from '../model/param-layout.js';
import { assertPositionFits, assertResumable, assertWarmStartable } from '../checkpoint/resume.js';
import type { CheckpointState } from '../checkpoint/state.js';
import { CheckpointStore } from '../checkpoint/store.js';
import { historyFromJson, taggedJson } from '../checkpoint/format.js';
import type { ShardOptimizer } from '../optim/optimizer.js';
import { alignSegmentEnd, updatesAfter } from './accumulation.js';
import { CheckpointSchedule, type CheckpointWriteStats } from './checkpointing.js';
import type { CallbackRun, Logs, TrainingCallback } from './callbacks/callback.js';
import { CallbackList, epochLogs } from './callbacks/callback-list.js';
import { EarlyStopping } from './callbacks/early-stopping.js';
import type { EpochEvent, Evaluation, MetricValues, ReportEventOptions, TraceSpan, TrainingEvent } from './events.js';
import { callAll } from './fan-out.js';
import { Recovery } from './recovery.js';
import type { DatasetRole, EvaluationSums, PhaseTimes, ReduceScatterKind, ReplicaApi, ReplicaInit, StepsResult } from './replica-protocol.js';
import { ReplicaGroup } from './replica-group.js';
import { averageTimes, CHECKPOINT_HISTORY_RECORDS, RunState, sumResults, sumTimes, sumTimesPerReplica, type EpochProgress } from './run-state.js';
import { prepareRun, type RunDatasets } from './setup.js';
import { throwIfStopped, untilStopped, type StartupPhase } from './startup.js';
import { StatsColumn, type TrainingViews } from './shared-state.js';
import { decodeReplicaSpans } from './span-recorder.js';
import { LearningRateState } from './learning-rate-state.js';
import type { WorldLink, WorldOptions } from './world-link.js';

export interface TrainerOptions {
  /** Data already loaded (otherwise loaded from config.data, which a config may then leave out). */
  data?: LoadedData;
  /** Overrides config.data.dir. */
  dataDir?: string;
  /** Start from these parameters instead of the seeded initialisation. */
  initialParams?: Float32Array;
  /** And these non-trainable weights (BatchNormalization's moving statistics: a checkpoint's `nonTrainable`). */
  initialNonTrainable?: Float32Array;
  reduceScatter?: ReduceScatterKind;
  onEvent?: (event: TrainingEvent) => void;
  /** Extra events for report sinks: steps events, weights, timeline spans. */
  reportEvents?: ReportEventOptions;
  /**
   * Called at train, epoch and segment boundaries, in order (callbacks/callback.ts), and able
   * to stop training; config.training.earlyStopping adds the built-in EarlyStopping after them.
   */
  callbacks?: TrainingCallback[];
  /** Notes (data loading and the like). */
  log?: (line: string) => void;
  /** Warnings, e.g. a refused connection (default: log). */
  warn?: (line: string) => void;
  /** How often progress is read from the replicas' counters. */
  progressIntervalMs?: number;
  /** Continue from this checkpoint (read and verified); `file` names it in messages. */
  resume?: { file: string; state: CheckpointState };
  /** Start a new run from the weights of this checkpoint alone. */
  warmStart?: { file: string; state: CheckpointState };
  /** Write checkpoints as config.checkpoint says (the CLI turns this on). */
  checkpoints?: boolean;
  /**
   * Asks fit() to stop at the next step boundary (as stop() does), e.g. on SIGINT. Aborted
   * while create() runs, it ends the start with a StartupStoppedError (see startup.ts).
   */
  signal?: AbortSignal;
  /** Called as each start-up phase begins ('replicas': once their threads run); may wait (a test hook). */
  onStartupPhase?: (phase: StartupPhase) => void | Promise<void>;
  /**
   * A world of several processes (from a launcher's contract): this process joins it at
   * create(), starts from rank 0's state, and trains its share of every global batch. Only
   * rank 0 should write checkpoints. Replica failures are not recovered in-process: every
   * process stops, naming the one that failed, and the launcher restarts the group.
   */
  world?: WorldOptions;
  /**
   * Test-only: make replica `rank` throw, spin forever, exit or see a NaN gradient at batch
   * `step` of an epoch (or throw at update `throwAtGlobalStep` of the run); `failRestart` makes that rank fail to start again after a failure.
   */
  faults?: { rank: number; throwAtStep?: number; throwAtGlobalStep?: number; hangAtStep?: number; nanAtStep?: number; exitAtStep?: number; persistent?: boolean; failRestart?: boolean };
}

/** Loss and metrics over some samples (the one evaluation type; defined with the events). */
export type { Evaluation };

const EVALUATION_BATCH = 256;
const INIT_TIMEOUT_MS = 120_000;

const CHECKPOINT_LANE = 'checkpoint writes';

/** Now, as Unix time in milliseconds (comparable across threads and processes). */
const unixMs = () => performance.timeOrigin + performance.now();

/** Global batches per runSteps call: keeps stop requests and checkpoints within reach. */
const SEGMENT_STEPS = 64;

export class Trainer {
  private readonly state: RunState;
  private readonly checkpoints: CheckpointSchedule;
  private readonly recovery: Recovery;
  /** The learning rate's schedule and reduce-on-plateau's state. */
  private readonly rates: LearningRateState;
  private closed = false;
  /** stop() was called (or the signal fired) in this process. */
  private stopRequested = false;
  /** The loop stops at the next boundary: with other processes, only once all agreed on it. */
  private stopping = false;
  /** A fit() returned for the stop: the next fit() starts without it (as Keras's stop_training). */
  private stopHonoured = false;
  /** Class names, CSV columns and categories of the data (file sources), kept in checkpoints. */
  dataInfo: DataInfo | undefined;
  /** Removes the listener on options.signal (at close: a caller's signal may outlive the trainer). */
  private forgetSignal: (() => void) | undefined;
  private readonly callbacks: CallbackList;
  /** Why a callback stopped the fit() running (or the last one); forgotten when the next starts. */
  private callbackStop: string | undefined;
  /** A callback replaced the parameters since the last checkpoint (restored best weights). */
  private paramsReplaced = false;

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
    /** The other processes of the world, when there are any. */
    private readonly world: WorldLink | undefined,
  ) {
    this.state = new RunState(config.metrics.length);
    const store = options.checkpoints ? new CheckpointStore(config.checkpoint.dir, { keepLast: config.checkpoint.keepLast }) : undefined;
    if (store && options.reportEvents?.trace) this.traceWrites(store);
    if (world && options.reportEvents?.trace) world.onNetworkRound = (step, start, end) => this.emitSpan({ name: `network all-reduce (step ${step + 1})`, start, end });
    this.checkpoints = new CheckpointSchedule(config, store, options.warn ?? options.log);
    this.recovery = new Recovery(world ? 0 : config.parallel.maxRecoveries);
    // The run counts global batches; schedules count updates (one per accumulateSteps batches).
    this.rates = new LearningRateState(config, optimizer, (batches) => updatesAfter(batches, this.stepsPerEpoch, config.training.accumulateSteps));
    const earlyStopping = config.training.earlyStopping;
    this.callbacks = new CallbackList([...(options.callbacks ?? []), ...(earlyStopping ? [new EarlyStopping(earlyStopping)] : [])]);
  }

  static async create(config: RunConfig, options: TrainerOptions = {}): Promise<Trainer> {
    const { signal } = options;
    // A stop requested before the trainer exists must not be lost (an abort listener added
    // after the abort never fires): every phase checks for it, and the waits race it.
    const phase = async (name: StartupPhase) => {
      throwIfStopped(signal, name);
      await options.onStartupPhase?.(name);
      throwIfStopped(signal, name);
    };
    // Before the data are loaded (the caller has read the config and any checkpoint): the
    // checkpoint folder must be writable, and leftovers of writes a kill interrupted are removed
    // (it throws a UserError naming the folder and the OS error).
    if (options.checkpoints) new CheckpointStore(config.checkpoint.dir).openForWriting();
    await phase('data');
    const run = await untilStopped(prepareRun(config, { ...options, processesOnHost: options.world?.spec.localWorldSize }), signal, 'data');
    if (options.resume) {
      assertResumable(options.resume.file, options.resume.state, config, run.layout, run.optimizer, run.dataInfo);
      assertPositionFits(options.resume.file, options.resume.state, stepsPerEpoch(run.datasets.train!.size, config.training.batchSize));
    }
    if (options.warmStart) assertWarmStartable(options.warmStart.file, options.warmStart.state, run.layout);
    let world: WorldLink | undefined;
    if (options.world && options.world.spec.worldSize > 1) {
      await phase('rendezvous');
      // The network layer is loaded only by runs that have other processes.
      const { WorldLink } = await import('./world-link.js');
      try {
        world = await WorldLink.join(options.world, config, run, options.warn ?? options.log, signal);
      } catch (error) {
        throwIfStopped(signal, 'rendezvous'); // the rendezvous ended because of the stop
        throw error;
      }
    }
    const trainer = new Trainer(config, run.workers, run.backend, run.layout, run.datasets, run.outputSize, run.topology, run.optimizer, undefined, options, world);
    trainer.dataInfo = run.dataInfo;
    try {
      await trainer.startReplicas(
        (views) => {
          views.params.set(options.warmStart?.state.params ?? run.initialParams);
          views.nonTrainable.set(options.warmStart?.state.nonTrainable ?? run.initialNonTrainable);
          if (options.resume) {
            trainer.restore(options.resume.state, views);
            trainer.callbacks.loadStates(options.resume.state.callbacks, options.resume.file);
          }
        },
        { signal, started: () => phase('replicas') },
      );
      if (world) await untilStopped(trainer.takeRankZeroState(world), signal, 'replicas');
    } catch (error) {
      world?.abort(`could not start: ${(error as Error).message}`);
      await trainer.close().catch(() => undefined);
      throw error;
    }
    // From here on a stop is fit()'s to honour: at once, before any step, if it came already.
    if (signal?.aborted) trainer.stop();
    else if (signal) {
      const onAbort = () => trainer.stop();
      signal.addEventListener('abort', onAbort, { once: true });
      trainer.forgetSignal = () => signal.removeEventListener('abort', onAbort);
    }
    return trainer;
  }

  /** Every process continues from rank 0's parameters, optimizer state and position. */
  private async takeRankZeroState(world: WorldLink): Promise<void> {
    const { state } = this;
    const mine = { position: { ...state.position }, updates: state.updates, samplesSeen: state.samplesSeen, history: state.history, epochProgress: state.epochProgress, lastCheckpointStep: this.checkpoints.lastStep, plateau: this.rates.plateauState };
    const theirs = await world.broadcastState(this.live.views, mine);
    Object.assign(state.position, theirs.position);
    state.updates = theirs.updates;
    state.samplesSeen = theirs.samplesSeen;
    state.history.splice(0, state.history.length, ...theirs.history);
    state.epochProgress = theirs.epochProgress ?? undefined;
    this.checkpoints.lastStep = theirs.lastCheckpointStep;
    this.rates.plateauState = theirs.plateau ?? undefined;
    await this.takeRankZeroCallbackStates(world);
  }

  /** Every process's callbacks continue from rank 0's states (only rank 0 read the checkpoint). */
  private async takeRankZeroCallbackStates(world: WorldLink): Promise<void> {
    const mine = world.rank === 0 ? this.callbacks.saveStates() : [];
    const described = mine.map((c) => ({ name: c.name, stateJson: taggedJson(c.state), tensors: c.tensors.map((t) => ({ name: t.name, shape: t.shape })) }));
    const [theirs] = await world.group.exchange(world.rank === 0 ? described : null, -1);
    if (!theirs || theirs.length === 0) return;
    const states = theirs.map((c, i) => ({
      name: c.name,
      state: historyFromJson(c.stateJson) as unknown as Record<string, unknown>,
      tensors: c.tensors.map((t, j) => ({ ...t, values: mine[i]?.tensors[j]?.values ?? new Float32Array(product(t.shape)) })),
    }));
    for (const c of states) for (const t of c.tensors) await world.group.broadcast(t.values, 0, -1);
    if (world.rank !== 0) this.callbacks.loadStates(states, 'rank 0');
  }

  /** Replicas of every process together (this process's alone). */
  get worldReplicas(): number {
    return this.world?.replicas ?? this.workers;
  }

  /** This process's place in the world: its rank and the world's size (1 and 0 alone). */
  get processes(): { rank: number; size: number } {
    return this.world ? { rank: this.world.rank, size: this.world.spec.worldSize } : { rank: 0, size: 1 };
  }

  /**
   * Epoch records of the run so far in this process; a resumed run starts from the checkpoint's
   * last one (checkpoints keep no more: the metrics log holds every epoch).
   */
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

  /** Seconds this trainer's fit() calls spent on checkpoints: capturing states and waiting for writes. */
  get checkpointSeconds(): number {
    return this.checkpoints.blockedMs / 1000;
  }

  /** Checkpoints written, skipped (replaced by a newer state before their write started) and failed, and the most states held at once. */
  get checkpointStats(): CheckpointWriteStats {
    return this.checkpoints.stats;
  }

  /**
   * Starts a fresh group of replicas; `fill` writes the state they start from. At the first
   * start, `started` runs once the threads do, and `signal` stops the wait for their
   * initialisation. Whatever fails or stops the start ends every thread it started: a live
   * piscina pool would keep the process from exiting.
   */
  private async startReplicas(fill: (views: TrainingViews) => void, first?: { signal?: AbortSignal; started?: () => Promise<void> }): Promise<void> {
    const group = ReplicaGroup.start(this.workers, this.layout.length, this.optimizer.stateNames.length, this.config.parallel.stepTimeoutMs, this.world !== undefined, this.config.metrics.length, this.layout.nonTrainableLength);
    this.group = group;
    try {
      fill(group.views);
      await first?.started?.();
      // Starting a thread and its backend takes seconds, more than a step may.
      const initTimeoutMs = Math.max(this.config.parallel.stepTimeoutMs, INIT_TIMEOUT_MS);
      await untilStopped(
        this.callAll('initialising replicas', (api, rank) => api.init(this.replicaInit(rank)), initTimeoutMs),
        first?.signal,
        'replicas',
      );
    } catch (error) {
      if (this.group === group) this.group = undefined;
      // Threads that never trained have nothing to say goodbye for: end them at once.
      group.control.abort(-1);
      await group.end().catch(() => undefined);
      throw error;
    }
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
      world: this.world ? { replicaOffset: this.world.replicaOffset, replicas: this.world.replicas } : { replicaOffset: 0, replicas: this.workers },
      backend: this.backend,
      model: config.model,
      seed: config.training.seed,
      loss: config.loss,
      metrics: config.metrics,
      optimizer: config.optimizer,
      batchSize: config.training.batchSize,
      accumulateSteps: config.training.accumulateSteps,
      ...(config.training.classWeight ? { classWeight: config.training.classWeight } : {}),
      shuffle: config.training.shuffle,
      layout: [...this.layout.entries],
      nonTrainableLayout: [...this.layout.nonTrainable],
      buffers: this.live.buffers,
      datasets: this.datasets,
      reduceScatter: this.options.reduceScatter ?? 'ring',
      // A backstop: the coordinator's watchdog (stepTimeoutMs) sees every heartbeat and names
      // the stuck replica, where a replica's own wait would only name its ring neighbour.
      timeoutMs: 2 * config.parallel.stepTimeoutMs,
      spinMicros: this.workers <= availableParallelism() ? 200 : 0,
      nonFinite: config.training.nonFinite,
      trace: this.options.reportEvents?.trace,
      syncBatchNorm: config.parallel.syncBatchNorm,
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
   * it returns at the next step boundary, with a checkpoint there when checkpoints are on and
   * this call trained a step (a stop before its first step writes none). A later fit()
   * continues from that step: the stop it returned for is forgotten when it starts, while a
   * stop() called since (or before the first fit) ends it at once, and an aborted
   * options.signal ends every fit at once.
   */
  async fit(epochs?: number): Promise<EpochEvent[]> {
    if (this.stopHonoured) {
      this.stopHonoured = false;
      this.stopRequested = false;
      this.stopping = false;
    }
    this.callbackStop = undefined;
    if (this.options.signal?.aborted) this.stop();
    const end = epochs === undefined ? this.config.training.epochs : this.state.position.epoch + epochs;
    this.emit({
      type: 'start',
      name: this.config.name,
      workers: this.workers,
      processes: this.processes.size,
      worldReplicas: this.worldReplicas,
      backend: this.backend,
      epochs: end,
      stepsPerEpoch: this.stepsPerEpoch,
      trainSamples: this.datasets.train!.size,
      validationSamples: this.datasets.validation?.size ?? 0,
      parameters: this.layout.length,
    });
    const first = this.state.history.length;
    const updatesAtEntry = this.state.updates;
    this.checkpoints.startClock();
    this.keepRecoveryPoint();
    await this.callbacks.trainBegin(this.positionLogs(), this.callbackRun);
    while (this.state.position.epoch < end && !this.halting) await this.runEpoch(end);
    if (this.stopping) this.stopHonoured = true;
    await this.callbacks.trainEnd(this.positionLogs(), this.callbackRun);
    // A stop before this call's first step trained nothing: no checkpoint of the state it began
    // from (it would replace `latest`; see startup.ts). Otherwise the last step is checkpointed,
    // and so are parameters a callback replaced (early stopping's best weights).
    const stoppedBeforeAnyStep = this.halting && this.state.updates === updatesAtEntry;
    if ((!stoppedBeforeAnyStep && this.checkpoints.lastStep !== this.state.updates) || this.paramsReplaced) await this.checkpoint(undefined, true);
    await this.checkpoints.flush();
    return this.state.history.slice(first);
  }

  /**
   * Asks fit() to return at the next step boundary (after a checkpoint, when they are on): the
   * fit running, or else the next one (which then trains nothing). A fit() after that continues.
   */
  stop(): void {
    this.stopHonoured = false;
    this.stopRequested = true;
    // Alone, the loop sees it at the next boundary; with other processes, after they agree.
    if (!this.world) this.stopping = true;
  }

  /** The last fit() returned for a stop (or one waits for the next fit). */
  get stopped(): boolean {
    return this.stopping;
  }

  /** Why a callback (early stopping, ...) stopped the last fit(), if one did. */
  get stopReason(): string | undefined {
    return this.callbackStop;
  }

  /** The loop ends at the next step boundary: stop() (agreed on by the world) or a callback asked. */
  private get halting(): boolean {
    return this.stopping || this.callbackStop !== undefined;
  }

  /** What callbacks see of the run and may do to it. */
  private readonly callbackRun: CallbackRun = ((trainer: Trainer): CallbackRun => ({
    get epochs() {
      return trainer.config.training.epochs;
    },
    get finished() {
      return trainer.state.position.epoch >= trainer.config.training.epochs;
    },
    stopTraining: (reason: string) => {
      trainer.callbackStop ??= reason;
    },
    params: () => trainer.params(),
    setParams: (values: Float32Array) => {
      if (values.length !== trainer.layout.length) throw new RangeError(`setParams: expected ${trainer.layout.length} values (the model's parameters), found ${values.length}`);
      trainer.live.views.params.set(values);
      trainer.paramsReplaced = true;
    },
  }))(this);

  private async runEpoch(epochs: number): Promise<void> {
    const { state } = this;
    const steps = this.stepsPerEpoch;
    const epoch = state.position.epoch;
    await this.callbacks.epochBegin(epoch, { step: state.position.stepInEpoch }, this.callbackRun);
    if (this.halting) return;
    state.epochProgress ??= state.freshEpochProgress();
    this.live.views.resetSegmentCounters();
    let stopReporting = this.reportProgress(epoch, steps);
    const replicaTimes: PhaseTimes[][] = [];
    try {
      while (state.position.stepInEpoch < steps) {
        // A failed checkpoint write stops the run here, at the first step boundary after it.
        this.checkpoints.throwIfFailed();
        const progress = state.epochProgress;
        const fromStep = state.position.stepInEpoch;
        // Segments end on update boundaries: a stop or checkpoint never splits an accumulated update.
        const limit = this.limitToStepsEvents(fromStep, this.checkpoints.limitSegment(fromStep, Math.min(steps, fromStep + SEGMENT_STEPS), state.updates));
        const toStep = alignSegmentEnd(fromStep, limit, steps, this.config.training.accumulateSteps);
        const started = performance.now();
        let results: StepsResult[];
        try {
          results = await this.traced(`steps ${fromStep + 1}-${toStep} of epoch ${epoch + 1}`, () =>
            this.callAll(`epoch ${epoch + 1}`, (api) => api.runSteps({ epoch, fromStep, toStep, updatesBefore: state.updates, rateAdjustment: this.rates.adjustment })),
          );
        } catch (error) {
          stopReporting();
          await this.recover(error as Error, epoch, fromStep, toStep);
          state.epochProgress ??= state.freshEpochProgress();
          this.live.views.resetSegmentCounters();
          stopReporting = this.reportProgress(epoch, steps);
          continue;
        }
        this.emitReplicaSpans(results, { epoch, fromStep, firstGlobalStep: state.updates });
        // Every replica counts the same skipped steps.
        const sums = await this.traced('sums across processes', () => this.worldSums({ ...sumResults(results), skippedSteps: results[0]!.skippedSteps }), this.world !== undefined);
        progress.seconds += (performance.now() - started) / 1000;
        progress.samples += sums.samples;
        progress.skippedSteps += sums.skippedSteps;
        progress.lossSum += sums.lossSum;
        sums.metricSums.forEach((v, i) => (progress.metricSums[i]! += v));
        progress.times.push(averageTimes(results.map((r) => r.times)));
        replicaTimes.push(results.map((r) => r.times));
        state.updates += toStep - fromStep;
        state.samplesSeen += sums.samples;
        state.position.stepInEpoch = toStep;
        // In the same turn as the sums above: progress reads the epoch's sums plus the rows'.
        this.live.views.resetSegmentCounters();
        this.emitStepsEvent(epoch, toStep, steps, progress);
        if (this.callbacks.has('onBatchEnd')) {
          const { loss, metrics } = this.runningMeans(sums);
          await this.callbacks.batchEnd(toStep - 1, { loss, ...metrics, size: sums.samples, steps: toStep - fromStep }, this.callbackRun);
        }
        if (toStep < steps && (this.halting || this.checkpoints.due(state.updates))) await this.checkpoint(undefined, this.halting);
        if (this.halting && toStep < steps) return;
        this.keepRecoveryPoint();
      }
    } finally {
      stopReporting();
    }
    const progress = state.epochProgress;
    const { loss, metrics } = this.runningMeans(progress);
    // The bar's last word on the epoch: the values the epoch event carries.
    this.emit({ type: 'progress', epoch: epoch + 1, step: steps, steps, samples: progress.samples, loss, metrics, samplesPerSec: progress.samples / progress.seconds, lr: this.rates.at(Math.max(0, state.updates - 1)) });
    const validation = this.datasets.validation ? await this.evaluate('validation') : undefined;
    const event: EpochEvent = {
      type: 'epoch',
      epoch: epoch + 1,
      epochs,
      steps,
      samples: progress.samples,
      seconds: progress.seconds,
      samplesPerSec: progress.samples / progress.seconds,
      loss,
      metrics,
      validation: validation && { loss: validation.loss, metrics: validation.metrics },
      phaseTimes: sumTimes(progress.times),
      replicaPhaseTimes: sumTimesPerReplica(replicaTimes),
      skippedSteps: progress.skippedSteps,
      lr: this.rates.at(state.updates),
    };
    state.history.push(event);
    state.epochProgress = undefined;
    state.position.epoch = epoch + 1;
    state.position.stepInEpoch = 0;
    this.emit(event);
    if (this.options.reportEvents?.weights) this.emit({ type: 'weights', epoch: epoch + 1, globalStep: state.updates, weights: this.weights() });
    const reduced = this.rates.onEpochEnd(event, state.updates);
    if (reduced !== undefined) this.options.log?.(`epoch ${epoch + 1}: reduce-on-plateau lowered the learning rate to ${reduced.toPrecision(4)}`);
    await this.callbacks.epochEnd(epoch, epochLogs(event), this.callbackRun);
    // Kept (never replaced by a newer state) when every epoch end is asked for; a time- or
    // step-based one may be.
    if (this.config.checkpoint.everyEpoch) await this.checkpoint(event);
    else if (this.checkpoints.due(state.updates)) await this.checkpoint(event, false);
    this.keepRecoveryPoint();
  }

  private keepRecoveryPoint(): void {
    this.recovery.keep(() => this.captureState());
  }

  /** After a replica failure: start fresh replicas from the recovery point, or give up. */
  private async recover(error: Error, epoch: number, fromStep: number, toStep: number): Promise<void> {
    const point = this.recovery.lastConsistentState;
    if (this.closed || this.stopping || !this.recovery.mayRecover(error)) {
      if (point && this.checkpoints.store && this.checkpoints.lastStep !== point.position.globalStep) {
        // Leave a checkpoint to resume from: the last consistent state.
        await this.checkpoints
          .write(() => point, undefined, true)
          .then(() => this.checkpoints.flush())
          .catch(() => undefined);
      }
      await this.close();
      // A divergence names the last good checkpoint: the one just left, or the last before it.
      const lastGood = this.checkpoints.written.at(-1) ?? this.options.resume?.file;
      throw this.recovery.divergence(error, { epoch: epoch + 1, stepInEpoch: fromStep + 1 }, lastGood) ?? this.recovery.finalError(error);
    }
    this.recovery.recovering(error);
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

  /** Queues a checkpoint of this step boundary; `keep`: one that a newer state must not replace (final, stop). */
  private async checkpoint(epoch?: EpochEvent, keep = epoch !== undefined): Promise<void> {
    this.paramsReplaced = false;
    await this.checkpoints.write(() => this.tracedSync('checkpoint capture', () => this.captureState(CHECKPOINT_HISTORY_RECORDS)), epoch, keep);
  }

  /** Where the run stands, as callback logs. */
  private positionLogs(): Logs {
    return { epoch: this.state.position.epoch, step: this.state.position.stepInEpoch };
  }

  /** Waits for the checkpoints being written; throws the first write error. */
  async flushCheckpoints(): Promise<void> {
    await this.checkpoints.flush();
  }

  /**
   * The run's whole state, copied out of shared memory (the one copy a checkpoint costs), with
   * the last `historyRecords` epoch records (all by default) and the callbacks' states.
   */
  captureState(historyRecords = Infinity): CheckpointState {
    const { config, topology, layout, optimizer } = this;
    // A checkpoint records the world's replicas, whichever process wrote it.
    const state = this.state.capture({ config, topology, layout, optimizer, replicas: this.worldReplicas, dataInfo: this.dataInfo }, this.live.views, historyRecords);
    const callbacks = this.callbacks.saveStates();
    return { ...state, learningRate: this.rates.capture(this.state.updates), ...(callbacks.length > 0 ? { callbacks } : {}) };
  }

  /** Takes over a checkpoint's parameters, optimizer state, position and history (callbacks: see create and recover). */
  private restore(saved: CheckpointState, views: TrainingViews): void {
    this.state.restore(saved, this.optimizer, views);
    this.rates.restore(saved.learningRate);
    this.checkpoints.lastStep = saved.position.globalStep;
  }

  /** Loss and metrics of the current parameters on one of the run's datasets, sharded. */
  async evaluate(role: DatasetRole): Promise<Evaluation> {
    if (!this.datasets[role]) throw new UserError(`this run has no ${role} data to evaluate on`);
    const parts = await this.traced(`evaluate on ${role} data`, () => this.callAll(`evaluating on ${role} data`, (api) => api.evaluate({ dataset: role, batchSize: EVALUATION_BATCH })));
    const sums = await this.worldSums({ ...sumResults(parts), skippedSteps: 0 });
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
    this.forgetSignal?.();
    this.forgetSignal = undefined;
    const group = this.group;
    this.group = undefined;
    try {
      await group?.end();
    } finally {
      await this.world?.close();
    }
  }

  /** This process's sums, or with other processes the world's; also where they agree to stop. */
  private async worldSums<S extends EvaluationSums & { skippedSteps: number }>(sums: S): Promise<EvaluationSums & { skippedSteps: number }> {
    if (!this.world) return sums;
    const combined = await this.world.combine(sums, this.stopRequested, this.state.updates);
    if (combined.stop) this.stopping = true;
    return combined.sums;
  }

  private metricValues(sums: number[], samples: number): MetricValues {
    return Object.fromEntries(this.config.metrics.map((name, i) => [name, sums[i]! / samples]));
  }

  private emit(event: TrainingEvent): void {
    this.options.onEvent?.(event);
  }

  // ---- Extra events for report sinks (options.reportEvents) ----

  /** Segments end at every multiple of reportEvents.stepsEvery, where steps events are due. */
  private limitToStepsEvents(fromStep: number, toStep: number): number {
    const every = this.options.reportEvents?.stepsEvery ?? 0;
    return every > 0 ? Math.min(toStep, fromStep + every - (this.state.updates % every)) : toStep;
  }

  private emitStepsEvent(epoch: number, step: number, steps: number, progress: EpochProgress): void {
    const every = this.options.reportEvents?.stepsEvery ?? 0;
    if (every <= 0 || this.state.updates % every !== 0) return;
    const { samples, seconds } = progress;
    const globalStep = this.state.updates;
    this.emit({ type: 'steps', epoch: epoch + 1, step, steps, globalStep, samples, seconds, samplesPerSec: samples / seconds, ...this.runningMeans(progress), phaseTimes: sumTimes(progress.times) });
  }

  private weights(): { name: string; shape: number[]; values: Float32Array }[] {
    const params = this.live.views.params.slice();
    return this.layout.entries.map((e) => ({ name: e.name, shape: [...e.shape], values: params.subarray(e.offset, e.offset + e.size) }));
  }

  private emitReplicaSpans(results: StepsResult[], at: { epoch: number; fromStep: number; firstGlobalStep: number }): void {
    const offset = this.world?.replicaOffset ?? 0;
    results.forEach((result, rank) => {
      if (result.spans) this.emit({ type: 'trace', replica: offset + rank, spans: decodeReplicaSpans(result.spans, at) });
    });
  }

  /** A span of this process's timeline around `work`, while tracing. */
  private async traced<T>(name: string, work: () => Promise<T>, when = true, lane?: string): Promise<T> {
    if (!this.options.reportEvents?.trace || !when) return work();
    const start = unixMs();
    try {
      return await work();
    } finally {
      this.emitSpan({ name, start, end: unixMs() }, lane);
    }
  }

  private tracedSync<T>(name: string, work: () => T): T {
    if (!this.options.reportEvents?.trace) return work();
    const start = unixMs();
    try {
      return work();
    } finally {
      this.emitSpan({ name, start, end: unixMs() });
    }
  }

  private emitSpan(span: TraceSpan, lane?: string): void {
    this.emit({ type: 'trace', lane, spans: [span] });
  }

  /** Checkpoint writes run beside training: their spans go to a lane of their own. */
  private traceWrites(store: CheckpointStore): void {
    const write = store.write.bind(store);
    store.write = (state, options) => this.traced(`checkpoint write (step ${state.position.globalStep})`, () => write(state, options), true, CHECKPOINT_LANE);
  }

  /** The epoch's loss and metrics so far: its sums divided by its samples. */
  private runningMeans(sums: Pick<EpochProgress, 'samples' | 'lossSum' | 'metricSums'>): { loss: number; metrics: MetricValues } {
    return { loss: sums.lossSum / sums.samples, metrics: this.metricValues(sums.metricSums, sums.samples) };
  }

  /**
   * Polls the replicas' step counters for progress events while an epoch runs: the epoch's
   * running loss and metrics are its sums so far (the finished segments', state.epochProgress)
   * plus the replicas' rows (the segment running; see StatsColumn). With other processes, the
   * running segment counts this process's samples alone until it ends.
   */
  private reportProgress(epoch: number, steps: number): () => void {
    const started = performance.now();
    const samplesAtStart = this.state.epochProgress?.samples ?? 0;
    const timer = setInterval(() => {
      const group = this.group;
      const progress = this.state.epochProgress;
      if (!group || !progress) return; // between a failure and its recovery
      const sums = { samples: progress.samples, lossSum: progress.lossSum, metricSums: [...progress.metricSums] };
      let done = Infinity;
      for (let r = 0; r < this.workers; r++) {
        const row = group.views.statsRow(r);
        done = Math.min(done, row[StatsColumn.STEPS]!);
        sums.samples += row[StatsColumn.SAMPLES]!;
        sums.lossSum += row[StatsColumn.LOSS_SUM]!;
        sums.metricSums.forEach((_, i) => (sums.metricSums[i]! += row[StatsColumn.METRIC_SUMS + i]!));
      }
      if (sums.samples > samplesAtStart) {
        const seconds = (performance.now() - started) / 1000;
        const step = this.state.position.stepInEpoch + done;
        const lr = this.rates.at(this.state.updates + Math.min(done, steps - this.state.position.stepInEpoch - 1));
        this.emit({ type: 'progress', epoch: epoch + 1, step, steps, samples: sums.samples, ...this.runningMeans(sums), samplesPerSec: (sums.samples - samplesAtStart) / seconds, lr });
      }
    }, this.options.progressIntervalMs ?? 200);
    return () => clearInterval(timer);
  }

  /** Calls every replica of the live group; a failure ends the group (see fan-out.ts). */
  private async callAll<T>(what: string, call: (api: Comlink.Remote<ReplicaApi>, rank: number) => Promise<T>, timeoutMs = this.config.parallel.stepTimeoutMs): Promise<T[]> {
    if (this.closed) throw new Error(`cannot run ${what}: the trainer is closed`);
    const group = this.live;
    try {
      // With other processes, a replica waiting in a collective waits on them: the world link names who failed.
      const work = callAll(group, what, call, timeoutMs, { blameWaitingReplicas: !this.world });
      return await (this.world ? this.world.during(group, this.state.updates, work) : work);
    } catch (error) {
      if (this.group === group) this.group = undefined;
      throw error;
    }
  }
}
