/**
 * The contents of a checkpoint whose checksums and framing are fine (format.ts has checked
 * them): do the decoded fields make sense together? A file crafted or written by a broken
 * tool can pass every CRC and still hold a config that is not a config, an optimizer without
 * its state, a history of numbers or a position that cannot be. Each such problem is a
 * CheckpointError ('contents') that names the file, the field, what was expected and what was
 * found, on one line (CheckpointError escapes control characters): `<file>: invalid contents:
 * <field>: expected ..., found ...`.
 *
 * The embedded config is checked with the same schema as a config file (parseRunConfig), so
 * its messages are the config messages, with the field prefixed by `config.`; only the bounds
 * that depend on the machine reading it (workers per core, the memory estimate) are left out.
 */
import { parseRunConfig } from '../config/load.js';
import { formatValue } from '../config/format.js';
import type { RunConfig } from '../config/schema.js';
import { ConfigError } from '../errors.js';
import { createOptimizer } from '../optim/create-optimizer.js';
import { LearningRate } from '../optim/learning-rate.js';
import { OPTIMIZER_NAMES, type OptimizerSpec } from '../optim/optimizer.js';
import { CheckpointError } from './errors.js';
import type { CheckpointState } from './state.js';

/** Marks the in-progress epoch's sums in a checkpoint's history (run-state.ts writes it). */
export const PARTIAL_EPOCH_EVENT = 'partial-epoch';

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

const isCount = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
const isNumber = (value: unknown): value is number => typeof value === 'number';
const isFiniteNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

class ContentsChecker {
  constructor(readonly file: string) {}

  fail(field: string, expected: string, found: string): never {
    throw new CheckpointError(this.file, 'contents', `invalid contents: ${field}: expected ${expected}, found ${found}`);
  }

  expect(ok: boolean, field: string, expected: string, found: unknown): void {
    if (!ok) this.fail(field, expected, formatValue(found));
  }
}

/** The embedded run config, checked with the config schema. */
function checkConfig(c: ContentsChecker, config: unknown): RunConfig {
  if (!isRecord(config)) c.fail('config', 'a run config (a JSON object)', formatValue(config));
  try {
    // Without the bounds about this machine (its cores, its memory): a checkpoint written on a
    // 16-core machine with 16 workers is read on a laptop too. A resumed run's own config is
    // checked against this machine when it is loaded.
    return parseRunConfig(config, { machineChecks: false });
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new CheckpointError(c.file, 'contents', `invalid contents: config${error.path ? '.' : ': '}${error.message}`, { cause: error });
    }
    throw new CheckpointError(c.file, 'contents', `invalid contents: config: ${(error as Error).message}`, { cause: error });
  }
}

function checkLayout(c: ContentsChecker, state: CheckpointState): void {
  c.expect(state.layout.length > 0, 'layout', 'at least one trainable weight', state.layout);
  const names = new Set<string>();
  let end = 0;
  state.layout.forEach((entry, i) => {
    const field = `layout[${i}]`;
    // eslint-disable-next-line no-control-regex
    c.expect(typeof entry.name === 'string' && entry.name !== '' && !/[\u0000-\u001f\u007f]/.test(entry.name), `${field}.name`, 'a weight name (no control characters)', entry.name);
    c.expect(!names.has(entry.name), `${field}.name`, 'a name not used by another weight', entry.name);
    names.add(entry.name);
    entry.shape.forEach((d, j) => c.expect(d >= 1, `${field}.shape[${j}]`, 'a dimension >= 1', d));
    // ParamLayout lays the weights out one after another, in the model's order.
    c.expect(entry.offset === end, `${field}.offset`, `${end} (right after the previous weight)`, entry.offset);
    end = entry.offset + entry.size;
  });
  c.expect(state.params.length === end, 'params', `${end} values (the layout's end)`, `${state.params.length} values`);
  // The non-trainable weights (format.ts has checked their offsets and length).
  (state.nonTrainableLayout ?? []).forEach((entry, i) => {
    const field = `nonTrainableLayout[${i}]`;
    // eslint-disable-next-line no-control-regex
    c.expect(typeof entry.name === 'string' && entry.name !== '' && !/[\u0000-\u001f\u007f]/.test(entry.name), `${field}.name`, 'a weight name (no control characters)', entry.name);
    c.expect(!names.has(entry.name), `${field}.name`, 'a name not used by another weight', entry.name);
    names.add(entry.name);
    entry.shape.forEach((d, j) => c.expect(d >= 1, `${field}.shape[${j}]`, 'a dimension >= 1', d));
  });
}

function checkOptimizer(c: ContentsChecker, state: CheckpointState, config: RunConfig): void {
  const saved = state.optimizer;
  c.expect((OPTIMIZER_NAMES as readonly string[]).includes(saved.name), 'optimizer.name', `one of ${OPTIMIZER_NAMES.join(', ')}`, saved.name);
  c.expect(saved.name === config.optimizer.name, 'optimizer.name', `"${config.optimizer.name}" (config.optimizer.name)`, saved.name);
  for (const [key, value] of Object.entries(saved.hyperParameters)) {
    c.expect(typeof value === 'boolean' || isFiniteNumber(value), `optimizer.hyperParameters.${key}`, 'a finite number or true/false', value);
  }
  // The optimizer the saved hyper-parameters make: it validates their ranges and says which
  // state arrays it keeps (e.g. adam: m, v; sgd with momentum: momentum).
  let expected;
  try {
    expected = createOptimizer({ name: saved.name, ...saved.hyperParameters } as OptimizerSpec);
  } catch (error) {
    c.fail('optimizer.hyperParameters', `valid ${saved.name} hyper-parameters`, (error as Error).message);
  }
  for (const key of Object.keys(expected.hyperParameters)) {
    c.expect(key in saved.hyperParameters, `optimizer.hyperParameters.${key}`, `a value (${saved.name} keeps one)`, undefined);
  }
  const names = saved.state.map((t) => t.name);
  const list = (n: readonly string[]) => (n.length === 0 ? 'none' : n.join(', '));
  if (names.join('\u0000') !== expected.stateNames.join('\u0000')) {
    c.fail('optimizer.state', `the ${saved.name} state ${list(expected.stateNames)}`, list(names));
  }
  c.expect(saved.step === state.position.globalStep, 'optimizer.step', `${state.position.globalStep} (position.globalStep)`, saved.step);
}

/** The saved rate must be the one the config's schedule and the plateau state give at globalStep. */
function checkLearningRate(c: ContentsChecker, state: CheckpointState, config: RunConfig): void {
  const saved = state.learningRate;
  if (!saved) return;
  const p = saved.plateau;
  if (p) {
    c.expect(config.training.reduceLrOnPlateau !== undefined, 'learningRate.plateau', 'none (config.training.reduceLrOnPlateau is not set)', 'a plateau state');
    c.expect(isNumber(p.best) && !Number.isNaN(p.best), 'learningRate.plateau.best', 'a number or +-Infinity', p.best);
    c.expect(isFiniteNumber(p.scale) && p.scale > 0 && p.scale <= 1, 'learningRate.plateau.scale', 'a number > 0 and <= 1', p.scale);
    const cooldown = config.training.reduceLrOnPlateau?.cooldown ?? 0;
    c.expect(p.cooldownCounter <= cooldown, 'learningRate.plateau.cooldownCounter', `at most ${cooldown} (config.training.reduceLrOnPlateau.cooldown)`, p.cooldownCounter);
  }
  // With gradient accumulation the schedule counts updates, which depend on the epoch's length
  // (not in the checkpoint): the rate is checked for k = 1 alone.
  if ((config.training.accumulateSteps ?? 1) > 1) return;
  let expected: number;
  try {
    const constant = createOptimizer(config.optimizer).hyperParameters.learningRate as number;
    expected = LearningRate.of(config.optimizer.learningRate, constant).at(state.position.globalStep, p ? { scale: p.scale, floor: config.training.reduceLrOnPlateau!.minLr } : undefined);
  } catch {
    return; // checkOptimizer has said what is wrong with the optimizer
  }
  c.expect(saved.current === expected, 'learningRate.current', `${expected} (the config's learning rate at position.globalStep)`, saved.current);
}

function checkPosition(c: ContentsChecker, state: CheckpointState, config: RunConfig): void {
  const p = state.position;
  // Every update takes at most one global batch; skipped steps take none.
  const most = p.globalStep * config.training.batchSize;
  c.expect(p.samplesSeen <= most, 'position.samplesSeen', `at most ${most} (globalStep x config.training.batchSize)`, p.samplesSeen);
  c.expect(state.sampler.seed === config.training.seed, 'sampler.seed', `${config.training.seed} (config.training.seed)`, state.sampler.seed);
  c.expect(state.sampler.shuffle === config.training.shuffle, 'sampler.shuffle', `${config.training.shuffle} (config.training.shuffle)`, state.sampler.shuffle);
  c.expect(Number.isInteger(state.replicas) && state.replicas >= 1, 'replicas', 'an integer >= 1', state.replicas);
}

function checkHistory(c: ContentsChecker, state: CheckpointState, config: RunConfig): void {
  const history: unknown = state.history;
  c.expect(Array.isArray(history), 'history', 'an array of epoch records', history);
  (history as unknown[]).forEach((record, i) => {
    const field = `history[${i}]`;
    c.expect(isRecord(record), field, 'an epoch record (a JSON object)', record);
    const r = record as Record<string, unknown>;
    if (r.event === PARTIAL_EPOCH_EVENT) {
      // The sums of the epoch in progress, which a resumed run adds to (run-state.ts).
      c.expect(i === (history as unknown[]).length - 1, field, 'the partial epoch as the last record', `it at ${i} of ${(history as unknown[]).length}`);
      c.expect(state.position.stepInEpoch > 0, field, 'no partial epoch at the start of an epoch (position.stepInEpoch 0)', 'one');
      for (const key of ['samples', 'lossSum', 'seconds'] as const) c.expect(isNumber(r[key]), `${field}.${key}`, 'a number', r[key]);
      if (r.skippedSteps !== undefined) c.expect(isCount(r.skippedSteps), `${field}.skippedSteps`, 'an integer >= 0', r.skippedSteps);
      const sums = r.metricSums;
      c.expect(
        Array.isArray(sums) && sums.length === config.metrics.length && sums.every(isNumber),
        `${field}.metricSums`,
        `${config.metrics.length} numbers (one per metric of config.metrics)`,
        sums,
      );
      c.expect(Array.isArray(r.times) && r.times.every(isRecord), `${field}.times`, 'an array of phase times', r.times);
    } else if (r.type === 'epoch') {
      c.expect(isCount(r.epoch) && r.epoch >= 1, `${field}.epoch`, 'an integer >= 1', r.epoch);
      c.expect(isNumber(r.loss), `${field}.loss`, 'a number', r.loss);
      c.expect(isCount(r.samples), `${field}.samples`, 'an integer >= 0', r.samples);
      c.expect(r.metrics === undefined || isRecord(r.metrics), `${field}.metrics`, 'an object of metric values', r.metrics);
    }
  });
}

function checkTopology(c: ContentsChecker, topology: unknown): void {
  const t = topology as Record<string, unknown>;
  c.expect(isRecord(topology) && typeof t.class_name === 'string' && isRecord(t.config), 'modelTopology', 'a TensorFlow.js model topology (class_name and config)', topology);
}

/**
 * Throws a CheckpointError ('contents') naming `file` and the first field that does not make
 * sense; returns the state unchanged otherwise.
 */
export function checkCheckpointContents(state: CheckpointState, file: string): CheckpointState {
  const c = new ContentsChecker(file);
  const config = checkConfig(c, state.config);
  checkTopology(c, state.modelTopology);
  checkLayout(c, state);
  checkOptimizer(c, state, config);
  checkLearningRate(c, state, config);
  checkPosition(c, state, config);
  checkHistory(c, state, config);
  const callbackNames = new Set<string>();
  (state.callbacks ?? []).forEach((s, i) => {
    c.expect(s.name !== '' && !callbackNames.has(s.name), `callbacks[${i}].name`, 'a name not used by another callback state', s.name);
    callbackNames.add(s.name);
  });
  const rngNames = new Set<string>();
  state.rngStates.forEach((s, i) => {
    c.expect(s.name !== '' && !rngNames.has(s.name), `rngStates[${i}].name`, 'a name not used by another RNG state', s.name);
    rngNames.add(s.name);
  });
  return state;
}
