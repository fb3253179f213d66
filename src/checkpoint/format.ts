/**
 * The checkpoint file format: a 32-byte envelope header, then one protobuf `Checkpoint`
 * message (proto/checkpoint.proto, which also documents the header).
 *
 * Encoding is planned piece by piece (`planCheckpoint`): protobufjs encodes the small
 * metadata, and the tensor data (which is most of the file) is referred to where it lies,
 * behind hand-written field headers, so it can be copied once into one buffer
 * (`encodeCheckpoint`) or written to disk straight from the caller's arrays (the store).
 * Each tensor's data is read once for its CRC; the payload CRC is then combined from the
 * tensor CRCs and the CRCs of the metadata pieces (crc32cCombine) instead of reading it again.
 *
 * Decoding checks the header (magic, version, header CRC, length) and the payload CRC before
 * decoding anything, then each tensor's CRC and length, then the message's consistency. Every
 * problem is a CheckpointError naming the file.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import type { RunConfig } from '../config/schema.js';
import { parseDataInfo, type DataInfo } from '../data/data-info.js';
import { BlockCrcs, crc32c, crc32cCombine, formatCrc } from './crc32c.js';
import { CheckpointError } from './errors.js';
import { NON_TRAINABLE_TENSOR, PARAMS_TENSOR, type CheckpointLayoutEntry, type CheckpointLearningRate, type CheckpointState, type CheckpointTensor } from './state.js';
import { checkCheckpointContents } from './validate.js';

// ---------------------------------------------------------------------------------------------
// Constants
// ---------------------------------------------------------------------------------------------

/** First 8 bytes of every checkpoint file. The \r\n catches text-mode line-ending conversion. */
export const CHECKPOINT_MAGIC = 'RTCKPT\r\n';
export const CHECKPOINT_FORMAT_VERSION = 1;
export const CHECKPOINT_HEADER_BYTES = 32;
/** `format` field of the payload. */
export const CHECKPOINT_FORMAT_NAME = 'ringtrain.checkpoint';
/** File name extension of checkpoint files. */
export const CHECKPOINT_EXTENSION = '.rtckpt';

const MAGIC_BYTES = new TextEncoder().encode(CHECKPOINT_MAGIC);
/** Byte offsets of the header's fields (peek.ts reads the payload length without decoding). */
export const HEADER = {
  magic: 0,
  version: 8,
  flags: 12,
  payloadLength: 16,
  payloadCrc: 24,
  headerCrc: 28,
} as const;
/** Protobuf length fields are read as 32-bit varints by protobufjs; stay well inside that. */
const MAX_PAYLOAD_BYTES = 2 ** 32 - 1;
const DTYPE = 'float32';
const LITTLE_ENDIAN = os.endianness() === 'LE';

// ---------------------------------------------------------------------------------------------
// The .proto, loaded at run time
// ---------------------------------------------------------------------------------------------

/**
 * proto/checkpoint.proto, found from this module's location: src/checkpoint/ under vitest and
 * dist/checkpoint/ after tsc are both two levels below the package root, and `proto/` ships
 * with the package ("files" in package.json).
 */
export const CHECKPOINT_PROTO_FILE = fileURLToPath(new URL('../../proto/checkpoint.proto', import.meta.url));

interface ProtoTypes {
  Checkpoint: protobuf.Type;
  Tensor: protobuf.Type;
  Optimizer: protobuf.Type;
  CallbackState: protobuf.Type;
}

let protoTypes: ProtoTypes | undefined;

function types(): ProtoTypes {
  if (protoTypes === undefined) {
    if (!existsSync(CHECKPOINT_PROTO_FILE)) {
      throw new Error(`ringtrain is installed incompletely: ${CHECKPOINT_PROTO_FILE} is missing`);
    }
    const root = protobuf.loadSync(CHECKPOINT_PROTO_FILE);
    root.resolveAll();
    protoTypes = {
      Checkpoint: root.lookupType('ringtrain.checkpoint.Checkpoint'),
      Tensor: root.lookupType('ringtrain.checkpoint.Tensor'),
      Optimizer: root.lookupType('ringtrain.checkpoint.Optimizer'),
      CallbackState: root.lookupType('ringtrain.checkpoint.CallbackState'),
    };
  }
  return protoTypes;
}

/** Field numbers and wire types the encoder writes by hand (they must match the .proto). */
const FIELD = {
  checkpointParams: 7,
  checkpointOptimizer: 8,
  optimizerState: 4,
  tensorCrc32c: 4,
  tensorData: 5,
  checkpointCallbackStates: 30,
  callbackStateTensors: 3,
} as const;
const WIRE_FIXED32 = 5;
const WIRE_LEN = 2;

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

/**
 * A checkpoint planned byte by byte without copying the tensors: the small metadata pieces
 * are encoded into buffers of their own, the tensor data stays in the caller's arrays. The
 * segments cover the payload in file order. `sealCheckpoint` fills in the checksums.
 */
export interface CheckpointPlan {
  /** Size of the whole file: header + payload. */
  readonly length: number;
  /** The 32-byte envelope header (zeros until sealed). */
  readonly header: Uint8Array;
  /** The payload, in file order: metadata (own buffers) and tensor data (views of the caller's arrays). */
  readonly segments: readonly PlanSegment[];
  /** Each tensor's data range and CRC field, as byte offsets into the file. */
  readonly tensors: readonly { name: string; crcAt: number; start: number; end: number }[];
  /** The metadata ranges (the header included), as byte offsets into the file. */
  readonly metadata: readonly { start: number; end: number }[];
}

export interface PlanSegment {
  /** Byte offset in the file. */
  readonly at: number;
  readonly bytes: Uint8Array;
  /** Index into `tensors` when this is a tensor's data. */
  readonly tensor?: number;
}

type Piece =
  | { kind: 'bytes'; bytes: Uint8Array }
  | { kind: 'crc'; tensor: number }
  | { kind: 'data'; tensor: number; bytes: Uint8Array };

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 128) {
    out.push((value % 128) | 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}

function fieldHeader(field: number, wireType: number, length?: number): Uint8Array {
  const bytes = varint(field * 8 + wireType);
  if (length !== undefined) bytes.push(...varint(length));
  return Uint8Array.from(bytes);
}

function pieceLength(piece: Piece): number {
  return piece.kind === 'crc' ? 4 : piece.bytes.length;
}

function totalLength(pieces: readonly Piece[]): number {
  let n = 0;
  for (const piece of pieces) n += pieceLength(piece);
  return n;
}

/** The float32 values as little-endian bytes: a view of the same memory, or a copy on a big-endian machine. */
function littleEndianBytes(values: Float32Array): Uint8Array {
  if (LITTLE_ENDIAN) return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  const out = new Uint8Array(values.byteLength);
  const view = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return out;
}

/** A Tensor message: protobufjs encodes name/shape/dtype, then crc32c and data by hand. */
function tensorPieces(tensor: CheckpointTensor, index: number): Piece[] {
  const meta = types().Tensor.encode({ name: tensor.name, shape: tensor.shape, dtype: DTYPE }).finish();
  return [
    { kind: 'bytes', bytes: meta },
    { kind: 'bytes', bytes: fieldHeader(FIELD.tensorCrc32c, WIRE_FIXED32) },
    { kind: 'crc', tensor: index },
    { kind: 'bytes', bytes: fieldHeader(FIELD.tensorData, WIRE_LEN, tensor.values.byteLength) },
    { kind: 'data', tensor: index, bytes: littleEndianBytes(tensor.values) },
  ];
}

/** A length-delimited field holding the given pieces (a sub-message). */
function messageField(field: number, pieces: Piece[]): Piece[] {
  return [{ kind: 'bytes', bytes: fieldHeader(field, WIRE_LEN, totalLength(pieces)) }, ...pieces];
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function fail(what: string): never {
  throw new RangeError(`encodeCheckpoint: ${what}`);
}

function checkCount(value: unknown, what: string, max = Number.MAX_SAFE_INTEGER): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > max) {
    fail(`${what} must be an integer from 0 to ${max}, got ${String(value)}`);
  }
}

function checkShape(shape: unknown, what: string): void {
  if (!Array.isArray(shape)) fail(`${what}: shape must be an array of integers >= 0`);
  shape.forEach((d, i) => checkCount(d, `${what}: shape[${i}]`));
}

function checkTensor(tensor: CheckpointTensor, what: string, length: number): void {
  if (typeof tensor.name !== 'string' || tensor.name === '') fail(`${what}: name must be a non-empty string`);
  if (!(tensor.values instanceof Float32Array)) fail(`${what} '${tensor.name}': values must be a Float32Array`);
  checkShape(tensor.shape, `${what} '${tensor.name}'`);
  if (product(tensor.shape) !== tensor.values.length) {
    fail(`${what} '${tensor.name}': shape [${tensor.shape.join(', ')}] holds ${product(tensor.shape)} values, values has ${tensor.values.length}`);
  }
  if (tensor.values.length !== length) {
    fail(`${what} '${tensor.name}' has ${tensor.values.length} values, params has ${length}`);
  }
}

/** The state's own consistency; a violation is the caller's bug, so a RangeError. */
function checkState(state: CheckpointState): void {
  if (!(state.params instanceof Float32Array)) fail('params must be a Float32Array');
  const n = state.params.length;
  let end = 0;
  const names = new Set<string>();
  state.layout.forEach((entry, i) => {
    const what = `layout[${i}] '${entry.name}'`;
    if (typeof entry.name !== 'string' || entry.name === '') fail(`layout[${i}]: name must be a non-empty string`);
    checkShape(entry.shape, what);
    checkCount(entry.offset, `${what}: offset`);
    if (entry.size !== product(entry.shape)) {
      fail(`${what}: size ${entry.size} is not the product of shape [${entry.shape.join(', ')}]`);
    }
    if (entry.offset + entry.size > n) fail(`${what}: [${entry.offset}, ${entry.offset + entry.size}) is outside params (${n} values)`);
    end = Math.max(end, entry.offset + entry.size);
  });
  if (end !== n) fail(`params has ${n} values, the layout ends at ${end}`);
  checkNonTrainable(state);
  const { optimizer } = state;
  if (typeof optimizer.name !== 'string' || optimizer.name === '') fail('optimizer.name must be a non-empty string');
  checkCount(optimizer.step, 'optimizer.step');
  for (const [key, value] of Object.entries(optimizer.hyperParameters)) {
    if (typeof value !== 'number' && typeof value !== 'boolean') fail(`optimizer.hyperParameters.${key} must be a number or a boolean`);
  }
  for (const tensor of optimizer.state) {
    checkTensor(tensor, 'optimizer state', n);
    if (names.has(tensor.name)) fail(`optimizer state '${tensor.name}' appears twice`);
    names.add(tensor.name);
  }
  for (const key of ['epoch', 'stepInEpoch', 'globalStep', 'samplesSeen'] as const) {
    checkCount(state.position[key], `position.${key}`);
  }
  checkCount(state.sampler.seed, 'sampler.seed', 0xffff_ffff);
  checkCount(state.replicas, 'replicas', 0xffff_ffff);
  for (const rng of state.rngStates) {
    if (!(rng.state instanceof Uint8Array)) fail(`rngStates '${rng.name}': state must be a Uint8Array`);
  }
  for (const callback of state.callbacks ?? []) {
    if (typeof callback.name !== 'string' || callback.name === '') fail('callbacks: name must be a non-empty string');
    if (callback.state === null || typeof callback.state !== 'object' || Array.isArray(callback.state)) fail(`callbacks '${callback.name}': state must be an object`);
    for (const tensor of callback.tensors) checkTensor(tensor, `callbacks '${callback.name}' tensor`, tensor.values?.length);
  }
}

/** The non-trainable weights: both absent, or a layout whose end is the vector's length. */
function checkNonTrainable(state: CheckpointState): void {
  const { nonTrainableLayout: layout, nonTrainable: values } = state;
  if (layout === undefined && values === undefined) return;
  if (layout === undefined || !(values instanceof Float32Array)) fail('nonTrainableLayout and nonTrainable (a Float32Array) go together');
  let end = 0;
  layout.forEach((entry, i) => {
    const what = `nonTrainableLayout[${i}] '${entry.name}'`;
    checkShape(entry.shape, what);
    if (entry.offset !== end || entry.size !== product(entry.shape)) fail(`${what}: expected offset ${end} and size product(shape), found offset ${entry.offset} and size ${entry.size}`);
    end += entry.size;
  });
  if (end !== values.length) fail(`nonTrainable has ${values.length} values, nonTrainableLayout ends at ${end}`);
}

/** JSON text for the history: JSON has no NaN or Infinity, so they are tagged objects. */
export function historyToJson(history: readonly object[]): string {
  return taggedJson(history);
}

/** JSON text with NaN and +-Infinity as {"$float": "NaN" | "Infinity" | "-Infinity"} (historyFromJson reads it). */
export function taggedJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? { $float: String(v) } : v));
}

export function historyFromJson(text: string): object[] {
  return JSON.parse(text, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value);
      const tag = (value as { $float?: unknown }).$float;
      if (keys.length === 1 && (tag === 'NaN' || tag === 'Infinity' || tag === '-Infinity')) return Number(tag);
    }
    return value;
  }) as object[];
}

/**
 * Plans the file for `state`: encodes the metadata, and refers to the tensor data where it is
 * (nothing large is copied). Throws RangeError when the state is inconsistent.
 */
export function planCheckpoint(state: CheckpointState): CheckpointPlan {
  checkState(state);
  const { Checkpoint, Optimizer, CallbackState } = types();
  const hyperParameters: Record<string, { number: number } | { flag: boolean }> = {};
  for (const [key, value] of Object.entries(state.optimizer.hyperParameters)) {
    hyperParameters[key] = typeof value === 'boolean' ? { flag: value } : { number: value };
  }
  const callbacks = state.callbacks ?? [];
  const tensors: CheckpointTensor[] = [
    { name: PARAMS_TENSOR, shape: [state.params.length], values: state.params },
    ...state.optimizer.state,
    ...callbacks.flatMap((c) => c.tensors),
  ];
  const rest = Checkpoint.encode({
    format: CHECKPOINT_FORMAT_NAME,
    formatVersion: CHECKPOINT_FORMAT_VERSION,
    ringtrainVersion: state.ringtrainVersion,
    configJson: JSON.stringify(state.config),
    modelTopologyJson: JSON.stringify(state.modelTopology),
    layout: state.layout.map((e) => ({ name: e.name, shape: e.shape, dtype: DTYPE, offset: e.offset, size: e.size })),
    position: { ...state.position },
    sampler: { ...state.sampler },
    rngStates: state.rngStates.map((r) => ({ name: r.name, state: r.state })),
    historyJson: historyToJson(state.history),
    replicas: state.replicas,
    createdAt: state.createdAt,
    // Small (BatchNormalization's statistics): encoded with the metadata, its CRC computed here.
    ...(state.nonTrainable && state.nonTrainableLayout
      ? {
          nonTrainableLayout: state.nonTrainableLayout.map((e) => ({ name: e.name, shape: e.shape, dtype: DTYPE, offset: e.offset, size: e.size })),
          nonTrainable: { name: NON_TRAINABLE_TENSOR, shape: [state.nonTrainable.length], dtype: DTYPE, crc32c: crc32c(littleEndianBytes(state.nonTrainable)), data: littleEndianBytes(state.nonTrainable) },
        }
      : {}),
    learningRate: state.learningRate && { current: state.learningRate.current, plateau: state.learningRate.plateau && { ...state.learningRate.plateau } },
    dataInfoJson: state.dataInfo === undefined ? '' : JSON.stringify(state.dataInfo),
  }).finish();
  const optimizerMeta = Optimizer.encode({
    name: state.optimizer.name,
    hyperParameters,
    step: state.optimizer.step,
  }).finish();
  const optimizerTensors = state.optimizer.state.length;
  let callbackTensor = 1 + optimizerTensors;
  const pieces: Piece[] = [
    { kind: 'bytes', bytes: rest },
    ...messageField(FIELD.checkpointParams, tensorPieces(tensors[0]!, 0)),
    ...messageField(FIELD.checkpointOptimizer, [
      { kind: 'bytes', bytes: optimizerMeta },
      ...tensors.slice(1, 1 + optimizerTensors).flatMap((t, i) => messageField(FIELD.optimizerState, tensorPieces(t, i + 1))),
    ]),
    ...callbacks.flatMap((c) =>
      messageField(FIELD.checkpointCallbackStates, [
        { kind: 'bytes', bytes: CallbackState.encode({ name: c.name, stateJson: taggedJson(c.state) }).finish() },
        ...c.tensors.flatMap((t) => messageField(FIELD.callbackStateTensors, tensorPieces(t, callbackTensor++))),
      ]),
    ),
  ];
  const payloadLength = totalLength(pieces);
  if (payloadLength > MAX_PAYLOAD_BYTES) {
    fail(`the checkpoint would be ${payloadLength} bytes; format version ${CHECKPOINT_FORMAT_VERSION} holds at most ${MAX_PAYLOAD_BYTES}`);
  }

  // Consecutive metadata pieces become one segment with its own buffer.
  const segments: PlanSegment[] = [];
  const slots = tensors.map((t) => ({ name: t.name, crcAt: 0, start: 0, end: 0 }));
  const metadata: { start: number; end: number }[] = [{ start: 0, end: CHECKPOINT_HEADER_BYTES }];
  let run: Piece[] = [];
  let runAt = CHECKPOINT_HEADER_BYTES;
  const flush = (end: number) => {
    if (end === runAt) return;
    const bytes = new Uint8Array(end - runAt);
    let pos = 0;
    for (const piece of run) {
      if (piece.kind === 'bytes') bytes.set(piece.bytes, pos);
      pos += pieceLength(piece);
    }
    segments.push({ at: runAt, bytes });
    const last = metadata[metadata.length - 1]!;
    if (last.end === runAt) last.end = end;
    else metadata.push({ start: runAt, end });
  };
  let pos = CHECKPOINT_HEADER_BYTES;
  for (const piece of pieces) {
    if (piece.kind === 'data') {
      flush(pos);
      segments.push({ at: pos, bytes: piece.bytes, tensor: piece.tensor });
      slots[piece.tensor]!.start = pos;
      slots[piece.tensor]!.end = pos + piece.bytes.length;
      run = [];
      runAt = pos + piece.bytes.length;
    } else {
      if (piece.kind === 'crc') slots[piece.tensor]!.crcAt = pos;
      run.push(piece);
    }
    pos += pieceLength(piece);
  }
  flush(pos);
  return { length: pos, header: new Uint8Array(CHECKPOINT_HEADER_BYTES), segments, tensors: slots, metadata };
}

/** The data of tensor `index` of a plan (little-endian bytes). */
export function tensorData(plan: CheckpointPlan, index: number): Uint8Array {
  const segment = plan.segments.find((s) => s.tensor === index);
  if (segment === undefined) throw new RangeError(`tensorData: the plan has no tensor ${index}`);
  return segment.bytes;
}

/**
 * Fills in a plan's checksums: each tensor's CRC32C into its field (computed from its data
 * unless given in `tensorCrcs`), the payload CRC32C (combined from the segments' CRCs, so the
 * tensor data is not read again) and the header. Writes only into the plan's own buffers.
 */
export function sealCheckpoint(plan: CheckpointPlan, tensorCrcs?: readonly number[]): void {
  const crcs = tensorCrcs ?? plan.tensors.map((_, i) => crc32c(tensorData(plan, i)));
  let payloadCrc = 0;
  for (const segment of plan.segments) {
    if (segment.tensor !== undefined) {
      payloadCrc = crc32cCombine(payloadCrc, crcs[segment.tensor]!, segment.bytes.length);
      continue;
    }
    const view = new DataView(segment.bytes.buffer, segment.bytes.byteOffset, segment.bytes.byteLength);
    plan.tensors.forEach((t, i) => {
      if (t.crcAt >= segment.at && t.crcAt < segment.at + segment.bytes.length) view.setUint32(t.crcAt - segment.at, crcs[i]!, true);
    });
    payloadCrc = crc32c(segment.bytes, payloadCrc);
  }
  const header = plan.header;
  const view = new DataView(header.buffer, header.byteOffset, header.byteLength);
  header.set(MAGIC_BYTES, HEADER.magic);
  view.setUint32(HEADER.version, CHECKPOINT_FORMAT_VERSION, true);
  view.setUint32(HEADER.flags, 0, true);
  view.setBigUint64(HEADER.payloadLength, BigInt(plan.length - CHECKPOINT_HEADER_BYTES), true);
  view.setUint32(HEADER.payloadCrc, payloadCrc, true);
  view.setUint32(HEADER.headerCrc, crc32c(header.subarray(0, HEADER.headerCrc)), true);
}

/**
 * The complete checkpoint file for `state`, in one new buffer (the only copy of the state
 * made). Throws RangeError when the state is inconsistent.
 */
export function encodeCheckpoint(state: CheckpointState): Uint8Array {
  const plan = planCheckpoint(state);
  // allocUnsafeSlow: not zero-filled (every byte is written below) and not from the shared pool.
  const buffer = Buffer.allocUnsafeSlow(plan.length);
  const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);
  for (const segment of plan.segments) if (segment.tensor !== undefined) bytes.set(segment.bytes, segment.at);
  // Checksums of the copy: the file is consistent even if the caller's arrays change meanwhile.
  sealCheckpoint(plan, plan.tensors.map((t) => crc32c(bytes.subarray(t.start, t.end))));
  bytes.set(plan.header, 0);
  for (const segment of plan.segments) if (segment.tensor === undefined) bytes.set(segment.bytes, segment.at);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

/** Bytes as a quoted string: printable ASCII as is, the rest as escapes ("RTCKPT\r\n", "PK\x03\x04"). */
function quoteBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    if (b === 0x0d) out += '\\r';
    else if (b === 0x0a) out += '\\n';
    else if (b === 0x09) out += '\\t';
    else if (b === 0x22 || b === 0x5c) out += `\\${String.fromCharCode(b)}`;
    else if (b >= 0x20 && b < 0x7f) out += String.fromCharCode(b);
    else out += `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return `"${out}"`;
}

/**
 * Checks the envelope of a file of `size` bytes whose first bytes are `bytes` (at least the
 * header, when the file has one), and returns its stored payload CRC.
 */
function checkHeader(bytes: Uint8Array, size: number, file: string): number {
  if (size === 0) {
    throw new CheckpointError(file, 'empty', 'empty file (0 bytes), not a ringtrain checkpoint');
  }
  const magic = bytes.subarray(0, MAGIC_BYTES.length);
  if (magic.some((b, i) => b !== MAGIC_BYTES[i])) {
    throw new CheckpointError(
      file,
      'magic',
      `wrong magic: expected ${quoteBytes(MAGIC_BYTES)}, found ${quoteBytes(magic)} (not a ringtrain checkpoint)`,
    );
  }
  if (size < CHECKPOINT_HEADER_BYTES) {
    throw new CheckpointError(
      file,
      'truncated',
      `truncated: expected at least ${CHECKPOINT_HEADER_BYTES} bytes (the header), found ${size}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, CHECKPOINT_HEADER_BYTES);
  const version = view.getUint32(HEADER.version, true);
  if (version !== CHECKPOINT_FORMAT_VERSION) {
    throw new CheckpointError(
      file,
      'version',
      `unsupported format version: expected ${CHECKPOINT_FORMAT_VERSION}, found ${version}`,
      version > CHECKPOINT_FORMAT_VERSION ? { hint: 'it may have been written by a newer ringtrain' } : undefined,
    );
  }
  const storedHeaderCrc = view.getUint32(HEADER.headerCrc, true);
  const headerCrc = crc32c(bytes.subarray(0, HEADER.headerCrc));
  if (headerCrc !== storedHeaderCrc) {
    throw new CheckpointError(
      file,
      'header-checksum',
      `header checksum mismatch: header CRC32C expected ${formatCrc(storedHeaderCrc)}, found ${formatCrc(headerCrc)} (the header is damaged)`,
    );
  }
  const flags = view.getUint32(HEADER.flags, true);
  if (flags !== 0) {
    throw new CheckpointError(file, 'version', `unsupported header flags: expected ${formatCrc(0)}, found ${formatCrc(flags)}`);
  }
  const payloadLength = view.getBigUint64(HEADER.payloadLength, true);
  const expected = BigInt(CHECKPOINT_HEADER_BYTES) + payloadLength;
  const sizes = `expected ${expected} bytes (${CHECKPOINT_HEADER_BYTES}-byte header + ${payloadLength}-byte payload), found ${size}`;
  if (BigInt(size) < expected) throw new CheckpointError(file, 'truncated', `truncated: ${sizes}`);
  if (BigInt(size) > expected) throw new CheckpointError(file, 'trailing-data', `unexpected trailing data: ${sizes}`);
  return view.getUint32(HEADER.payloadCrc, true);
}

/** A uint64 as protobufjs returns it: a number, or a Long when the `long` package is present. */
type Uint64 = number | { toNumber(): number; toString(): string; greaterThan?(x: number): boolean };

interface DecodedTensor {
  name: string;
  shape: Uint64[];
  dtype: string;
  crc32c: number;
  data: Uint8Array;
}

interface DecodedCheckpoint {
  format: string;
  formatVersion: number;
  ringtrainVersion: string;
  configJson: string;
  dataInfoJson: string;
  modelTopologyJson: string;
  layout: { name: string; shape: Uint64[]; dtype: string; offset: Uint64; size: Uint64 }[];
  params?: DecodedTensor | null;
  optimizer?: {
    name: string;
    hyperParameters: Record<string, { number?: number; flag?: boolean; value?: 'number' | 'flag' }>;
    step: Uint64;
    state: DecodedTensor[];
  } | null;
  position?: { epoch: Uint64; stepInEpoch: Uint64; globalStep: Uint64; samplesSeen: Uint64 } | null;
  sampler?: { seed: number; shuffle: boolean } | null;
  rngStates: { name: string; state: Uint8Array }[];
  historyJson: string;
  replicas: number;
  createdAt: string;
  nonTrainableLayout?: { name: string; shape: Uint64[]; dtype: string; offset: Uint64; size: Uint64 }[];
  nonTrainable?: DecodedTensor | null;
  learningRate?: { current: number; plateau?: { best: number; wait: Uint64; cooldownCounter: Uint64; scale: number } | null } | null;
  callbackStates: { name: string; stateJson: string; tensors: DecodedTensor[] }[];
}

/** Reads one checkpoint payload's fields, throwing 'malformed' CheckpointErrors. */
class PayloadReader {
  constructor(
    private readonly file: string,
    private readonly payload: Uint8Array,
    private readonly crcs: BlockCrcs,
  ) {}

  malformed(detail: string, cause?: unknown): never {
    throw new CheckpointError(this.file, 'malformed', `malformed payload: ${detail}`, cause === undefined ? undefined : { cause });
  }

  count(value: Uint64 | undefined | null, what: string): number {
    if (value === undefined || value === null) return 0;
    const n = typeof value === 'number' ? value : Number(value.toString());
    if (!Number.isSafeInteger(n) || n < 0) this.malformed(`${what} is ${String(value)}, not an integer from 0 to 2^53 - 1`);
    return n;
  }

  shape(shape: Uint64[], what: string): number[] {
    return shape.map((d, i) => this.count(d, `${what} shape[${i}]`));
  }

  json<T>(text: string, what: string, parse: (text: string) => T = (t) => JSON.parse(t) as T): T {
    let value: T;
    try {
      value = parse(text);
    } catch (error) {
      this.malformed(`${what} is not valid JSON (${(error as Error).message})`, error);
    }
    return value;
  }

  /** A tensor's values, after checking its dtype, byte length and CRC32C. */
  tensor(t: DecodedTensor | null | undefined, what: string, length?: number): CheckpointTensor {
    if (t === undefined || t === null) this.malformed(`${what} is missing`);
    const label = `${what} '${t.name}'`;
    if (t.dtype !== DTYPE) {
      throw new CheckpointError(this.file, 'tensor-length', `${label}: unsupported dtype: expected "${DTYPE}", found "${t.dtype}"`);
    }
    const shape = this.shape(t.shape, label);
    const elements = product(shape);
    const data = t.data;
    if (data.length !== elements * 4) {
      throw new CheckpointError(
        this.file,
        'tensor-length',
        `${label} byte length mismatch: expected ${elements * 4} bytes (shape [${shape.join(', ')}] ${DTYPE}), found ${data.length}`,
      );
    }
    if (length !== undefined && elements !== length) {
      throw new CheckpointError(
        this.file,
        'tensor-length',
        `${label} length mismatch: expected ${length} values (as many as params), found ${elements}`,
      );
    }
    // protobufjs returns views into the payload; their CRC comes from the block CRCs.
    const crc =
      data.buffer === this.payload.buffer
        ? this.crcs.range(data.byteOffset - this.payload.byteOffset, data.byteOffset - this.payload.byteOffset + data.length)
        : crc32c(data);
    if (crc !== t.crc32c >>> 0) {
      throw new CheckpointError(
        this.file,
        'tensor-checksum',
        `${label} checksum mismatch: CRC32C expected ${formatCrc(t.crc32c)}, found ${formatCrc(crc)}`,
      );
    }
    const values = new Float32Array(elements);
    if (LITTLE_ENDIAN) {
      new Uint8Array(values.buffer).set(data);
    } else {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let i = 0; i < elements; i++) values[i] = view.getFloat32(i * 4, true);
    }
    return { name: t.name, shape, values };
  }
}

/**
 * Verifies and decodes a whole checkpoint file's bytes; `file` names it in errors. The arrays
 * returned are fresh copies: nothing refers to `bytes` afterwards.
 */
export function decodeCheckpoint(bytes: Uint8Array, file: string): CheckpointState {
  const storedCrc = checkHeader(bytes, bytes.length, file);
  return decodeVerifiedHeader(file, storedCrc, new BlockCrcs(bytes.subarray(CHECKPOINT_HEADER_BYTES)));
}

/** decodeCheckpoint after checkHeader, given the payload's block CRCs. */
function decodeVerifiedHeader(file: string, storedCrc: number, crcs: BlockCrcs): CheckpointState {
  const payload = crcs.bytes;
  const crc = crcs.range(0, payload.length);
  if (crc !== storedCrc) {
    throw new CheckpointError(
      file,
      'checksum',
      `checksum mismatch: payload CRC32C expected ${formatCrc(storedCrc)}, found ${formatCrc(crc)} (the file is damaged)`,
    );
  }
  const r: PayloadReader = new PayloadReader(file, payload, crcs);
  let m: DecodedCheckpoint;
  try {
    m = types().Checkpoint.decode(payload) as unknown as DecodedCheckpoint;
  } catch (error) {
    r.malformed(`not a Checkpoint message (${(error as Error).message})`, error);
  }
  if (m.format !== CHECKPOINT_FORMAT_NAME) {
    r.malformed(`format expected "${CHECKPOINT_FORMAT_NAME}", found "${m.format}"`);
  }
  if (m.formatVersion !== CHECKPOINT_FORMAT_VERSION) {
    r.malformed(`format version expected ${CHECKPOINT_FORMAT_VERSION}, found ${m.formatVersion}`);
  }

  if (m.params === undefined || m.params === null) r.malformed('the parameter tensor is missing');
  const params = r.tensor(m.params, 'tensor');
  if (params.name !== PARAMS_TENSOR || params.shape.length !== 1) {
    r.malformed(`the parameter tensor must be '${PARAMS_TENSOR}' of shape [n], found '${params.name}' of shape [${params.shape.join(', ')}]`);
  }
  const n = params.values.length;
  let end = 0;
  const layout: CheckpointLayoutEntry[] = m.layout.map((e, i) => {
    const what = `layout[${i}] '${e.name}'`;
    if (e.dtype !== DTYPE) r.malformed(`${what}: dtype expected "${DTYPE}", found "${e.dtype}"`);
    const shape = r.shape(e.shape, what);
    const offset = r.count(e.offset, `${what} offset`);
    const size = r.count(e.size, `${what} size`);
    if (size !== product(shape)) r.malformed(`${what}: size ${size} is not the product of shape [${shape.join(', ')}]`);
    if (offset + size > n) r.malformed(`${what}: [${offset}, ${offset + size}) is outside params (${n} values)`);
    end = Math.max(end, offset + size);
    return { name: e.name, shape, offset, size };
  });
  if (end !== n) r.malformed(`params has ${n} values, the layout ends at ${end}`);
  const nonTrainable = decodeNonTrainable(r, m);

  const opt = m.optimizer ?? r.malformed('the optimizer is missing');
  const hyperParameters: Record<string, number | boolean> = {};
  for (const [key, hp] of Object.entries(opt.hyperParameters)) {
    if (hp.value === 'number' && typeof hp.number === 'number') hyperParameters[key] = hp.number;
    else if (hp.value === 'flag' && typeof hp.flag === 'boolean') hyperParameters[key] = hp.flag;
    else r.malformed(`optimizer hyper-parameter ${key} has no value`);
  }
  const state = opt.state.map((t) => r.tensor(t, 'optimizer state tensor', n));

  const position = m.position ?? r.malformed('the position is missing');
  const sampler = m.sampler ?? r.malformed('the sampler is missing');
  const config = r.json<unknown>(m.configJson, 'the config');
  if (config === null || typeof config !== 'object') r.malformed('the config is not a JSON object');
  const modelTopology = r.json<unknown>(m.modelTopologyJson, 'the model topology');
  if (modelTopology === null || typeof modelTopology !== 'object') r.malformed('the model topology is not a JSON object');
  const history = r.json(m.historyJson, 'the history', historyFromJson);
  if (!Array.isArray(history)) r.malformed('the history is not a JSON array');
  const callbacks = (m.callbackStates ?? []).map((c) => {
    const state = r.json(c.stateJson, `callback state '${c.name}'`, historyFromJson) as unknown;
    if (state === null || typeof state !== 'object' || Array.isArray(state)) r.malformed(`callback state '${c.name}' is not a JSON object`);
    return { name: c.name, state: state as Record<string, unknown>, tensors: c.tensors.map((t) => r.tensor(t, `callback state '${c.name}' tensor`)) };
  });
  let dataInfo: DataInfo | undefined;
  if (m.dataInfoJson) {
    try {
      dataInfo = parseDataInfo(r.json<unknown>(m.dataInfoJson, 'the data info'), file);
    } catch (error) {
      if (error instanceof CheckpointError) throw error;
      r.malformed((error as Error).message.replace(`${file}: `, ''), error);
    }
  }

  return {
    ringtrainVersion: m.ringtrainVersion,
    config: config as RunConfig,
    modelTopology: modelTopology as object,
    layout,
    params: params.values,
    optimizer: { name: opt.name, hyperParameters, step: r.count(opt.step, 'optimizer step'), state },
    position: {
      epoch: r.count(position.epoch, 'position epoch'),
      stepInEpoch: r.count(position.stepInEpoch, 'position stepInEpoch'),
      globalStep: r.count(position.globalStep, 'position globalStep'),
      samplesSeen: r.count(position.samplesSeen, 'position samplesSeen'),
    },
    sampler: { seed: sampler.seed, shuffle: sampler.shuffle },
    // slice(): copies, so the result does not keep the file's buffer alive.
    rngStates: m.rngStates.map((s) => ({ name: s.name, state: s.state.slice() })),
    history,
    replicas: m.replicas,
    createdAt: m.createdAt,
    ...nonTrainable,
    ...(m.learningRate ? { learningRate: decodeLearningRate(r, m.learningRate) } : {}),
    ...(callbacks.length > 0 ? { callbacks } : {}),
    ...(dataInfo === undefined ? {} : { dataInfo }),
  };
}

function decodeLearningRate(r: PayloadReader, lr: NonNullable<DecodedCheckpoint['learningRate']>): CheckpointLearningRate {
  const p = lr.plateau;
  return {
    current: lr.current,
    ...(p ? { plateau: { best: p.best, wait: r.count(p.wait, 'plateau wait'), cooldownCounter: r.count(p.cooldownCounter, 'plateau cooldown counter'), scale: p.scale } } : {}),
  };
}

/** The non-trainable weights and their layout, both or neither (files before them have neither). */
function decodeNonTrainable(r: PayloadReader, m: DecodedCheckpoint): Pick<CheckpointState, 'nonTrainable' | 'nonTrainableLayout'> {
  const entries = m.nonTrainableLayout ?? [];
  if (entries.length === 0 && !m.nonTrainable) return {};
  if (!m.nonTrainable) r.malformed('non_trainable_layout is present but the non_trainable tensor is missing');
  const tensor = r.tensor(m.nonTrainable, 'tensor');
  if (tensor.name !== NON_TRAINABLE_TENSOR || tensor.shape.length !== 1) {
    r.malformed(`the non-trainable tensor must be '${NON_TRAINABLE_TENSOR}' of shape [m], found '${tensor.name}' of shape [${tensor.shape.join(', ')}]`);
  }
  let end = 0;
  const layout = entries.map((e, i) => {
    const what = `non_trainable_layout[${i}] '${e.name}'`;
    if (e.dtype !== DTYPE) r.malformed(`${what}: dtype expected "${DTYPE}", found "${e.dtype}"`);
    const shape = r.shape(e.shape, what);
    const offset = r.count(e.offset, `${what} offset`);
    const size = r.count(e.size, `${what} size`);
    if (size !== product(shape)) r.malformed(`${what}: size ${size} is not the product of shape [${shape.join(', ')}]`);
    if (offset !== end) r.malformed(`${what}: offset expected ${end} (right after the previous weight), found ${offset}`);
    end = offset + size;
    return { name: e.name, shape, offset, size };
  });
  if (end !== tensor.values.length) r.malformed(`non_trainable has ${tensor.values.length} values, non_trainable_layout ends at ${end}`);
  return { nonTrainableLayout: layout, nonTrainable: tensor.values };
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/** The CheckpointError for a failed open/read/stat of `file`. */
export function fileError(file: string, error: unknown, doing: string): CheckpointError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new CheckpointError(file, 'missing', 'no such checkpoint file', { cause: error });
  if (code === 'EISDIR') return directoryError(file);
  return new CheckpointError(file, 'io', `cannot ${doing}: ${(error as Error).message}`, { cause: error });
}

export function directoryError(file: string): CheckpointError {
  return new CheckpointError(file, 'directory', 'is a directory, not a checkpoint file', {
    hint: `give a ${CHECKPOINT_EXTENSION} file inside it, or its 'latest' checkpoint`,
  });
}

/** Bytes per read: the payload's checksums are computed for one slice while the next is read. */
const READ_SLICE = 8 << 20;

/**
 * Reads, verifies and decodes the checkpoint file at `file`, then checks that its contents
 * make sense (validate.ts: the config against the config schema, the optimizer state, the
 * position, the history). The header is checked as soon as
 * the first bytes are in (a file that is not a checkpoint is not read further), and the
 * payload's checksums are computed slice by slice while the next slice is being read.
 */
export async function readCheckpointFile(file: string): Promise<CheckpointState> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    throw fileError(file, error, 'open it');
  }
  try {
    const stats = await handle.stat();
    if (stats.isDirectory()) throw directoryError(file);
    const size = stats.size;
    const buffer = Buffer.allocUnsafeSlow(size);
    const bytes = new Uint8Array(buffer.buffer, buffer.byteOffset, size);
    const readSlice = async (at: number): Promise<number> => {
      const end = Math.min(size, at + READ_SLICE);
      let got = at;
      while (got < end) {
        const { bytesRead } = await handle.read(bytes, got, end - got, got);
        if (bytesRead === 0) break;
        got += bytesRead;
      }
      return got;
    };
    let got = await readSlice(0);
    if (got < Math.min(size, CHECKPOINT_HEADER_BYTES)) return decodeCheckpoint(bytes.subarray(0, got), file); // it shrank
    const storedCrc = checkHeader(bytes.subarray(0, got), size, file);
    const crcs = new BlockCrcs(bytes.subarray(CHECKPOINT_HEADER_BYTES), got - CHECKPOINT_HEADER_BYTES);
    while (got < size) {
      const next = readSlice(got); // dispatched now; runs in a libuv thread while the CRCs below are computed
      crcs.advance(got - CHECKPOINT_HEADER_BYTES);
      const end = await next;
      if (end === got) return decodeCheckpoint(bytes.subarray(0, got), file); // the file shrank while being read
      got = end;
    }
    crcs.advance(size - CHECKPOINT_HEADER_BYTES);
    return checkCheckpointContents(decodeVerifiedHeader(file, storedCrc, crcs), file);
  } catch (error) {
    throw error instanceof CheckpointError ? error : fileError(file, error, 'read it');
  } finally {
    await handle.close();
  }
}
