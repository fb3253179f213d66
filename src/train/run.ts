/**
 * One whole run as the CLI and `train()` do it: create the trainer, fit, evaluate, summarise.
 */
import type { RunConfig } from '../config/schema.js';
import type { EpochEvent, Evaluation, LossAndMetrics } from './events.js';
import { Trainer, type TrainerOptions } from './trainer.js';

/** Models with at most this many parameters list them in the summary (e.g. linear's θ0, θ1). */
const SUMMARY_PARAMS_LIMIT = 64;

export interface TrainSummary {
  event: 'summary';
  name: string;
  /** Replicas (threads) of this process. */
  workers: number;
  /** Processes in the world (1 without a launcher), and their replicas together. */
  processes: number;
  replicas: number;
  backend: string;
  epochs: number;
  parameters: number;
  samplesPerSec: number;
  wallSeconds: number;
  /** The last epoch's training loss and metrics. */
  final: LossAndMetrics;
  /** The last epoch's validation loss and metrics, when the run validates. */
  validation?: LossAndMetrics;
  /** Loss and metrics after training on the data config.evaluation.on names (absent when stopped early). */
  evaluation?: Evaluation & { on: 'test' | 'train' };
  /** Set when a callback (early stopping) ended training before its last epoch: the epochs trained, and why. */
  stoppedEarly?: { epoch: number; reason: string };
  /** Set when the run was stopped (stop(), or a signal) before its last epoch. */
  stopped?: { epoch: number; stepInEpoch: number; checkpoint?: string };
  params?: { name: string; shape: number[]; values: number[] }[];
}

export async function train(config: RunConfig, options: TrainerOptions = {}): Promise<TrainSummary> {
  const started = performance.now();
  const trainer = await Trainer.create(config, options);
  try {
    const history = await trainer.fit();
    if (trainer.stopped) {
      const summary = summarise(trainer, history, config.evaluation.on, undefined, (performance.now() - started) / 1000);
      return { ...summary, stopped: { ...trainer.position, checkpoint: trainer.checkpointsWritten.at(-1) } };
    }
    const on = config.evaluation.on;
    const evaluation = await trainer.evaluate(on === 'test' && trainer.datasets.test ? 'test' : 'train');
    const summary = summarise(trainer, history, on, evaluation, (performance.now() - started) / 1000);
    const reason = trainer.stopReason;
    return reason === undefined ? summary : { ...summary, stoppedEarly: { epoch: trainer.position.epoch, reason } };
  } finally {
    await trainer.close();
  }
}

export function summarise(trainer: Trainer, history: EpochEvent[], on: 'test' | 'train', evaluation: Evaluation | undefined, wallSeconds: number): TrainSummary {
  const last = history[history.length - 1];
  const samples = history.reduce((n, e) => n + e.samples, 0);
  const seconds = history.reduce((n, e) => n + e.seconds, 0);
  return {
    event: 'summary',
    name: trainer.config.name,
    workers: trainer.workers,
    processes: trainer.processes.size,
    replicas: trainer.worldReplicas,
    backend: trainer.backend,
    epochs: history.length,
    parameters: trainer.layout.length,
    samplesPerSec: seconds > 0 ? samples / seconds : 0,
    wallSeconds,
    final: last ? { loss: last.loss, metrics: last.metrics } : { loss: Number.NaN, metrics: {} },
    validation: last?.validation && { loss: last.validation.loss, metrics: last.validation.metrics },
    evaluation: evaluation && { on, ...evaluation },
    params: trainer.layout.length <= SUMMARY_PARAMS_LIMIT ? trainer.namedParams() : undefined,
  };
}
