/**
 * What `ringtrain inspect <ckpt>` shows: `describeCheckpoint` builds a plain, JSON-ready
 * description of a (verified) checkpoint, `formatCheckpoint` turns it into text.
 */
import { statSync } from 'node:fs';
import { crc32c, formatCrc } from './crc32c.js';
import { CHECKPOINT_FORMAT_NAME, CHECKPOINT_FORMAT_VERSION } from './format.js';
import type { DataInfo } from '../data/data-info.js';
import { NON_TRAINABLE_TENSOR, PARAMS_TENSOR, type CheckpointLearningRate, type CheckpointState } from './state.js';

export interface CheckpointDescription {
  file: string;
  /** Size of the file, when it could be looked at. */
  fileBytes?: number;
  format: string;
  formatVersion: number;
  ringtrainVersion: string;
  createdAt: string;
  replicas: number;
  config: {
    name: string;
    /** 'layers' (inputShape + layers in the config) or 'topology' (a model.json). */
    modelKind: string;
    /** e.g. "Sequential: flatten, dense(units: 16, activation: relu)" or "topology models/x.json". */
    model: string;
    /** The model topology's class_name, e.g. Sequential. */
    modelClass?: string;
    layers?: number;
    inputShape?: number[];
    /** e.g. "adam (learningRate: 0.001)". */
    optimizer: string;
    loss: string;
    data: string;
    batchSize?: number;
    epochs?: number;
    seed?: number;
    shuffle?: boolean;
  };
  /** The next step to run is (epoch, stepInEpoch). */
  position: { epoch: number; stepInEpoch: number; globalStep: number; samplesSeen: number };
  sampler: { seed: number; shuffle: boolean };
  parameters: number;
  layout: { name: string; shape: number[]; offset: number; size: number }[];
  /** Non-trainable weights (BatchNormalization's moving statistics...); absent when there are none. */
  nonTrainableLayout?: { name: string; shape: number[]; offset: number; size: number }[];
  tensors: { name: string; role: 'params' | 'optimizer state' | 'non-trainable'; shape: number[]; dtype: 'float32'; bytes: number; crc32c: string }[];
  optimizer: { name: string; step: number; hyperParameters: Record<string, number | boolean>; stateNames: string[] };
  /** The next update's rate and reduce-on-plateau's state (absent in older checkpoints). */
  learningRate?: CheckpointLearningRate;
  rngStates: { name: string; bytes: number }[];
  history: { length: number; last: object | null };
  /** Class names, CSV columns and categories of the data, when the run read the user's files. */
  dataInfo?: DataInfo;
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function str(value: unknown, fallback = '?'): string {
  return typeof value === 'string' ? value : fallback;
}

function num(value: unknown): number | undefined {
  return typeof value === 'number' ? value : undefined;
}

/** Compact JSON that keeps NaN and the infinities visible (JSON.stringify would print null). */
function compact(value: unknown): string {
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : String(value);
  if (Array.isArray(value)) return `[${value.map(compact).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${JSON.stringify(k)}:${compact(v)}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? String(value);
}

function args(values: Record<string, unknown>, skip: readonly string[] = []): string {
  return Object.entries(values)
    .filter(([key, value]) => !skip.includes(key) && value !== undefined)
    .map(([key, value]) => `${key}: ${typeof value === 'string' ? value : compact(value)}`)
    .join(', ');
}

function describeModel(config: Record<string, unknown>, topology: Record<string, unknown>): CheckpointDescription['config'] {
  const model = record(config.model);
  const modelClass = typeof topology.class_name === 'string' ? topology.class_name : undefined;
  const optimizer = record(config.optimizer);
  const loss = record(config.loss);
  const data = record(config.data);
  const training = record(config.training);
  const base = {
    name: str(config.name),
    optimizer: `${str(optimizer.name)}${args(optimizer, ['name']) ? ` (${args(optimizer, ['name'])})` : ''}`,
    loss: `${str(loss.name)}${loss.fromLogits === true ? ' (from logits)' : ''}`,
    data: config.data === undefined ? 'passed in code (the config has no data section)' : `${str(data.source)}${args(data, ['source']) ? ` (${args(data, ['source'])})` : ''}`,
    batchSize: num(training.batchSize),
    epochs: num(training.epochs),
    seed: num(training.seed),
    shuffle: typeof training.shuffle === 'boolean' ? training.shuffle : undefined,
  };
  if (typeof model.topology === 'string') {
    return { ...base, modelKind: 'topology', model: `topology ${model.topology}`, ...(modelClass ? { modelClass } : {}) };
  }
  const layers = Array.isArray(model.layers) ? model.layers.map(record) : [];
  const inputShape = Array.isArray(model.inputShape) ? (model.inputShape as number[]) : undefined;
  const list = layers.map((layer) => `${str(layer.type)}${args(layer, ['type']) ? `(${args(layer, ['type'])})` : ''}`).join(', ');
  return {
    ...base,
    modelKind: 'layers',
    model: `${modelClass ?? 'model'}${inputShape ? ` on [${inputShape.join(', ')}]` : ''}: ${list}`,
    ...(modelClass ? { modelClass } : {}),
    layers: layers.length,
    ...(inputShape ? { inputShape } : {}),
  };
}

/**
 * A JSON-ready description of a checkpoint read from `file`. The tensors' CRC32Cs are those
 * of the data (equal to the ones stored, since reading verified them).
 */
export function describeCheckpoint(state: CheckpointState, file: string): CheckpointDescription {
  let fileBytes: number | undefined;
  try {
    fileBytes = statSync(file).size;
  } catch {
    fileBytes = undefined;
  }
  const tensor = (name: string, role: CheckpointDescription['tensors'][number]['role'], shape: number[], values: Float32Array) => ({
    name,
    role,
    shape: [...shape],
    dtype: 'float32' as const,
    bytes: values.byteLength,
    crc32c: formatCrc(crc32c(new Uint8Array(values.buffer, values.byteOffset, values.byteLength))),
  });
  const last = state.history.length > 0 ? state.history[state.history.length - 1]! : null;
  return {
    file,
    ...(fileBytes === undefined ? {} : { fileBytes }),
    format: CHECKPOINT_FORMAT_NAME,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    ringtrainVersion: state.ringtrainVersion,
    createdAt: state.createdAt,
    replicas: state.replicas,
    config: describeModel(record(state.config), record(state.modelTopology)),
    position: { ...state.position },
    sampler: { ...state.sampler },
    parameters: state.params.length,
    layout: state.layout.map((e) => ({ name: e.name, shape: [...e.shape], offset: e.offset, size: e.size })),
    ...(state.nonTrainableLayout ? { nonTrainableLayout: state.nonTrainableLayout.map((e) => ({ name: e.name, shape: [...e.shape], offset: e.offset, size: e.size })) } : {}),
    tensors: [
      tensor(PARAMS_TENSOR, 'params', [state.params.length], state.params),
      ...(state.nonTrainable ? [tensor(NON_TRAINABLE_TENSOR, 'non-trainable', [state.nonTrainable.length], state.nonTrainable)] : []),
      ...state.optimizer.state.map((t) => tensor(t.name, 'optimizer state', t.shape, t.values)),
    ],
    optimizer: {
      name: state.optimizer.name,
      step: state.optimizer.step,
      hyperParameters: { ...state.optimizer.hyperParameters },
      stateNames: state.optimizer.state.map((t) => t.name),
    },
    ...(state.learningRate ? { learningRate: { ...state.learningRate, ...(state.learningRate.plateau ? { plateau: { ...state.learningRate.plateau } } : {}) } } : {}),
    rngStates: state.rngStates.map((r) => ({ name: r.name, bytes: r.state.length })),
    history: { length: state.history.length, last },
    ...(state.dataInfo === undefined ? {} : { dataInfo: state.dataInfo }),
  };
}

const count = (n: number) => n.toLocaleString('en-US');

function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let value = n;
  let unit = -1;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** Columns padded to their widest cell, two spaces apart. */
function table(rows: string[][], indent: string): string[] {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => indent + row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
}

function describePlateau(p: CheckpointLearningRate['plateau']): string {
  return p ? ` (reduce-on-plateau: scale ${p.scale}, best ${p.best}, wait ${p.wait}, cooldown ${p.cooldownCounter})` : '';
}

/** The description as text, one fact per line, for people. */
export function formatCheckpoint(desc: CheckpointDescription): string {
  const c = desc.config;
  const p = desc.position;
  const flag = (on: boolean | undefined) => (on === undefined ? '?' : on ? 'on' : 'off');
  const training = [
    c.batchSize === undefined ? undefined : `batch size ${c.batchSize}`,
    c.epochs === undefined ? undefined : `${c.epochs} epoch${c.epochs === 1 ? '' : 's'}`,
  ].filter((s) => s !== undefined);
  const hyper = args(desc.optimizer.hyperParameters);
  const lines: string[] = [
    `checkpoint   ${desc.file}${desc.fileBytes === undefined ? '' : ` (${bytes(desc.fileBytes)})`}`,
    `format       ${desc.format} v${desc.formatVersion}, written by ringtrain ${desc.ringtrainVersion} at ${desc.createdAt} (${desc.replicas} replica${desc.replicas === 1 ? '' : 's'})`,
    `run          ${c.name}`,
    `model        ${c.model}`,
    `optimizer    ${desc.optimizer.name}, step ${count(desc.optimizer.step)}${hyper ? `; ${hyper}` : ''}`,
    `             state: ${desc.optimizer.stateNames.length > 0 ? desc.optimizer.stateNames.join(', ') : 'none'}`,
    ...(desc.learningRate ? [`             learning rate ${desc.learningRate.current}${describePlateau(desc.learningRate.plateau)}`] : []),
    `loss         ${c.loss}`,
    `data         ${c.data}`,
    ...dataInfoLines(desc.dataInfo),
    `training     ${training.length > 0 ? training.join(', ') : '?'}`,
    `position     next step: epoch ${p.epoch}, step ${p.stepInEpoch} of the epoch; global step ${count(p.globalStep)}, ${count(p.samplesSeen)} samples seen`,
    `sampler      seed ${desc.sampler.seed}, shuffle ${flag(desc.sampler.shuffle)}`,
    `rng states   ${desc.rngStates.length > 0 ? desc.rngStates.map((r) => `${r.name} (${r.bytes} bytes)`).join(', ') : 'none'}`,
    `parameters   ${count(desc.parameters)} in ${desc.layout.length} weight${desc.layout.length === 1 ? '' : 's'}`,
    ...table(
      desc.layout.map((e) => [e.name, `[${e.shape.join(', ')}]`, `offset ${count(e.offset)}`, `size ${count(e.size)}`]),
      '  ',
    ),
    ...(desc.nonTrainableLayout
      ? [
          `non-trainable ${count(desc.nonTrainableLayout.reduce((n, e) => n + e.size, 0))} in ${desc.nonTrainableLayout.length} weight${desc.nonTrainableLayout.length === 1 ? '' : 's'}`,
          ...table(desc.nonTrainableLayout.map((e) => [e.name, `[${e.shape.join(', ')}]`, `offset ${count(e.offset)}`, `size ${count(e.size)}`]), '  '),
        ]
      : []),
    'tensors',
    ...table(
      desc.tensors.map((t) => [t.name, t.role === 'params' ? 'parameters' : t.role, `[${t.shape.join(', ')}]`, t.dtype, bytes(t.bytes), `crc32c ${t.crc32c}`]),
      '  ',
    ),
    `history      ${desc.history.length} record${desc.history.length === 1 ? '' : 's'}${desc.history.last === null ? '' : `; last: ${compact(desc.history.last)}`}`,
  ];
  return `${lines.join('\n')}\n`;
}

/** The data info as indented lines under `data`. */
function dataInfoLines(info: DataInfo | undefined): string[] {
  if (info === undefined) return [];
  const lines: string[] = [];
  if (info.classNames) lines.push(`  classes    ${info.classNames.length}: ${info.classNames.join(', ')}`);
  if (info.featureColumns) lines.push(`  features   ${info.featureColumns.join(', ')}${info.labelColumn === undefined ? '' : `; label ${info.labelColumn}`}`);
  for (const [column, values] of Object.entries(info.categories ?? {})) lines.push(`  categories ${column}: ${values.map((v, i) => `${v}=${i}`).join(', ')}`);
  if (info.imageSize) lines.push(`  images     ${info.imageSize[0]}x${info.imageSize[1]}, ${info.channels === 1 ? 'grayscale' : 'RGB'}`);
  return lines;
}
