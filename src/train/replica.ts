/**
 * A replica: the piscina task that a worker thread runs for the whole run. It exposes a
 * ReplicaApi over comlink on the port it is handed, builds the same model as the coordinator,
 * and for every global batch computes the gradient of its slice, reduce-scatters it, updates
 * the parameter chunk it owns and meets the others at a barrier.
 */
import type { MessagePort } from 'node:worker_threads';
import * as Comlink from 'comlink';
import nodeEndpoint from 'comlink/dist/esm/node-adapter.mjs';
import * as tf from '@tensorflow/tfjs';
import { activateBackend } from '../backend/select-backend.js';
import type { Collective } from '../collective/collective.js';
import { ControlBlock } from '../collective/control-block.js';
import { HierarchicalCollective } from '../collective/hierarchical.js';
import { BridgeClient } from '../collective/process-bridge.js';
import { ShmCollective } from '../collective/shm-collective.js';
import { DatasetReader, type SharedDataset } from '../data/dataset.js';
import { epochPermutation, globalBatchRange, replicaSlice, stepsPerEpoch } from '../data/sampler.js';
import { buildModel, withSeededRandomSync } from '../model/build-model.js';
import { mixSeed } from '../util/random.js';
import { layerLossShare } from '../model/layer-losses.js';
import { Objective } from '../model/objective.js';
import { SampleWeighting } from '../model/sample-weights.js';
import { ParamLayout } from '../model/param-layout.js';
import { SyncBatchNorm } from '../model/sync-batch-norm.js';
import { chunkRange } from '../collective/ring.js';
import { GradientClipper, type ChunkedVector } from '../optim/clipping.js';
import { createOptimizer } from '../optim/create-optimizer.js';
import { LearningRate } from '../optim/learning-rate.js';
import type { ShardOptimizer } from '../optim/optimizer.js';
import type {
  DatasetRole,
  EvaluationJob,
  EvaluationSums,
  PhaseTimes,
  PredictionJob,
  ReplicaApi,
  ReplicaInit,
  StepsJob,
  StepsResult,
} from './replica-protocol.js';
import { endsUpdate, optimizerStep, startsUpdate } from './accumulation.js';
import { StatsColumn, TrainingViews } from './shared-state.js';
import { NON_FINITE_ERROR, zeroPhaseTimes } from './replica-protocol.js';
import { now, SpanKind, SpanRecorder } from './span-recorder.js';

export interface ReplicaTask {
  port: MessagePort;
}

/** The piscina task: serve the replica API until the coordinator calls close(). */
export default function serveReplica({ port }: ReplicaTask): Promise<void> {
  return new Promise((resolve) => {
    const replica = new Replica(() => {
      port.close();
      resolve();
    });
    Comlink.expose(replica satisfies ReplicaApi, nodeEndpoint(port));
  });
}

export class Replica implements ReplicaApi {
  private setup!: ReplicaInit;
  private model!: tf.LayersModel;
  private variables!: tf.Variable[];
  /** The model's non-trainable weights (BatchNormalization's moving statistics...), in layout order. */
  private nonTrainableVariables!: tf.Variable[];
  /** BatchNormalization layers synchronised across replicas (parallel.syncBatchNorm, when the model has any). */
  private syncBatchNorm: SyncBatchNorm | undefined;
  private layout!: ParamLayout;
  private objective!: Objective;
  private weighting!: SampleWeighting;
  private optimizer!: ShardOptimizer;
  private learningRate!: LearningRate;
  private clipper!: GradientClipper;
  /** Clipped values of the own chunk, when clipping reads other replicas' chunks (made on first use). */
  private clipped: Float32Array | undefined;
  private control!: ControlBlock;
  private collective!: Collective;
  private views!: TrainingViews;
  private readers = new Map<SharedDataset, DatasetReader>();
  private permutation: { epoch: number; order: Int32Array } | undefined;
  /** Only while tracing. */
  private spans: SpanRecorder | undefined;

  constructor(private readonly onClose: () => void) {}

  async init(init: ReplicaInit): Promise<{ backend: string }> {
    this.setup = init;
    this.control = new ControlBlock(init.buffers.control, init.timeoutMs, init.spinMicros);
    try {
      if (init.faults?.failInit) throw new Error(`injected start failure in replica ${init.rank}`);
      await activateBackend(init.backend);
      this.model = await buildModel(init.model, init.seed);
      this.layout = ParamLayout.fromModel(this.model);
      this.layout.assertSameShapes(new ParamLayout(init.layout, init.nonTrainableLayout), `replica ${init.rank}`);
      this.variables = this.model.trainableWeights.map((w) => w.read() as tf.Variable);
      this.nonTrainableVariables = this.model.nonTrainableWeights.map((w) => w.read() as tf.Variable);
      this.objective = new Objective(init.loss, init.metrics);
      this.weighting = new SampleWeighting(init.classWeight, init.loss.name === 'sparseCategoricalCrossentropy');
      this.optimizer = createOptimizer(init.optimizer);
      this.learningRate = LearningRate.of(init.optimizer.learningRate, this.optimizer.hyperParameters.learningRate as number);
      this.clipper = new GradientClipper(init.optimizer, this.layout.entries);
      this.views = new TrainingViews(init.buffers, this.layout.length, this.layout.nonTrainableLength);
      this.spans = init.trace ? new SpanRecorder() : undefined;
      this.control.waitObserver = this.spans?.recordWait;
      this.collective = createCollective(init, this.control, this.views, this.spans);
      if (init.syncBatchNorm) this.synchroniseBatchNorm();
      this.beat();
      return { backend: tf.getBackend() };
    } catch (error) {
      this.control.abort(init.rank);
      throw error;
    }
  }

  runSteps(job: StepsJob): StepsResult {
    try {
      return this.steps(job);
    } catch (error) {
      // Wake every other replica at once; they fail with "aborted by replica r".
      this.control.abort(this.setup.rank);
      throw error;
    }
  }

  private steps(job: StepsJob): StepsResult {
    const { rank, batchSize } = this.setup;
    const { rank: worldRank, replicas: worldReplicas } = worldPlace(this.setup);
    const train = this.dataset('train');
    const reader = this.reader(train);
    const order = this.epochOrder(job.epoch, train.size);
    const row = this.views.statsRow(rank);
    const params = this.views.params;
    const ownGrads = this.views.gradSlots[rank]!;
    const times = this.spans?.phaseTimes() ?? zeroPhaseTimes();
    const result: StepsResult = { samples: 0, lossSum: 0, metricSums: this.objective.metricNames.map(() => 0), skippedSteps: 0, times };

    const k = this.setup.accumulateSteps;
    const epochSteps = stepsPerEpoch(train.size, batchSize);
    // The update being accumulated: its batches' global sample count, loss and metric sums.
    let pending = { globalCount: 0, samples: 0, lossSum: 0, metricSums: [] as number[] };
    for (let step = job.fromStep; step < job.toStep; step++) {
      const globalStep = job.updatesBefore + step - job.fromStep;
      row[StatsColumn.GLOBAL_STEP] = globalStep + 1;
      this.control.throwIfAborted();
      if (this.setup.faults?.throwAtStep === step) throw new Error(`injected fault in replica ${rank} at step ${step}`);
      if (this.setup.faults?.throwAtGlobalStep === globalStep) throw new Error(`injected fault in replica ${rank} at global step ${globalStep}`);
      if (this.setup.faults?.hangAtStep === step) for (;;);
      if (this.setup.faults?.exitAtStep === step) process.exit(1);
      const firstOfUpdate = step === job.fromStep || startsUpdate(step, k);
      const lastOfUpdate = step + 1 === job.toStep || endsUpdate(step, epochSteps, k);
      let t = now();
      const [batchFrom, batchTo] = globalBatchRange(train.size, batchSize, step);
      const globalCount = batchTo - batchFrom;
      const [sliceFrom, sliceTo] = replicaSlice(globalCount, worldReplicas, worldRank);
      const local = sliceTo - sliceFrom;
      const x = new Float32Array(local * reader.perSample);
      const y = new Float32Array(local * reader.perLabel);
      reader.gather(order, batchFrom + sliceFrom, batchFrom + sliceTo, x, y);
      const weights = this.weighting.weights(reader, order, batchFrom + sliceFrom, y);
      times.gather += now() - t;

      if (firstOfUpdate) {
        t = now();
        // Parameters change only at updates: the batches accumulated into one share them.
        this.copyParamsIn();
        times.copyIn += now() - t;
        pending = { globalCount: 0, samples: 0, lossSum: 0, metricSums: this.objective.metricNames.map(() => 0) };
      }

      t = now();
      if (local > 0) {
        const { lossSum, metricSums } = this.gradient(x, y, weights, local, train, ownGrads, times, job.epoch, step, !firstOfUpdate);
        pending.lossSum += lossSum;
        metricSums.forEach((v, i) => (pending.metricSums[i]! += v));
        if (this.setup.faults?.nanAtStep === step) ownGrads[0] = Number.NaN;
      } else if (this.syncBatchNorm) {
        this.placeholderPass(reader, train, ownGrads, times, job.epoch, step, firstOfUpdate);
      } else {
        // A batch smaller than the replica count leaves this replica without samples.
        if (firstOfUpdate) ownGrads.fill(0);
        times.compute += now() - t;
      }
      pending.globalCount += globalCount;
      pending.samples += local;
      this.beat();
      if (!lastOfUpdate) {
        // Accumulating (as DDP's no_sync): no reduction until the update's last batch.
        row[StatsColumn.STEPS] = row[StatsColumn.STEPS]! + 1;
        continue;
      }
      // BatchNormalization's statistics moved through the update's batches: their change, once.
      this.nonTrainableChange(ownGrads, pending.samples);
      const localLoss = pending.lossSum;
      row[StatsColumn.IN_COLLECTIVE] = 1;

      t = now();
      const [chunkFrom, chunkTo] = this.collective.reduceScatter(ownGrads, globalStep);
      times.reduceScatter += now() - t;

      t = now();
      // Sum-reduced losses: dividing by the global count makes N replicas equal one.
      const scale = 1 / pending.globalCount;
      let finite = Number.isFinite(localLoss);
      for (let i = chunkFrom; i < chunkTo; i++) {
        const g = ownGrads[i]! * scale;
        ownGrads[i] = g;
        if (g - g !== 0) finite = false; // NaN or ±Infinity
      }
      let skip = false;
      if (this.setup.nonFinite === 'stop') {
        if (!finite) {
          const what = Number.isFinite(localLoss) ? 'gradient' : `loss (${localLoss})`;
          const error = new Error(`non-finite ${what} at epoch ${job.epoch + 1}, step ${step + 1} (global step ${globalStep + 1})`);
          // Deterministic: restarting replicas would meet it again, so the coordinator stops.
          error.name = NON_FINITE_ERROR;
          throw error;
        }
      } else {
        // Skipping needs every replica to agree before any updates its chunk.
        skip = this.collective.any(!finite, globalStep);
      }
      if (skip) result.skippedSteps++;
      else {
        // The chunk may reach into the non-trainable weights' region after the parameters.
        const [paramFrom, paramTo] = [Math.min(chunkFrom, params.length), Math.min(chunkTo, params.length)];
        const grads = this.clippedGradient(ownGrads, paramFrom, paramTo);
        const updateStep = optimizerStep(globalStep, job.epoch, step, epochSteps, k);
        // Schedules step per update (Keras's `iterations`: the updates applied before this one).
        const rate = this.learningRate.at(updateStep - 1, job.rateAdjustment);
        this.optimizer.update(params, grads.subarray(0, params.length), this.views.optimizerState, paramFrom, paramTo, updateStep, rate);
        this.applyNonTrainableChange(ownGrads, chunkFrom, chunkTo);
        result.samples += pending.samples;
        result.lossSum += localLoss;
        pending.metricSums.forEach((v, i) => (result.metricSums[i]! += v));
      }
      times.update += now() - t;

      t = now();
      this.collective.barrier('update barrier');
      times.barrier += now() - t;
      row[StatsColumn.IN_COLLECTIVE] = 0;

      // This segment's sums so far, as the result will carry them (skipped steps left out).
      row[StatsColumn.SAMPLES] = result.samples;
      row[StatsColumn.LOSS_SUM] = result.lossSum;
      result.metricSums.forEach((v, i) => (row[StatsColumn.METRIC_SUMS + i] = v));
      row[StatsColumn.STEPS] = row[StatsColumn.STEPS]! + 1;
      this.beat();
    }
    row[StatsColumn.GLOBAL_STEP] = 0;
    if (this.spans) Object.assign(result, { times: { ...times }, spans: this.spans.take() });
    return result;
  }

  /**
   * The averaged gradient of the own chunk [from, to) after optimizer.clipNorm, clipValue or
   * globalClipNorm. Norms are over whole tensors (or the whole vector), whose chunks other
   * replicas own: every chunk must be averaged before any is read, hence the barrier. The
   * slots are not written again before the update barrier, so reading them is safe until then.
   */
  private clippedGradient(own: Float32Array, from: number, to: number): Float32Array {
    if (!this.clipper.active) return own;
    if (!this.clipper.readsOtherChunks) {
      this.clipper.clip(this.averagedGradient(), own, from, to, own);
      return own;
    }
    this.collective.barrier('gradient norm barrier');
    this.clipped ??= new Float32Array(own.length);
    this.clipper.clip(this.averagedGradient(), own, from, to, this.clipped);
    return this.clipped;
  }

  /**
   * After the reduce-scatter, chunk c of the averaged gradient is in replica c's slot. Chunks
   * are cut over the whole slot (the parameters' gradient and the non-trainable weights' change
   * after it); norms are over the parameters' part alone.
   */
  private averagedGradient(): ChunkedVector {
    const slotLength = this.views.gradSlots[0]!.length;
    const replicas = this.setup.replicas;
    return { slots: this.views.gradSlots, length: this.layout.length, chunk: (c) => chunkRange(slotLength, replicas, c) };
  }

  /** Forward and backward pass of the local slice; writes the gradient into `into` (adds it, when accumulating). */
  private gradient(x: Float32Array, y: Float32Array, weights: Float32Array | undefined, local: number, ds: SharedDataset, into: Float32Array, times: PhaseTimes, epoch: number, step: number, accumulate: boolean) {
    const started = now();
    // Only scalars leave the tidy: it would walk a returned typed array element by element.
    return tf.tidy(() => {
      const xs = tf.tensor(x, [local, ...ds.featureShape]);
      const ys = tf.tensor(y, [local, ...ds.labelShape]);
      let predictions: tf.Tensor | undefined;
      // Random layers (dropout) draw their seeds from Math.random: seeding it from the step
      // makes a run repeat exactly, and a resumed run continue exactly.
      const { value, grads } = withSeededRandomSync(mixSeed(this.setup.seed, epoch, step, worldPlace(this.setup).rank), () =>
        tf.variableGrads(() => {
          const out = this.model.apply(xs, { training: true }) as tf.Tensor;
          predictions = tf.keep(out);
          return this.lossSum(ys, out, weights, local);
        }, this.variables),
      );
      const metricSums = this.objective.metricSums(y, predictions!.dataSync() as Float32Array, local);
      predictions!.dispose();
      const lossSum = value.dataSync()[0]!;
      const computed = now();
      times.compute += computed - started;
      this.layout.entries.forEach((entry, i) => writeGradient(grads[this.variables[i]!.name]!.dataSync() as Float32Array, into, entry.offset, accumulate));
      times.copyOut += now() - computed;
      return { lossSum, metricSums };
    });
  }

  /** The loss the gradient is taken of: the samples' (weighted) losses plus this replica's share of the model's own losses. */
  private lossSum(ys: tf.Tensor, out: tf.Tensor, weights: Float32Array | undefined, samples: number): tf.Scalar {
    const samplesLoss = this.objective.lossSum(ys, out, weights);
    const layerLosses = layerLossShare(this.model, samples);
    return layerLosses ? tf.add(samplesLoss, layerLosses) : samplesLoss;
  }

  private copyParamsIn(): void {
    const params = this.views.params;
    tf.tidy(() => {
      this.layout.entries.forEach((entry, i) => {
        // slice(): a tensor must not alias shared memory that other threads rewrite.
        this.variables[i]!.assign(tf.tensor(params.slice(entry.offset, entry.offset + entry.size), entry.shape as number[]));
      });
      const nonTrainable = this.views.nonTrainable;
      this.layout.nonTrainable.forEach((entry, i) => {
        this.nonTrainableVariables[i]!.assign(tf.tensor(nonTrainable.slice(entry.offset, entry.offset + entry.size), entry.shape as number[]));
      });
    });
  }

  /** parallel.syncBatchNorm: the training passes' BatchNormalization statistics are the global batch's. */
  private synchroniseBatchNorm(): void {
    const row = this.views.statsRow(this.setup.rank);
    // The step travels with every collective operation; the row holds the current one plus one.
    const sync = new SyncBatchNorm(this.model, (buf) => this.collective.allReduce(buf, row[StatsColumn.GLOBAL_STEP]! - 1));
    if (sync.layers > 0) this.syncBatchNorm = sync;
  }

  /**
   * A replica without samples in a batch still takes part in every synchronised normalisation's
   * sums: it runs one placeholder sample that adds nothing to them (an empty batch would do, but
   * kernels are not to be trusted with empty tensors: XNNPACK refuses them). Its gradient is zero.
   */
  private placeholderPass(reader: DatasetReader, ds: SharedDataset, into: Float32Array, times: PhaseTimes, epoch: number, step: number, firstOfUpdate: boolean): void {
    this.syncBatchNorm!.placeholder = true;
    try {
      // Its gradient is thrown away: batches accumulated into `into` before it must stay.
      this.gradient(new Float32Array(reader.perSample), new Float32Array(reader.perLabel), undefined, 1, ds, new Float32Array(into.length), times, epoch, step, false);
    } finally {
      this.syncBatchNorm!.placeholder = false;
    }
    if (firstOfUpdate) into.fill(0);
  }

  /**
   * After a training forward pass (which moved BatchNormalization's statistics in this
   * replica's variables, as TensorFlow.js does), leaves in the gradient slot's non-trainable
   * region the change times the slice's sample count. The reduce-scatter sums these with the
   * gradient and the global count divides them: the world's change is the average of the
   * replicas' changes weighted by their samples (the plain average when the slices are equal),
   * and a weight no step moves (a frozen layer's) stays bitwise as it was.
   */
  private nonTrainableChange(into: Float32Array, local: number): void {
    const base = this.views.params.length;
    const shared = this.views.nonTrainable;
    this.layout.nonTrainable.forEach((entry, i) => {
      const now = this.nonTrainableVariables[i]!.dataSync();
      for (let k = 0; k < entry.size; k++) into[base + entry.offset + k] = (now[k]! - shared[entry.offset + k]!) * local;
    });
  }

  /** The owner of chunk [from, to) adds the world's (already divided) change to the non-trainable weights in it. */
  private applyNonTrainableChange(reduced: Float32Array, from: number, to: number): void {
    const base = this.views.params.length;
    const shared = this.views.nonTrainable;
    // Unmoved weights are not touched at all (-0 + 0 would be +0).
    for (let i = Math.max(from, base); i < to; i++) if (reduced[i] !== 0) shared[i - base] = shared[i - base]! + reduced[i]!;
  }

  evaluate(job: EvaluationJob): EvaluationSums {
    const ds = this.dataset(job.dataset);
    const world = worldPlace(this.setup);
    const [from, to] = replicaSlice(ds.size, world.replicas, world.rank);
    const sums: EvaluationSums = { samples: 0, lossSum: 0, metricSums: this.objective.metricNames.map(() => 0) };
    this.copyParamsIn();
    const reader = this.reader(ds);
    for (let start = from; start < to; start += job.batchSize) {
      const end = Math.min(to, start + job.batchSize);
      const n = end - start;
      const x = new Float32Array(n * reader.perSample);
      const y = new Float32Array(n * reader.perLabel);
      reader.gatherRange(start, end, x, y);
      // Per-sample weights of the data count (as Keras's validation sample weights); class weights do not.
      const weights = reader.hasWeights ? reader.gatherWeights(rangeIndices(start, end), 0, n) : undefined;
      tf.tidy(() => {
        const ys = tf.tensor(y, [n, ...ds.labelShape]);
        const out = this.model.apply(tf.tensor(x, [n, ...ds.featureShape]), { training: false }) as tf.Tensor;
        sums.lossSum += this.lossSum(ys, out, weights, n).dataSync()[0]!;
        this.objective.metricSums(y, out.dataSync() as Float32Array, n).forEach((v, i) => (sums.metricSums[i]! += v));
      });
      sums.samples += n;
      this.beat();
    }
    return sums;
  }

  predict(job: PredictionJob): number {
    const ds = job.inputs;
    const [from, to] = replicaSlice(ds.size, this.setup.replicas, this.setup.rank);
    const outputs = new Float32Array(job.outputs);
    this.copyParamsIn();
    const reader = this.reader(ds);
    for (let start = from; start < to; start += job.batchSize) {
      const end = Math.min(to, start + job.batchSize);
      const x = new Float32Array((end - start) * reader.perSample);
      reader.gatherRange(start, end, x, new Float32Array((end - start) * reader.perLabel));
      const values = tf.tidy(() => (this.model.apply(tf.tensor(x, [end - start, ...ds.featureShape]), { training: false }) as tf.Tensor).dataSync());
      outputs.set(values, start * job.outputSize);
      this.beat();
    }
    return to - from;
  }

  tensorCount(): number {
    return tf.memory().numTensors;
  }

  close(): void {
    this.model?.dispose();
    // Let comlink post this call's reply before the port closes.
    setImmediate(this.onClose);
  }

  /** Tells the coordinator's watchdog that this replica is making progress. */
  private beat(): void {
    const row = this.views.statsRow(this.setup.rank);
    row[StatsColumn.HEARTBEAT] = row[StatsColumn.HEARTBEAT]! + 1;
  }

  private dataset(role: DatasetRole): SharedDataset {
    const ds = this.setup.datasets[role];
    if (!ds) throw new Error(`replica ${this.setup.rank} has no ${role} dataset`);
    return ds;
  }

  private reader(ds: SharedDataset): DatasetReader {
    let reader = this.readers.get(ds);
    if (!reader) {
      reader = new DatasetReader(ds);
      this.readers.set(ds, reader);
    }
    return reader;
  }

  private epochOrder(epoch: number, size: number): Int32Array {
    if (this.permutation?.epoch !== epoch) {
      this.permutation = { epoch, order: epochPermutation(size, this.setup.seed, epoch, this.setup.shuffle) };
    }
    return this.permutation.order;
  }
}


/** Copies a variable's gradient into the flat gradient at `offset`, or adds it (accumulation). */
function writeGradient(grad: Float32Array, into: Float32Array, offset: number, accumulate: boolean): void {
  if (!accumulate) {
    into.set(grad, offset);
    return;
  }
  for (let i = 0; i < grad.length; i++) into[offset + i] = into[offset + i]! + grad[i]!;
}

function rangeIndices(from: number, to: number): Int32Array {
  return Int32Array.from({ length: to - from }, (_, i) => from + i);
}

/** This replica's place among all replicas of the world (process by process). */
function worldPlace(init: ReplicaInit): { rank: number; replicas: number } {
  return { rank: init.world.replicaOffset + init.rank, replicas: init.world.replicas };
}

/** Threads alone, or threads composed with the other processes through the bridge. */
function createCollective(init: ReplicaInit, control: ControlBlock, views: TrainingViews, spans?: SpanRecorder): Collective {
  const local = new ShmCollective(init.rank, init.replicas, control, init.buffers.ring, init.reduceScatter, views.gradSlots);
  const bridge = init.buffers.bridge && new BridgeClient(control, init.buffers.bridge);
  const collective = bridge ? new HierarchicalCollective(local, bridge) : local;
  if (spans) {
    spans.traceMethod(local, 'reduceScatter', SpanKind.IN_PROCESS);
    if (bridge) spans.traceMethod(bridge, 'allReduceRange', SpanKind.ACROSS_PROCESSES);
    spans.traceMethod(collective, 'any', SpanKind.FLAG_AGREEMENT);
  }
  return collective;
}
