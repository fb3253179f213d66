/**
 * Checkpoint fuzz (fixed seed): damaged and crafted files made from a real small checkpoint
 * must each be refused with a UserError whose message is one line and names the file, within
 * a deadline, and never with another kind of error. Most cases go through what `train --resume`
 * does in-process (readCheckpointFile, then the resume checks of Trainer.create); a handful go
 * through the real CLI (`inspect`, `export`, `train --resume`): exit 2, one stderr line, no
 * stack.
 *
 * Kinds of cases: byte flips anywhere; truncations; extensions; wrong magic, version, flags and
 * length (with and without a matching header CRC); random payloads with correct CRCs; and
 * valid-CRC files whose contents do not make sense, made by decoding the real checkpoint's
 * protobuf message, changing one field and encoding it again with every CRC recomputed.
 *
 * The cases are made (and written to the test's temp folder) in beforeAll, so each test also
 * runs alone (-t). The outcomes are counted by problem and printed on the console.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import protobuf from 'protobufjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32c } from '../../src/checkpoint/crc32c.js';
import { CheckpointError } from '../../src/checkpoint/errors.js';
import { CHECKPOINT_PROTO_FILE, readCheckpointFile } from '../../src/checkpoint/format.js';
import { assertPositionFits, assertResumable } from '../../src/checkpoint/resume.js';
import { CheckpointStore } from '../../src/checkpoint/store.js';
import { parseRunConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { stepsPerEpoch } from '../../src/data/sampler.js';
import { UserError } from '../../src/errors.js';
import { prepareRun, type PreparedRun } from '../../src/train/setup.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';
import { inPairs, runCli } from '../helpers/processes.js';

const SEED = 20261201;
/** Per case: reading a checkpoint of a few kB takes milliseconds; this only catches a hang. */
const CASE_DEADLINE_MS = 5_000;
const CLI_DEADLINE_MS = 30_000;

const dir = mkdtempSync(join(tmpdir(), 'ringtrain-fuzz-'));
const out = join(dir, 'run');

/** The run whose checkpoint is fuzzed: as a config file (for the CLI) and parsed. */
const configJson = {
  name: 'fuzz',
  model: { inputShape: [1], layers: [{ type: 'dense', units: 4, activation: 'relu' }, { type: 'dense', units: 1 }] },
  data: { source: 'linear', samples: 64 },
  loss: 'meanSquaredError',
  metrics: ['meanAbsoluteError'],
  optimizer: { name: 'adam', learningRate: 0.01 },
  training: { epochs: 2, batchSize: 8, seed: 5, validationSplit: 0 },
  parallel: { workers: 1 },
  backend: 'cpu',
  output: { dir: out, metricsLog: false },
  // Step 10 (epoch 1, step 2) is the first checkpoint, so no write is in flight when it is due
  // and backpressure never replaces it by a newer one (with epoch-end checkpoints too, a slow
  // write at step 8 let step 16 supersede it on a loaded machine: the file was missing).
  checkpoint: { everySteps: 10, everyEpoch: false, keepLast: 100 },
};
const configFile = join(dir, 'fuzz.json');

const data = {
  train: createSharedDataset({
    name: 'generated',
    // The shape of the linear source's samples, so the CLI's `train --resume` loads a run like it.
    featureShape: [1],
    labelShape: [1],
    features: Float32Array.from({ length: 64 }, (_, i) => Math.sin(i)),
    labels: Float32Array.from({ length: 64 }, (_, i) => Math.cos(i)),
  }),
};

/** History fields that are measured times (they differ from run to run). */
const MEASURED = new Set(['seconds', 'samplesPerSec', 'gather', 'copyIn', 'compute', 'copyOut', 'reduceScatter', 'update', 'barrier']);

let config: RunConfig;
let run: PreparedRun;
/** The real checkpoint: global step 10 = epoch 2, step 2, with one epoch record and a partial epoch. */
let good: Uint8Array;
let goodFile: string;

// ---------------------------------------------------------------------------------------------
// Crafting files
// ---------------------------------------------------------------------------------------------

const Checkpoint = protobuf.loadSync(CHECKPOINT_PROTO_FILE).lookupType('ringtrain.checkpoint.Checkpoint');

function header(payload: Uint8Array, options: { magic?: Uint8Array; version?: number; flags?: number; length?: bigint } = {}): Uint8Array {
  const h = new Uint8Array(32);
  h.set(options.magic ?? new TextEncoder().encode('RTCKPT\r\n'), 0);
  const view = new DataView(h.buffer);
  view.setUint32(8, options.version ?? 1, true);
  view.setUint32(12, options.flags ?? 0, true);
  view.setBigUint64(16, options.length ?? BigInt(payload.length), true);
  view.setUint32(24, crc32c(payload), true);
  view.setUint32(28, crc32c(h.subarray(0, 28)), true);
  return h;
}

/** A whole file around `payload`, every CRC correct. */
function envelope(payload: Uint8Array, options: Parameters<typeof header>[1] = {}): Uint8Array {
  const file = new Uint8Array(32 + payload.length);
  file.set(header(payload, options), 0);
  file.set(payload, 32);
  return file;
}

/* eslint-disable @typescript-eslint/no-explicit-any */
type Message = any;

/** The real checkpoint's message, changed by `edit`, encoded again with every tensor CRC and the envelope recomputed. */
function edited(edit: (m: Message) => void): Uint8Array {
  const m = Checkpoint.decode(good.subarray(32)) as Message;
  edit(m);
  for (const t of [m.params, ...(m.optimizer?.state ?? [])]) if (t && t.data) t.crc32c = crc32c(t.data);
  return envelope(Checkpoint.encode(m).finish());
}

/** Edits the embedded JSON config (the object), keeping everything else. */
const editConfig = (edit: (c: any) => void) =>
  edited((m) => {
    const c = JSON.parse(m.configJson);
    edit(c);
    m.configJson = JSON.stringify(c);
  });

/** Edits the history (the parsed array). */
const editHistory = (edit: (h: any[]) => unknown) =>
  edited((m) => {
    const h = JSON.parse(m.historyJson);
    const replaced = edit(h);
    m.historyJson = JSON.stringify(replaced === undefined ? h : replaced);
  });

interface FuzzCase {
  name: string;
  bytes: Uint8Array;
}

function flipCases(random: () => number): FuzzCase[] {
  /** The damaged and crafted files, made in beforeAll from the real checkpoint. */
const cases: FuzzCase[] = [];
const caseFile = (i: number) => join(dir, `case-${String(i).padStart(3, '0')}.rtckpt`);
  for (let i = 0; i < 40; i++) {
    // Half in the header and the first metadata, half anywhere.
    const at = i < 20 ? Math.floor(random() * Math.min(good.length, 200)) : Math.floor(random() * good.length);
    const bit = 1 << Math.floor(random() * 8);
    const bytes = good.slice();
    bytes[at]! ^= bit;
    cases.push({ name: `flip bit ${Math.log2(bit)} of byte ${at}`, bytes });
  }
  for (let i = 0; i < 5; i++) {
    const bytes = good.slice();
    const at = Math.floor(random() * (good.length - 16));
    for (let j = 0; j < 16; j++) bytes[at + j] = Math.floor(random() * 256);
    cases.push({ name: `16 random bytes at ${at}`, bytes });
  }
  return cases;
}

function truncationCases(random: () => number): FuzzCase[] {
  const lengths = [0, 1, 7, 8, 12, 27, 31, 32, 33, 40, good.length - 1, good.length - 4];
  for (let i = 0; i < 6; i++) lengths.push(33 + Math.floor(random() * (good.length - 34)));
  return lengths.map((n) => ({ name: `truncated to ${n} bytes`, bytes: good.slice(0, n) }));
}

function extensionCases(): FuzzCase[] {
  const plus = (extra: Uint8Array) => {
    const bytes = new Uint8Array(good.length + extra.length);
    bytes.set(good);
    bytes.set(extra, good.length);
    return bytes;
  };
  return [
    { name: 'one zero byte appended', bytes: plus(new Uint8Array(1)) },
    { name: 'a newline appended', bytes: plus(Uint8Array.from([10])) },
    { name: '4 kB of zeros appended', bytes: plus(new Uint8Array(4096)) },
    { name: 'the file twice', bytes: plus(good) },
    { name: 'an unknown protobuf field appended after the payload', bytes: plus(Uint8Array.from([0xa8, 0x06, 0x01])) },
  ];
}

function headerCases(): FuzzCase[] {
  const payload = good.subarray(32);
  const text = (s: string) => new TextEncoder().encode(s);
  const withHeader = (h: Uint8Array) => {
    const bytes = good.slice();
    bytes.set(h, 0);
    return bytes;
  };
  // Text-mode line endings: \r\n became \n (every one, the magic's included).
  const lf = Uint8Array.from([...good].filter((b, i) => !(b === 13 && good[i + 1] === 10)));
  return [
    { name: 'magic: all zeros', bytes: withHeader(new Uint8Array(8)) },
    { name: 'magic: a zip file', bytes: Uint8Array.from([0x50, 0x4b, 0x03, 0x04, ...good.subarray(4)]) },
    { name: 'magic: \\r\\n converted to \\n', bytes: lf },
    { name: 'not a checkpoint: a JSON config', bytes: text(JSON.stringify(configJson)) },
    { name: 'not a checkpoint: 3 bytes of text', bytes: text('hi\n') },
    { name: 'magic lower case, header CRC matching', bytes: withHeader(header(payload, { magic: text('rtckpt\r\n') })) },
    { name: 'version 0, header CRC matching', bytes: withHeader(header(payload, { version: 0 })) },
    { name: 'version 2, header CRC matching', bytes: withHeader(header(payload, { version: 2 })) },
    { name: 'version 0xffffffff, header CRC matching', bytes: withHeader(header(payload, { version: 0xffffffff })) },
    { name: 'version 2, header CRC stale', bytes: (() => { const b = good.slice(); b[8] = 2; return b; })() },
    { name: 'flags 1, header CRC matching', bytes: withHeader(header(payload, { flags: 1 })) },
    { name: 'flags 0x80000000, header CRC matching', bytes: withHeader(header(payload, { flags: 0x80000000 })) },
    { name: 'payload length + 1, header CRC matching', bytes: withHeader(header(payload, { length: BigInt(payload.length + 1) })) },
    { name: 'payload length - 1, header CRC matching', bytes: withHeader(header(payload, { length: BigInt(payload.length - 1) })) },
    { name: 'payload length 0, header CRC matching', bytes: withHeader(header(payload, { length: 0n })) },
    { name: 'payload length 2^63, header CRC matching', bytes: withHeader(header(payload, { length: 2n ** 63n })) },
    { name: 'payload length 2^64 - 1, header CRC matching', bytes: withHeader(header(payload, { length: 2n ** 64n - 1n })) },
    { name: 'payload CRC zeroed, header CRC matching', bytes: (() => { const h = header(payload); h.fill(0, 24, 28); new DataView(h.buffer).setUint32(28, crc32c(h.subarray(0, 28)), true); return withHeader(h); })() },
  ];
}

function randomPayloadCases(random: () => number): FuzzCase[] {
  /** The damaged and crafted files, made in beforeAll from the real checkpoint. */
const cases: FuzzCase[] = [];
const caseFile = (i: number) => join(dir, `case-${String(i).padStart(3, '0')}.rtckpt`);
  for (let i = 0; i < 8; i++) {
    const n = [0, 1, 2, 5, 64, 300, 1000, 5000][i]!;
    cases.push({ name: `${n} random payload bytes, CRCs matching`, bytes: envelope(Uint8Array.from({ length: n }, () => Math.floor(random() * 256))) });
  }
  // A length-delimited field claiming 2 GB, and deep nesting.
  cases.push({ name: 'a field claiming 2 GB, CRCs matching', bytes: envelope(Uint8Array.from([0x22, 0xff, 0xff, 0xff, 0xff, 0x07, 0x7b])) });
  const nested: number[] = [];
  for (let i = 0; i < 2000; i++) nested.push(0x42, 0x00); // position (field 9) over and over: empty messages
  cases.push({ name: 'the position field 2000 times, CRCs matching', bytes: envelope(Uint8Array.from(nested)) });
  return cases;
}

/** Valid CRCs, contents that do not make sense. */
function contentCases(): FuzzCase[] {
  const c = (name: string, bytes: Uint8Array): FuzzCase => ({ name: `contents: ${name}`, bytes });
  return [
    // The envelope's message fields.
    c('format renamed', edited((m) => (m.format = 'ringtrain.checkpoint.v2'))),
    c('format version 2 in the payload', edited((m) => (m.formatVersion = 2))),
    // The config.
    c('config missing (empty text)', edited((m) => (m.configJson = ''))),
    c('config {}', edited((m) => (m.configJson = '{}'))),
    c('config []', edited((m) => (m.configJson = '[]'))),
    c('config null', edited((m) => (m.configJson = 'null'))),
    c('config 42', edited((m) => (m.configJson = '42'))),
    c('config truncated JSON with a newline', edited((m) => (m.configJson = '{\n"name":'))),
    c('config.training.batchSize 0', editConfig((x) => (x.training.batchSize = 0))),
    c('config.training.batchSize "8"', editConfig((x) => (x.training.batchSize = '8'))),
    c('config.training.epochs -1', editConfig((x) => (x.training.epochs = -1))),
    c('config.training.seed 1.5', editConfig((x) => (x.training.seed = 1.5))),
    c('config.training removed', editConfig((x) => delete x.training)),
    c('config.model removed', editConfig((x) => delete x.model)),
    c('config.model.layers []', editConfig((x) => (x.model.layers = []))),
    c('config.model.layers[0].type unknown', editConfig((x) => (x.model.layers[0].type = 'densse'))),
    c('config.optimizer.name "adma"', editConfig((x) => (x.optimizer.name = 'adma'))),
    c('config.loss.name unknown', editConfig((x) => (x.loss.name = 'hinge'))),
    c('config.data.source unknown', editConfig((x) => (x.data.source = 'imagenet'))),
    c('config.parallel.workers 0', editConfig((x) => (x.parallel.workers = 0))),
    c('config unknown field', editConfig((x) => (x.trainnig = {}))),
    c('config.name removed', editConfig((x) => delete x.name)),
    c('config.name ""', editConfig((x) => (x.name = ''))),
    c('config.metrics "mae"', editConfig((x) => (x.metrics = 'mae'))),
    // Against the run it resumes (valid on their own).
    c('config.training.batchSize 16 (another run)', editConfig((x) => (x.training.batchSize = 16))),
    c('config.metrics [] (another run)', editConfig((x) => (x.metrics = []))),
    // The model topology.
    c('model topology empty', edited((m) => (m.modelTopologyJson = ''))),
    c('model topology {}', edited((m) => (m.modelTopologyJson = '{}'))),
    c('model topology "x"', edited((m) => (m.modelTopologyJson = '"x"'))),
    c('model topology class_name 7', edited((m) => (m.modelTopologyJson = '{"class_name":7,"config":{}}'))),
    // The history.
    c('history {}', edited((m) => (m.historyJson = '{}'))),
    c('history empty text', edited((m) => (m.historyJson = ''))),
    c('history [1, 2]', edited((m) => (m.historyJson = '[1,2]'))),
    c('history [null]', edited((m) => (m.historyJson = '[null]'))),
    c('history [[]]', edited((m) => (m.historyJson = '[[]]'))),
    c('history: an epoch record with epoch 0', editHistory((h) => (h[0].epoch = 0))),
    c('history: an epoch record with loss "x"', editHistory((h) => (h[0].loss = 'x'))),
    c('history: an epoch record with samples -1', editHistory((h) => (h[0].samples = -1))),
    c('history: the partial epoch first', editHistory((h) => h.reverse())),
    c('history: the partial epoch with 3 metric sums', editHistory((h) => (h[1].metricSums = [1, 2, 3]))),
    c('history: the partial epoch with lossSum null', editHistory((h) => (h[1].lossSum = null))),
    c('history: the partial epoch with times {}', editHistory((h) => (h[1].times = {}))),
    c('history: the partial epoch at step 0', edited((m) => (m.position.stepInEpoch = 0))),
    // The layout and the tensors.
    c('layout empty, params empty', edited((m) => ((m.layout = []), (m.params.shape = [0]), (m.params.data = new Uint8Array(0)), m.optimizer.state.forEach((t: Message) => ((t.shape = [0]), (t.data = new Uint8Array(0))))))),
    c('layout: a weight without a name', edited((m) => (m.layout[1].name = ''))),
    c('layout: two weights of the same name', edited((m) => (m.layout[1].name = m.layout[0].name))),
    c('layout: weights swapped', edited((m) => ([m.layout[0], m.layout[1]] = [m.layout[1], m.layout[0]]))),
    c('layout: an overlap', edited((m) => (m.layout[1].offset = Number(m.layout[1].offset) - 1))),
    c('layout: a dimension 0', edited((m) => ((m.layout[3].shape = [0]), (m.layout[3].size = 0)))),
    c('layout: the last weight dropped', edited((m) => m.layout.pop())),
    c('layout: a size not the product of its shape', edited((m) => (m.layout[0].size = 5))),
    c('layout: dtype float64', edited((m) => (m.layout[0].dtype = 'float64'))),
    c('layout: a name with a newline', edited((m) => (m.layout[0].name = 'dense\nkernel'))),
    c('layout: a name with a newline and a wrong size', edited((m) => ((m.layout[0].name = 'dense\nkernel'), (m.layout[0].size = 5)))),
    c('optimizer state: a name with a newline and dtype float16', edited((m) => ((m.optimizer.state[0].name = 'm\r\nx'), (m.optimizer.state[0].dtype = 'float16')))),
    c('params missing', edited((m) => (m.params = null))),
    c('params renamed', edited((m) => (m.params.name = 'weights'))),
    c('params of shape [n, 1]', edited((m) => (m.params.shape = [Number(m.params.shape[0]), 1]))),
    c('params 4 bytes short', edited((m) => (m.params.data = m.params.data.subarray(0, m.params.data.length - 4)))),
    c('params dtype float16', edited((m) => (m.params.dtype = 'float16'))),
    c('params CRC stale (data changed)', (() => {
      const bytes = edited(() => undefined);
      const m = Checkpoint.decode(bytes.subarray(32)) as Message;
      m.params.data = m.params.data.slice();
      m.params.data[0] ^= 1;
      return envelope(Checkpoint.encode(m).finish());
    })()),
    // The optimizer.
    c('optimizer missing', edited((m) => (m.optimizer = null))),
    c('optimizer name "adma"', edited((m) => (m.optimizer.name = 'adma'))),
    c('optimizer name sgd (the config says adam)', edited((m) => (m.optimizer.name = 'sgd'))),
    c('optimizer state m renamed', edited((m) => (m.optimizer.state[0].name = 'mean'))),
    c('optimizer state v missing', edited((m) => m.optimizer.state.pop())),
    c('optimizer state: none', edited((m) => (m.optimizer.state = []))),
    c('optimizer state: m and v swapped', edited((m) => m.optimizer.state.reverse())),
    c('optimizer state: an extra one', edited((m) => m.optimizer.state.push({ ...m.optimizer.state[0], name: 'w' }))),
    c('optimizer state: v one value short', edited((m) => ((m.optimizer.state[1].shape = [Number(m.optimizer.state[1].shape[0]) - 1]), (m.optimizer.state[1].data = m.optimizer.state[1].data.subarray(4))))),
    c('optimizer learningRate NaN', edited((m) => (m.optimizer.hyperParameters.learningRate = { number: Number.NaN }))),
    c('optimizer learningRate -1', edited((m) => (m.optimizer.hyperParameters.learningRate = { number: -1 }))),
    c('optimizer beta1 1', edited((m) => (m.optimizer.hyperParameters.beta1 = { number: 1 }))),
    c('optimizer beta2 missing', edited((m) => delete m.optimizer.hyperParameters.beta2)),
    c('optimizer epsilon with no value', edited((m) => (m.optimizer.hyperParameters.epsilon = {}))),
    c('optimizer learningRate 0.02 (another run)', edited((m) => (m.optimizer.hyperParameters.learningRate = { number: 0.02 }))),
    c('optimizer step not the global step', edited((m) => (m.optimizer.step = 11))),
    c('optimizer step 2^60', edited((m) => (m.optimizer.step = protobuf.util.Long ? protobuf.util.Long.fromString('1152921504606846976', true) : 2 ** 60))),
    // The position and the sampler.
    c('position missing', edited((m) => (m.position = null))),
    c('position global step 2^64 - 1 (a negative step as uint64)', edited((m) => (m.position.globalStep = protobuf.util.Long ? protobuf.util.Long.fromString('18446744073709551615', true) : 2 ** 64))),
    c('position global step 9 (optimizer step 10)', edited((m) => (m.position.globalStep = 9))),
    c('position samples seen more than global step x batch size', edited((m) => (m.position.samplesSeen = 81))),
    c('position step in epoch past the epoch', edited((m) => (m.position.stepInEpoch = 8))),
    c('position step in epoch 10^9', edited((m) => (m.position.stepInEpoch = 1e9))),
    c('sampler missing', edited((m) => (m.sampler = null))),
    c('sampler seed not the config seed', edited((m) => (m.sampler.seed = 6))),
    c('sampler shuffle off (the config shuffles)', edited((m) => (m.sampler.shuffle = false))),
    c('replicas 0', edited((m) => (m.replicas = 0))),
    c('rng states with the same name twice', edited((m) => (m.rngStates = [{ name: 'a', state: new Uint8Array(1) }, { name: 'a', state: new Uint8Array(1) }]))),
  ];
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

/** What `train --resume FILE` does with a checkpoint before any replica starts (Trainer.create). */
async function resumeChecks(file: string): Promise<void> {
  const state = await readCheckpointFile(file);
  assertResumable(file, state, config, run.layout, run.optimizer);
  assertPositionFits(file, state, stepsPerEpoch(run.datasets.train!.size, config.training.batchSize));
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([promise, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(timer),
  );
}

type Outcome = { refused: string } | { problem: string };

/** The outcome of one case: the kind of refusal, or what is wrong with how it was (not) refused. */
async function tryCase(file: string): Promise<Outcome> {
  try {
    await withDeadline(resumeChecks(file), CASE_DEADLINE_MS, file);
  } catch (error) {
    if (!(error instanceof UserError)) return { problem: `not a UserError: ${(error as Error)?.stack ?? String(error)}` };
    const message = error.message;
    if (message.includes('\n') || message.includes('\r')) return { problem: `message of more than one line: ${JSON.stringify(message)}` };
    if (!message.includes(file)) return { problem: `message does not name the file: ${message}` };
    if (error instanceof CheckpointError) {
      // 'io' is how readCheckpointFile wraps anything unexpected: a bug, for a file that is there.
      if (error.problem === 'io') return { problem: `an unexpected error, wrapped as io: ${message}; cause ${(error.cause as Error)?.stack}` };
      return { refused: error.problem };
    }
    return { refused: /^cannot resume from /.test(message) ? 'resume' : 'user-error' };
  }
  return { problem: 'accepted' };
}

// ---------------------------------------------------------------------------------------------

beforeAll(async () => {
  writeFileSync(configFile, JSON.stringify(configJson, null, 2));
  config = parseRunConfig(configJson);
  const trainer = await Trainer.create(config, { data, checkpoints: true });
  try {
    await trainer.fit();
  } finally {
    await trainer.close();
  }
  goodFile = new CheckpointStore(config.checkpoint.dir).resolve('ckpt-e0001-s000010.rtckpt');
  good = new Uint8Array(readFileSync(goodFile));
  // The same bytes on every run (so the seeded flips land in the same places): the time of
  // writing and the measured times in the history are set to fixed values.
  good = edited((m) => {
    m.createdAt = '2026-12-01T00:00:00.000Z';
    m.historyJson = JSON.stringify(JSON.parse(m.historyJson), (key, value: unknown) => (typeof value === 'number' && MEASURED.has(key) ? 0.5 : value));
  });
  writeFileSync(goodFile, good);
  run = await prepareRun(config, { data });
  const random = mulberry32(SEED);
  cases.push(...flipCases(random), ...truncationCases(random), ...extensionCases(), ...headerCases(), ...randomPayloadCases(random), ...contentCases());
  for (const [i, fuzz] of cases.entries()) writeFileSync(caseFile(i), fuzz.bytes);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The damaged and crafted files, made in beforeAll from the real checkpoint. */
const cases: FuzzCase[] = [];
const caseFile = (i: number) => join(dir, `case-${String(i).padStart(3, '0')}.rtckpt`);

describe('checkpoint fuzz', () => {
  it('the real checkpoint passes the same checks (a refusal below is for the damage alone)', async () => {
    await expect(resumeChecks(goodFile)).resolves.toBeUndefined();
    const state = await readCheckpointFile(goodFile);
    expect(state.position).toEqual({ epoch: 1, stepInEpoch: 2, globalStep: 10, samplesSeen: 80 });
    expect(state.history.map((r) => ('type' in r ? r.type : (r as { event: string }).event))).toEqual(['epoch', 'partial-epoch']);
  });

  it('refuses every damaged or crafted file with a one-line UserError naming it, within the deadline', async () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
    const counts: Record<string, number> = {};
    const problems: string[] = [];
    const started = performance.now();
    for (const [i, fuzz] of cases.entries()) {
      const file = caseFile(i);
      const outcome = await tryCase(file);
      if ('problem' in outcome) problems.push(`${fuzz.name} (${file}): ${outcome.problem}`);
      else counts[outcome.refused] = (counts[outcome.refused] ?? 0) + 1;
    }
    const summary = {
      seed: SEED,
      baseBytes: good.length,
      cases: cases.length,
      refused: Object.values(counts).reduce((a, b) => a + b, 0),
      byProblem: Object.fromEntries(Object.entries(counts).sort(([a], [b]) => (a < b ? -1 : 1))),
      failures: problems.length,
      seconds: Number(((performance.now() - started) / 1000).toFixed(2)),
    };
    console.log(`checkpoint fuzz: ${JSON.stringify(summary)}`);
    expect(problems).toEqual([]);
  });

  it('the real CLI refuses a handful of them: exit 2, one line naming the file, no stack', async () => {
    const pick = (name: string) => {
      const i = cases.findIndex((c) => c.name === name);
      expect(i, name).toBeGreaterThanOrEqual(0);
      return caseFile(i);
    };
    const checks: [string[], string][] = [
      [['inspect', pick('truncated to 40 bytes')], 'truncated'],
      [['inspect', pick('contents: config.training.batchSize 0')], 'invalid contents: config.training.batchSize'],
      [['export', pick('contents: optimizer state m renamed'), join(dir, 'export'), '--format', 'tfjs'], 'invalid contents: optimizer.state'],
      [['train', configFile, '--no-checkpoints', '--resume', pick('contents: history [1, 2]')], 'invalid contents: history[0]'],
      [['train', configFile, '--no-checkpoints', '--resume', pick('magic: all zeros')], 'wrong magic'],
      [['train', configFile, '--no-checkpoints', '--resume', pick('contents: position step in epoch past the epoch')], 'position.stepInEpoch'],
    ];
    const results = await inPairs(checks, async ([argv, expected]) => ({ argv, expected, ...(await runCli(argv, { cwd: dir, deadlineMs: CLI_DEADLINE_MS })) }));
    for (const r of results) {
      const file = r.argv[0] === 'train' ? r.argv[4]! : r.argv[1]!;
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      expect({ argv: r.argv, code: r.code, stderr: lines }).toEqual({ argv: r.argv, code: 2, stderr: [expect.any(String)] });
      expect(lines[0]).toMatch(/^ringtrain: /);
      expect(lines[0]).toContain(file);
      expect(lines[0]).toContain(r.expected);
      expect(r.stderr).not.toContain('    at ');
    }
  }, 6 * CLI_DEADLINE_MS);
});
