/**
 * What a resumed run may take from a checkpoint: everything, when the checkpoint was written by
 * the same model, optimizer and batch schedule; the weights alone (warm start) otherwise. A
 * mismatch is refused with a message that says what differs.
 */
import { canonicalDataInfo, type DataInfo } from '../data/data-info.js';
import type { RunConfig } from '../config/schema.js';
import { UserError } from '../errors.js';
import type { ParamLayout } from '../model/param-layout.js';
import type { ShardOptimizer } from '../optim/optimizer.js';
import type { CheckpointState } from './state.js';

const shapes = (entries: readonly { name: string; shape: readonly number[] }[]) => entries.map((e) => `${e.name}[${e.shape.join(',')}]`).join(' ');

/** Every difference that makes an exact resume impossible, as sentences. */
export function resumeMismatches(state: CheckpointState, config: RunConfig, layout: ParamLayout, optimizer: ShardOptimizer): string[] {
  const problems: string[] = [];
  const weightProblem = weightsMismatch(state, layout);
  if (weightProblem) problems.push(weightProblem);
  const saved = state.optimizer;
  if (saved.name !== optimizer.name) {
    problems.push(`the optimizer differs: the checkpoint has ${saved.name}, the config ${optimizer.name}`);
  } else {
    for (const [key, value] of Object.entries(optimizer.hyperParameters)) {
      if (saved.hyperParameters[key] !== value) {
        problems.push(`optimizer.${key} differs: the checkpoint has ${String(saved.hyperParameters[key])}, the config ${String(value)}`);
      }
    }
  }
  // A schedule stands in the hyper-parameters by its first rate alone; the rest of it, and
  // reduce-on-plateau, must match too for the rates to continue as they would have.
  const savedRate = JSON.stringify(state.config.optimizer?.learningRate ?? null);
  const rate = JSON.stringify(config.optimizer.learningRate ?? null);
  if ((typeof config.optimizer.learningRate === 'object' || typeof state.config.optimizer?.learningRate === 'object') && savedRate !== rate) {
    problems.push(`the learning-rate schedule differs: the checkpoint has ${savedRate}, the config ${rate}`);
  }
  const savedPlateau = JSON.stringify(state.config.training.reduceLrOnPlateau ?? null);
  const plateau = JSON.stringify(config.training.reduceLrOnPlateau ?? null);
  if (savedPlateau !== plateau) problems.push(`training.reduceLrOnPlateau differs: the checkpoint has ${savedPlateau}, the config ${plateau}`);
  // The same global batches in the same order need the same batch size, seed and shuffling.
  const training = state.config.training;
  for (const key of ['batchSize', 'seed', 'shuffle', 'validationSplit'] as const) {
    if (training[key] !== config.training[key]) {
      problems.push(`training.${key} differs: the checkpoint has ${String(training[key])}, the config ${String(config.training[key])}`);
    }
  }
  // The optimizer's step counts updates: another accumulation would renumber them (older checkpoints had none).
  const savedAccumulation = training.accumulateSteps ?? 1;
  // Both sides may come from a config written before accumulation (no field: 1).
  const accumulation = config.training.accumulateSteps ?? 1;
  if (savedAccumulation !== accumulation) {
    problems.push(`training.accumulateSteps differs: the checkpoint has ${savedAccumulation}, the config ${accumulation}`);
  }
  if (state.config.loss.name !== config.loss.name || state.config.loss.fromLogits !== config.loss.fromLogits) {
    problems.push(`the loss differs: the checkpoint has ${state.config.loss.name}, the config ${config.loss.name}`);
  }
  // The sums of a partial epoch are kept per metric.
  const savedMetrics: readonly string[] = state.config.metrics ?? [];
  if (savedMetrics.join(',') !== config.metrics.join(',')) {
    problems.push(`the metrics differ: the checkpoint has [${savedMetrics.join(', ')}], the config [${config.metrics.join(', ')}]`);
  }
  return problems;
}

/** Why the checkpoint's weights cannot be loaded into this model, if they cannot. */
export function weightsMismatch(state: CheckpointState, layout: ParamLayout): string | undefined {
  const stateShapes = state.layout.map((e) => `[${e.shape.join(',')}]`).join(' ');
  const modelShapes = layout.entries.map((e) => `[${e.shape.join(',')}]`).join(' ');
  if (stateShapes !== modelShapes) return `the model differs: the checkpoint has ${shapes(state.layout)}, the config's model ${shapes(layout.entries)}`;
  const saved = state.nonTrainableLayout ?? [];
  if (saved.map((e) => `[${e.shape.join(',')}]`).join(' ') === layout.nonTrainable.map((e) => `[${e.shape.join(',')}]`).join(' ')) return undefined;
  if (saved.length === 0) {
    // Written before ringtrain kept them: its moving statistics were never trained, so they are lost.
    return `the checkpoint has no non-trainable weights (it was written by a ringtrain that did not save them), the config's model has ${shapes(layout.nonTrainable)}`;
  }
  return `the model's non-trainable weights differ: the checkpoint has ${shapes(saved)}, the config's model ${shapes(layout.nonTrainable) || 'none'}`;
}

export function assertResumable(file: string, state: CheckpointState, config: RunConfig, layout: ParamLayout, optimizer: ShardOptimizer, dataInfo?: DataInfo): void {
  const problems = resumeMismatches(state, config, layout, optimizer);
  // Class ids and category indices come from the data: other data would give them other meanings.
  const saved = canonicalDataInfo(state.dataInfo);
  const now = canonicalDataInfo(dataInfo);
  if (saved !== now) problems.push(`the data's classes, columns or categories differ: the checkpoint has ${saved}, the data ${now}`);
  if (problems.length > 0) {
    throw new UserError(`cannot resume from ${file}: ${problems.join('; ')}`, {
      hint: weightsMismatch(state, layout) ? undefined : 'pass --warm-start to start a new run from its weights alone',
    });
  }
}

/** The checkpoint's next step must be a step of an epoch of this run's data. */
export function assertPositionFits(file: string, state: CheckpointState, stepsPerEpoch: number): void {
  const step = state.position.stepInEpoch;
  if (step >= stepsPerEpoch) {
    throw new UserError(
      `cannot resume from ${file}: position.stepInEpoch: expected less than ${stepsPerEpoch} (the steps of an epoch of this run's data), found ${step}`,
    );
  }
}

export function assertWarmStartable(file: string, state: CheckpointState, layout: ParamLayout): void {
  const problem = weightsMismatch(state, layout);
  if (problem) throw new UserError(`cannot warm-start from ${file}: ${problem}`);
}
