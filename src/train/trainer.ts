/**
 * The coordinator: loads and shards the data, initialises the parameters once from the seed,
 * starts one replica per worker thread (a long piscina task each, driven over comlink), runs
 * the epochs, evaluates, and turns any replica failure into one clear error without leaving a
 * thread waiting.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import * as tf from '@tensorflow/tfjs';
import { Piscina } from 'piscina';
import { assertBackendAvailable, checkReplicasForBackend, resolveBackend, silenceCpuBanner, type BackendName } from '../backend/select-backend.js';
import { ControlBlock, WaitTimeoutError } from '../collective/control-block.js';
import type { RunConfig } from '../config/schema.js';
import { resolveWorkers } from '../config/load.js';
import { createSharedDataset, product, splitValidation, type SharedDataset } from '../data/dataset.js';
import { loadData, type LoadedData } from '../data/load-data.js';
import { stepsPerEpoch } from '../data/sampler.js';
import { TrainingAbortedError, UserError } from '../errors.js';
import { buildModel } from '../model/build-model.js';
import { ParamLayout } from '../model/param-layout.js';
import { createOptimizer } from '../optim/create-optimizer.js';
import type { EpochEvent, MetricValues, TrainingEvent } from './events.js';
import type {
  DatasetRole,
  EvaluationSums,
  PhaseTimes,
  ReduceScatterKind,
  ReplicaApi,
  ReplicaInit,
  StepsResult,
} from './replica-protocol.js';
import { allocateTrainingBuffers, StatsColumn, TrainingViews, type SharedTrainingBuffers } from './shared-state.js';
import { compiledModuleUrl } from '../util/compiled-url.js';

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
  /** Test-only: make replica `rank` throw, or spin forever, before global batch `step`. */
  faults?: { rank: number; throwAtStep?: number; hangAtStep?: number };
}

interface ReplicaHandle {
  api: Comlink.Remote<ReplicaApi>;
  /** Settles when the replica's piscina task ends; rejects if its thread dies. */
  task: Promise<void>;
}

export interface Evaluation {
  samples: number;
  loss: number;
  metrics: MetricValues;
}

const EVALUATION_BATCH = 256;
const INIT_TIMEOUT_MS = 120_000;
const USER_ERROR_NAMES = new Set(['UserError', 'ConfigError', 'DataError']);

export class Trainer {
  readonly history: EpochEvent[] = [];
  private updates = 0;
  private closed = false;

  private constructor(
    readonly config: RunConfig,
    readonly workers: number,
    readonly backend: BackendName,
    readonly layout: ParamLayout,
    readonly datasets: Partial<Record<DatasetRole, SharedDataset>>,
    private readonly outputSize: number,
    private readonly buffers: SharedTrainingBuffers,
    private readonly views: TrainingViews,
    private readonly control: ControlBlock,
    private readonly pool: Piscina,
    private readonly replicas: ReplicaHandle[],
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

    const { layout, initialParams, outputSize } = await initialModel(config, train);
    if (options.initialParams) {
      if (options.initialParams.length !== layout.length) {
        throw new Error(`initialParams has ${options.initialParams.length} values, the model has ${layout.length}`);
      }
      initialParams.set(options.initialParams);
    }
    const optimizer = createOptimizer(config.optimizer);
    const buffers = allocateTrainingBuffers(layout.length, workers, optimizer.stateNames.length);
    const views = new TrainingViews(buffers, layout.length);
    views.params.set(initialParams);
    const control = new ControlBlock(buffers.control, config.parallel.stepTimeoutMs);

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
    const trainer = new Trainer(config, workers, backend, layout, datasets, outputSize, buffers, views, control, pool, replicas, options);
    // Starting a thread and its backend takes seconds, more than a step may.
    const initTimeoutMs = Math.max(config.parallel.stepTimeoutMs, INIT_TIMEOUT_MS);
    await trainer.callAll('initialising replicas', (api, rank) => api.init(trainer.replicaInit(rank)), initTimeoutMs);
    return trainer;
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
      buffers: this.buffers,
      datasets: this.datasets,
      reduceScatter: this.options.reduceScatter ?? 'ring',
      // A backstop: the coordinator's watchdog (stepTimeoutMs) sees every heartbeat and names
      // the stuck replica, where a replica's own wait would only name its ring neighbour.
      timeoutMs: 2 * config.parallel.stepTimeoutMs,
      spinMicros: this.workers <= availableParallelism() ? 200 : 0,
      faults: this.options.faults?.rank === rank ? this.options.faults : undefined,
    };
  }

  get stepsPerEpoch(): number {
    return stepsPerEpoch(this.datasets.train!.size, this.config.training.batchSize);
  }

  /** Trains config.training.epochs epochs (or `epochs`), evaluating after each. */
  async fit(epochs = this.config.training.epochs): Promise<EpochEvent[]> {
    this.emit({
      type: 'start',
      name: this.config.name,
      workers: this.workers,
      backend: this.backend,
      epochs,
      stepsPerEpoch: this.stepsPerEpoch,
      trainSamples: this.datasets.train!.size,
      validationSamples: this.datasets.validation?.size ?? 0,
      parameters: this.layout.length,
    });
    const first = this.history.length;
    for (let epoch = first; epoch < first + epochs; epoch++) await this.runEpoch(epoch, first + epochs);
    return this.history.slice(first);
  }

  private async runEpoch(epoch: number, epochs: number): Promise<void> {
    const steps = this.stepsPerEpoch;
    const started = performance.now();
    this.views.resetEpochCounters();
    const stopWatching = this.reportProgress(epoch, steps, started);
    let results: StepsResult[];
    try {
      results = await this.callAll(`epoch ${epoch + 1}`, (api) =>
        api.runSteps({ epoch, fromStep: 0, toStep: steps, updatesBefore: this.updates }),
      );
    } finally {
      stopWatching();
    }
    this.updates += steps;
    const seconds = (performance.now() - started) / 1000;
    const sums = sumResults(results);
    const validation = this.datasets.validation ? await this.evaluate('validation') : undefined;
    const event: EpochEvent = {
      type: 'epoch',
      epoch: epoch + 1,
      epochs,
      steps,
      samples: sums.samples,
      seconds,
      samplesPerSec: sums.samples / seconds,
      loss: sums.lossSum / sums.samples,
      metrics: this.metricValues(sums.metricSums, sums.samples),
      validation: validation && { loss: validation.loss, metrics: validation.metrics },
      phaseTimes: averageTimes(results.map((r) => r.times)),
    };
    this.history.push(event);
    this.emit(event);
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

  /** A copy of the current flat parameters. */
  params(): Float32Array {
    return this.views.params.slice();
  }

  namedParams(): { name: string; shape: number[]; values: number[] }[] {
    return this.layout.named(this.views.params);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    // After an abort a replica may be stuck for good: end the threads without asking.
    if (!this.control.aborted) {
      await Promise.allSettled(this.replicas.map((r) => withDeadline(r.api.close(), 5_000, 'closing a replica')));
    }
    await this.pool.destroy();
  }

  private metricValues(sums: number[], samples: number): MetricValues {
    return Object.fromEntries(this.config.metrics.map((name, i) => [name, sums[i]! / samples]));
  }

  private emit(event: TrainingEvent): void {
    this.options.onEvent?.(event);
  }

  /** Polls the replicas' step counters for progress events while an epoch runs. */
  private reportProgress(epoch: number, steps: number, started: number): () => void {
    const timer = setInterval(() => {
      let samples = 0;
      let lossSum = 0;
      let step = Infinity;
      for (let r = 0; r < this.workers; r++) {
        const row = this.views.statsRow(r);
        step = Math.min(step, row[StatsColumn.STEPS]!);
        samples += row[StatsColumn.SAMPLES]!;
        lossSum += row[StatsColumn.LOSS_SUM]!;
      }
      if (samples > 0) {
        const seconds = (performance.now() - started) / 1000;
        this.emit({ type: 'progress', epoch: epoch + 1, step, steps, samples, loss: lossSum / samples, samplesPerSec: samples / seconds });
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
    const pending = new Set(this.replicas.keys());
    let declareStuck!: (error: Error) => void;
    const stuck = new Promise<never>((_, reject) => (declareStuck = reject));
    stuck.catch(() => undefined);
    const beats = this.replicas.map((_, r) => ({ value: this.views.statsRow(r)[StatsColumn.HEARTBEAT]!, at: performance.now() }));
    const watchdog = setInterval(() => {
      const t = performance.now();
      for (const r of pending) {
        const value = this.views.statsRow(r)[StatsColumn.HEARTBEAT]!;
        if (value !== beats[r]!.value) beats[r] = { value, at: t };
      }
      const stale = [...pending].filter((r) => t - beats[r]!.at > timeoutMs);
      if (stale.length === 0) return;
      // Replicas waiting in a collective for a stuck one stop beating too: name one that is not.
      const culprit = stale.find((r) => this.views.statsRow(r)[StatsColumn.IN_COLLECTIVE] === 0) ?? stale[0]!;
      this.control.abort(culprit);
      declareStuck(new WaitTimeoutError(`replica ${culprit}, which made no progress`, timeoutMs));
    }, Math.min(1000, Math.max(10, timeoutMs / 10)));
    const settled = await Promise.allSettled(
      this.replicas.map(async (replica, rank) => {
        try {
          const exited = replica.task.then(() => Promise.reject(new Error(`replica ${rank} exited`)));
          return await Promise.race([call(replica.api, rank), exited, stuck]);
        } catch (error) {
          this.control.abort(rank);
          throw error;
        } finally {
          pending.delete(rank);
        }
      }),
    );
    clearInterval(watchdog);
    const failures = settled.flatMap((s, rank) => (s.status === 'rejected' ? [{ rank, error: s.reason as Error }] : []));
    if (failures.length === 0) return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
    const origin = this.control.abortOrigin ?? failures[0]!.rank;
    const cause = failures.find((f) => f.rank === origin) ?? failures.find((f) => !/^aborted by /.test(f.error.message)) ?? failures[0]!;
    await this.close().catch(() => undefined);
    if (cause.error instanceof UserError) throw cause.error;
    // comlink keeps an error's name across threads, not its class.
    if (USER_ERROR_NAMES.has(cause.error.name)) throw new UserError(cause.error.message);
    throw new TrainingAbortedError(`${what} failed: replica ${origin}: ${cause.error.message}`, { cause: cause.error });
  }
}

function startReplica(pool: Piscina): ReplicaHandle {
  const { port1, port2 } = new MessageChannel();
  const task = pool.run({ port: port2 }, { transferList: [port2] }) as Promise<void>;
  // The race in callAll observes failures; this keeps an unobserved rejection from crashing.
  task.catch(() => undefined);
  return { api: Comlink.wrap<ReplicaApi>(nodeEndpoint(port1)), task };
}

/** Builds the model once on the coordinator (cpu backend) from the seed: starting weights do not depend on N. */
async function initialModel(config: RunConfig, train: SharedDataset) {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  silenceCpuBanner();
  try {
    const model = await buildModel(config.model, config.training.seed);
    checkInputShape(model, train);
    const layout = ParamLayout.fromModel(model);
    const initialParams = new Float32Array(layout.length);
    layout.readFrom(model, initialParams);
    const outputShape = model.outputs[0]!.shape;
    const outputSize = product(outputShape.slice(1).map((d) => d ?? 1));
    model.dispose();
    return { layout, initialParams, outputSize };
  } finally {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  }
}

function checkInputShape(model: tf.LayersModel, train: SharedDataset): void {
  const expected = model.inputs[0]!.shape.slice(1);
  const found = train.featureShape;
  if (expected.length !== found.length || expected.some((d, i) => d !== null && d !== found[i])) {
    throw new UserError(`model input shape [${expected.map((d) => d ?? '?').join(', ')}] does not match the data's sample shape [${found.join(', ')}] (${train.name})`);
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

function averageTimes(times: PhaseTimes[]): PhaseTimes {
  const total = { gather: 0, copyIn: 0, compute: 0, copyOut: 0, reduceScatter: 0, update: 0, barrier: 0 } as PhaseTimes;
  for (const t of times) for (const key of Object.keys(total) as (keyof PhaseTimes)[]) total[key] += t[key] / times.length;
  return total;
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}
