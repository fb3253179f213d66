/**
 * One short run of the CLI with TensorBoard histograms, step scalars and --trace, read back by
 * readers written here: the TFRecord framing with a bitwise CRC32C (not the project's table
 * code), the protobuf wire format by TensorFlow's field numbers (not the project's .proto
 * copies), and the trace by JSON.parse. Values are checked against the run's metrics log and
 * its checkpoints.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

// ---- An independent reader of TensorBoard event files ----

/** CRC32C bit by bit (reflected polynomial 0x82F63B78). */
function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

function masked(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** The records of a TFRecord file; throws on any CRC that does not match. */
function readRecords(bytes: Uint8Array): Uint8Array[] {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: Uint8Array[] = [];
  let at = 0;
  while (at < bytes.length) {
    const length = Number(view.getBigUint64(at, true));
    if (view.getUint32(at + 8, true) !== masked(crc32cBitwise(bytes.subarray(at, at + 8)))) throw new Error(`length CRC of the record at ${at}`);
    const data = bytes.subarray(at + 12, at + 12 + length);
    if (data.length !== length) throw new Error(`record at ${at} is truncated`);
    if (view.getUint32(at + 12 + length, true) !== masked(crc32cBitwise(data))) throw new Error(`data CRC of the record at ${at}`);
    records.push(data);
    at += 12 + length + 4;
  }
  return records;
}

type Field = { wire: number; value: bigint | Uint8Array | DataView };

/** Protobuf wire format: field number -> values in order. */
function fields(bytes: Uint8Array): Map<number, Field[]> {
  const out = new Map<number, Field[]>();
  let at = 0;
  const varint = (): bigint => {
    let result = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const b = bytes[at++]!;
      result |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return result;
    }
  };
  while (at < bytes.length) {
    const key = Number(varint());
    const number = key >>> 3;
    const wire = key & 7;
    let value: Field['value'];
    if (wire === 0) value = varint();
    else if (wire === 1) (value = new DataView(bytes.buffer, bytes.byteOffset + at, 8)), (at += 8);
    else if (wire === 5) (value = new DataView(bytes.buffer, bytes.byteOffset + at, 4)), (at += 4);
    else if (wire === 2) {
      const n = Number(varint());
      value = bytes.subarray(at, at + n);
      at += n;
    } else throw new Error(`wire type ${wire}`);
    out.set(number, [...(out.get(number) ?? []), { wire, value }]);
  }
  return out;
}

const one = (f: Map<number, Field[]>, n: number) => f.get(n)?.[0]?.value;
const double = (v: unknown) => (v as DataView).getFloat64(0, true);
const float = (v: unknown) => (v as DataView).getFloat32(0, true);
const text = (v: unknown) => new TextDecoder().decode(v as Uint8Array);
const packedDoubles = (v: unknown) => {
  const b = v as Uint8Array;
  return Array.from({ length: b.length / 8 }, (_, i) => new DataView(b.buffer, b.byteOffset + 8 * i, 8).getFloat64(0, true));
};

interface Value {
  tag: string;
  simple?: number;
  histo?: { min: number; max: number; num: number; sum: number; sumSquares: number; limits: number[]; counts: number[] };
  text?: string;
  plugin?: string;
  dataClass?: number;
}

interface DecodedEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: Value[];
}

/** Event: wall_time 1 (double), step 2 (int64), file_version 3, summary 5; Summary.value 1; Value: tag 1, simple_value 2, histo 5, tensor 8, metadata 9. */
function decodeEvent(bytes: Uint8Array): DecodedEvent {
  const e = fields(bytes);
  const summary = one(e, 5);
  const values = summary
    ? (fields(summary as Uint8Array).get(1) ?? []).map(({ value }): Value => {
        const v = fields(value as Uint8Array);
        const out: Value = { tag: text(one(v, 1)) };
        if (v.has(2)) out.simple = float(one(v, 2));
        const histo = one(v, 5);
        if (histo) {
          const h = fields(histo as Uint8Array);
          out.histo = { min: double(one(h, 1)), max: double(one(h, 2)), num: double(one(h, 3)), sum: double(one(h, 4)), sumSquares: double(one(h, 5)), limits: packedDoubles(one(h, 6)), counts: packedDoubles(one(h, 7)) };
        }
        const tensor = one(v, 8);
        if (tensor) {
          const t = fields(tensor as Uint8Array);
          expect(Number(one(t, 1))).toBe(7); // DT_STRING
          out.text = text(one(t, 8));
        }
        const metadata = one(v, 9);
        if (metadata) {
          const m = fields(metadata as Uint8Array);
          out.plugin = text(one(fields(one(m, 1) as Uint8Array), 1));
          out.dataClass = Number(one(m, 4));
        }
        return out;
      })
    : [];
  return { wallTime: double(one(e, 1)), step: Number(one(e, 2) ?? 0n), fileVersion: e.has(3) ? text(one(e, 3)) : undefined, values };
}

function readEventFile(dir: string): DecodedEvent[] {
  const files = readdirSync(dir);
  expect(files).toHaveLength(1);
  expect(files[0]).toMatch(/^events\.out\.tfevents\.\d{10}\.[^.]+\.\d+\.\d+\.v2$/);
  return readRecords(readFileSync(join(dir, files[0]!))).map(decodeEvent);
}

/** tag -> [step, value] in file order. */
function scalarSeries(events: DecodedEvent[]): Map<string, [number, number][]> {
  const series = new Map<string, [number, number][]>();
  for (const e of events) for (const v of e.values) if (v.simple !== undefined) series.set(v.tag, [...(series.get(v.tag) ?? []), [e.step, v.simple]]);
  return series;
}

// ---- The run ----

const EPOCHS = 3;
const STEPS_PER_EPOCH = 6; // 48 training samples of 64 (validation 0.25), batches of 8
const EVERY_STEPS = 4;
const LEARNING_RATE = 0.05;

interface EpochRecord {
  event: string;
  epoch: number;
  loss: number;
  metrics: Record<string, number>;
  samplesPerSec: number;
  validation: { loss: number; metrics: Record<string, number> };
  phaseTimes: Record<string, number>;
}

let out: string;
let traceFile: string;
let epochs: EpochRecord[];

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-tb-'));
  out = join(dir, 'run');
  traceFile = join(dir, 'trace.json');
  const config = {
    name: 'tb-linear',
    model: { inputShape: [1], layers: [{ type: 'dense', units: 8, activation: 'relu' }, { type: 'dense', units: 1 }] },
    data: { source: 'linear', samples: 64 },
    loss: 'meanSquaredError',
    metrics: ['meanAbsoluteError'],
    optimizer: { name: 'sgd', learningRate: LEARNING_RATE },
    training: { epochs: EPOCHS, batchSize: 8, validationSplit: 0.25 },
    checkpoint: { everyEpoch: true, keepLast: EPOCHS },
    report: { tensorboard: { everySteps: EVERY_STEPS, histograms: true } },
  };
  const configFile = join(dir, 'config.json');
  writeFileSync(configFile, JSON.stringify(config));
  // Replica 1 fails at the third step of the first epoch: the trace shows the recovery.
  const env = { ...process.env, RINGTRAIN_INJECT_FAULT: JSON.stringify({ rank: 1, throwAtStep: 2 }) };
  const run = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), 'train', configFile, '--workers', '2', '--out', out, '--trace', traceFile], { cwd: root, env, encoding: 'utf8', timeout: 120_000 });
  expect(run.stderr).toContain(`trace written to ${traceFile}`);
  expect(run.status).toBe(0);
  epochs = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as EpochRecord)
    .filter((r) => r.event === 'epoch');
  expect(epochs).toHaveLength(EPOCHS);
}, 130_000);

describe('TensorBoard event files', () => {
  it('the reader here checks CRC32C against its check value', () => {
    expect(crc32cBitwise(new TextEncoder().encode('123456789'))).toBe(0xe3069283);
  });

  it('train/: file version first, the config as text, epoch and step scalars, histograms of the checkpointed weights', async () => {
    const events = readEventFile(join(out, 'tensorboard', 'train'));
    expect(events[0]).toMatchObject({ fileVersion: 'brain.Event:2', values: [] });
    expect(Math.abs(events[0]!.wallTime - Date.now() / 1000)).toBeLessThan(600);

    const configValue = events.flatMap((e) => e.values).find((v) => v.tag === 'config')!;
    expect(configValue.plugin).toBe('text');
    expect(configValue.dataClass).toBe(2); // DATA_CLASS_TENSOR
    expect(JSON.parse(configValue.text!.replace(/^ {4}/gm, ''))).toMatchObject({ name: 'tb-linear', report: { tensorboard: { everySteps: EVERY_STEPS, histograms: true } } });

    const series = scalarSeries(events);
    const epochSteps = epochs.map((_, i) => i);
    const f = Math.fround;
    expect(series.get('epoch_loss')).toEqual(epochs.map((e, i) => [epochSteps[i], f(e.loss)]));
    expect(series.get('epoch_meanAbsoluteError')).toEqual(epochs.map((e, i) => [i, f(e.metrics.meanAbsoluteError!)]));
    expect(series.get('epoch_learning_rate')).toEqual(epochs.map((_, i) => [i, f(LEARNING_RATE)]));
    expect(series.get('epoch_samples_per_second')).toEqual(epochs.map((e, i) => [i, f(e.samplesPerSec)]));
    expect(series.get('epoch_sync_share')).toEqual(
      epochs.map((e, i) => {
        const t = e.phaseTimes;
        return [i, f((t.reduceScatter! + t.barrier!) / Object.values(t).reduce((a, b) => a + b, 0))];
      }),
    );

    // Every EVERY_STEPS global steps; at an epoch's last step the running values are the epoch's.
    const globalSteps = Array.from({ length: Math.floor((EPOCHS * STEPS_PER_EPOCH) / EVERY_STEPS) }, (_, i) => (i + 1) * EVERY_STEPS);
    const batchLoss = series.get('batch_loss')!;
    expect(batchLoss.map(([step]) => step)).toEqual(globalSteps);
    for (const [step, loss] of batchLoss) {
      if (step % STEPS_PER_EPOCH === 0) expect(loss).toBe(f(epochs[step / STEPS_PER_EPOCH - 1]!.loss));
      else expect(loss).toBeGreaterThan(0);
    }
    expect(series.get('batch_meanAbsoluteError')!.map(([step]) => step)).toEqual(globalSteps);
    expect(series.get('batch_learning_rate')).toEqual(globalSteps.map((s) => [s, f(LEARNING_RATE)]));
    for (const tag of ['batch_samples_per_second', 'batch_sync_share']) expect(series.get(tag)!.map(([step]) => step)).toEqual(globalSteps);

    // Histograms: each weight of each epoch, against the epoch-end checkpoint's parameters.
    const histograms = events.flatMap((e) => e.values.filter((v) => v.histo).map((v) => ({ step: e.step, ...v })));
    expect(histograms.map((h) => `${h.step}:${h.tag}`)).toEqual(epochSteps.flatMap((s) => ['dense_1/kernel', 'dense_1/bias', 'dense_2/kernel', 'dense_2/bias'].map((n) => `${s}:${n}/histogram`)));
    for (const epoch of epochSteps) {
      const name = `ckpt-e${String(epoch + 1).padStart(4, '0')}-s${String((epoch + 1) * STEPS_PER_EPOCH).padStart(6, '0')}.rtckpt`;
      const state = await readCheckpointFile(join(out, 'checkpoints', name));
      for (const entry of state.layout) {
        const values = Array.from(state.params.subarray(entry.offset, entry.offset + entry.size));
        const h = histograms.find((x) => x.step === epoch && x.tag === `${entry.name}/histogram`)!.histo!;
        expect(h.num).toBe(values.length);
        expect(h.min).toBe(Math.min(...values));
        expect(h.max).toBe(Math.max(...values));
        expect(h.sum).toBeCloseTo(values.reduce((a, b) => a + b, 0), 12);
        expect(h.sumSquares).toBeCloseTo(values.reduce((a, b) => a + b * b, 0), 12);
        expect(h.limits.at(-1)).toBe(h.max);
        // Bucket i holds (limits[i-1], limits[i]], the first from the min.
        const counts = h.limits.map((limit, i) => values.filter((v) => v <= limit && (i === 0 || v > h.limits[i - 1]!)).length);
        expect(h.counts).toEqual(counts);
      }
    }
  });

  it('validation/: the validation loss and metrics per epoch', () => {
    const series = scalarSeries(readEventFile(join(out, 'tensorboard', 'validation')));
    expect([...series.keys()]).toEqual(['epoch_loss', 'epoch_meanAbsoluteError']);
    expect(series.get('epoch_loss')).toEqual(epochs.map((e, i) => [i, Math.fround(e.validation.loss)]));
    expect(series.get('epoch_meanAbsoluteError')).toEqual(epochs.map((e, i) => [i, Math.fround(e.validation.metrics.meanAbsoluteError!)]));
  });
});

// ---- The trace ----

interface TraceRecord {
  name: string;
  ph: string;
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args?: Record<string, unknown>;
}

const PHASE_SPANS: Record<string, string> = { gather: 'gather', copyIn: 'copy in', compute: 'forward+backward', copyOut: 'copy out', reduceScatter: 'reduce-scatter', update: 'update', barrier: 'barrier' };

/** The spans a replica's span may lie directly inside. */
const PARENTS: Record<string, string[]> = {
  step: ['none'],
  ...Object.fromEntries(Object.values(PHASE_SPANS).map((p) => [p, ['step']])),
  'reduce-scatter in process': ['reduce-scatter'],
  'all-reduce across processes': ['reduce-scatter', 'flag agreement'],
  'flag agreement': ['update'],
  wait: ['reduce-scatter in process', 'all-reduce across processes', 'flag agreement', 'barrier'],
};

describe('the trace (--trace FILE)', () => {
  let records: TraceRecord[];
  let tracks: Map<number, string>;
  let spans: TraceRecord[];

  beforeAll(() => {
    records = JSON.parse(readFileSync(traceFile, 'utf8')) as TraceRecord[];
    tracks = new Map(records.filter((r) => r.ph === 'M' && r.name === 'thread_name').map((r) => [r.tid, (r.args as { name: string }).name]));
    spans = records.filter((r) => r.ph === 'X');
  });

  it('has a track for the coordinator, the checkpoint writes and each replica, all in process 0', () => {
    expect(records.find((r) => r.name === 'process_name')).toMatchObject({ ph: 'M', pid: 0 });
    expect(Object.fromEntries(tracks)).toEqual({ 0: 'coordinator', 1: 'checkpoint writes', 2: 'replica 0', 3: 'replica 1' });
    expect(new Set(spans.map((s) => s.pid))).toEqual(new Set([0]));
    const names = (tid: number) => new Set(spans.filter((s) => s.tid === tid).map((s) => s.name.replace(/\d+/g, 'N')));
    expect(names(0)).toEqual(new Set(['steps N-N of epoch N', 'checkpoint capture', 'evaluate on validation data', 'evaluate on test data', 'recovery']));
    const recovery = spans.filter((s) => s.name === 'recovery');
    expect(recovery).toHaveLength(1);
    expect(recovery[0]!.args).toMatchObject({ attempt: 1, error: expect.stringContaining('injected fault in replica 1 at step 2') });
    // It follows the segment that failed, and the segment that replays its steps follows it.
    const segments = spans.filter((s) => s.tid === 0 && s.name.startsWith('steps ')).sort((a, b) => a.ts - b.ts);
    const replay = segments.findIndex((s) => s.ts > recovery[0]!.ts);
    expect(segments[replay - 1]!.name).toBe('steps 1-4 of epoch 1');
    expect(segments[replay]!.name).toBe('steps 1-4 of epoch 1');
    expect(names(1)).toEqual(new Set(['checkpoint write (step N)']));
    for (const tid of [2, 3]) {
      for (const name of ['step N', ...Object.values(PHASE_SPANS), 'reduce-scatter in process']) expect(names(tid).has(name)).toBe(true);
      // One span per step of the run, named by its global step.
      const steps = spans.filter((s) => s.tid === tid && s.name.startsWith('step ')).map((s) => s.name);
      expect(steps).toEqual(Array.from({ length: EPOCHS * STEPS_PER_EPOCH }, (_, i) => `step ${i + 1}`));
    }
    expect(spans.filter((s) => s.tid === 1).map((s) => s.name)).toEqual(epochs.map((_, i) => `checkpoint write (step ${(i + 1) * STEPS_PER_EPOCH})`));
  });

  it('spans nest on every track: steps hold phases, phases hold collectives, collectives hold waits', () => {
    const EPS = 1e-3; // µs: ts + dur is added back in floating point
    for (const tid of tracks.keys()) {
      if (tid === 1) continue; // writes queue one behind the other; they do not nest
      const track = spans.filter((s) => s.tid === tid).sort((a, b) => a.ts - b.ts || b.dur - a.dur);
      const open: TraceRecord[] = [];
      for (const span of track) {
        expect(span.dur).toBeGreaterThanOrEqual(0);
        while (open.length > 0 && span.ts >= open.at(-1)!.ts + open.at(-1)!.dur - EPS) open.pop();
        const parent = open.at(-1);
        if (parent) expect(span.ts + span.dur, `${span.name} inside ${parent.name} on track ${tid}`).toBeLessThanOrEqual(parent.ts + parent.dur + EPS);
        if (tid >= 2) {
          const kind = (s: TraceRecord | undefined) => (s === undefined ? 'none' : s.name.startsWith('step ') ? 'step' : s.name);
          expect(PARENTS[kind(span)], `parent of ${span.name}`).toContain(kind(parent));
        }
        open.push(span);
      }
    }
  });

  it('the phase spans of the replicas add up to the phase times the run reports', () => {
    for (const [phase, name] of Object.entries(PHASE_SPANS)) {
      const reported = epochs.reduce((sum, e) => sum + e.phaseTimes[phase]!, 0) * 1e6; // µs, averaged over replicas
      const phaseSpans = spans.filter((s) => s.tid >= 2 && s.name === name);
      expect(phaseSpans.length, name).toBeGreaterThanOrEqual(2 * EPOCHS * STEPS_PER_EPOCH);
      const traced = phaseSpans.reduce((sum, s) => sum + s.dur, 0) / 2;
      // Each duration is a difference of two timestamps of about 1.8e15 µs (0.25 µs apart).
      expect(Math.abs(traced - reported), name).toBeLessThanOrEqual(phaseSpans.length * 0.5 + reported * 1e-9);
    }
  });
});
