/**
 * What the dashboard and report.html show of a run, read from its folder: the metrics log
 * (metrics.jsonl: start, progress, epoch, recovery and summary records) and the checkpoint
 * folder (names, sizes, the `best` pointer and each file's position and last history record,
 * read without its tensors). Reads are bounded: the log is read from where the last read ended
 * (it only grows, or starts afresh), at most MAX_LOG_BYTES of it, and no symbolic link is followed.
 */
import { lstatSync, readdirSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { peekCheckpoint, type CheckpointPeek } from '../../checkpoint/peek.js';
import { BEST_POINTER, parseCheckpointFileName } from '../../checkpoint/store.js';
import { readRegularFileSync, READ_LIMITS } from '../../util/read-regular-file.js';

export const METRICS_LOG = 'metrics.jsonl';
export const CHECKPOINT_FOLDER = 'checkpoints';
/** A metrics log is a few hundred bytes an epoch and a progress record a second: 64 MiB is weeks of training. */
export const MAX_LOG_BYTES = 64 << 20;
/** Progress points kept per run; beyond, every other one is dropped (the curve keeps its shape). */
const MAX_PROGRESS_POINTS = 20_000;
/** Checkpoints looked into per run (the newest). */
const MAX_CHECKPOINTS = 200;
/** A run without a summary whose log changed this recently is taken to be training. */
const RUNNING_WITHIN_MS = 60_000;

export type Values = Record<string, number>;

/** One point of the curves: x is the global step (optimizer updates), loss and metrics as named in the log. */
export interface CurvePoint {
  step: number;
  epoch: number;
  values: Values;
}

export interface EpochRow {
  epoch: number;
  step: number;
  seconds: number;
  samplesPerSec: number;
  values: Values;
  /** Seconds per phase, summed over the epoch's steps (average of the replicas). */
  phaseTimes?: Values;
  /** Seconds per phase of each replica of the process. */
  replicaPhaseTimes?: Values[];
  steps: number;
}

export interface CheckpointRow {
  file: string;
  bytes: number;
  epoch: number;
  step: number;
  createdAt?: string;
  best: boolean;
  /** Loss and metrics of the last epoch it holds (val_ prefixed for validation), when readable. */
  values: Values;
  error?: string;
}

export type RunStatus = 'running' | 'finished' | 'stopped' | 'interrupted';

export interface RunData {
  /** The folder relative to the dashboard's root, with '/' ('.' for the root itself). */
  id: string;
  name: string;
  status: RunStatus;
  /** Last change of the metrics log (ms since 1970). */
  updatedAt: number;
  startedAt?: string;
  stepsPerEpoch?: number;
  epochsPlanned?: number;
  replicas?: number;
  processes?: number;
  backend?: string;
  parameters?: number;
  /** Running values within epochs and the epochs' values. */
  progress: CurvePoint[];
  epochs: EpochRow[];
  recoveries: Record<string, unknown>[];
  summary?: Record<string, unknown>;
  checkpoints: CheckpointRow[];
  /** What could not be read (a log past MAX_LOG_BYTES, damaged lines, an unreadable checkpoint). */
  notes: string[];
}

type LogRecord = Record<string, unknown>;

const isRecord = (v: unknown): v is LogRecord => v !== null && typeof v === 'object' && !Array.isArray(v);
const num = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);

/** Loss, metrics, validation (val_*) and learning rate of a progress or epoch record, flat. */
function valuesOf(record: LogRecord): Values {
  const values: Values = {};
  const put = (key: string, v: unknown) => {
    if (typeof v === 'number') values[key] = v;
  };
  put('loss', record.loss);
  if (isRecord(record.metrics)) for (const [k, v] of Object.entries(record.metrics)) put(k, v);
  if (isRecord(record.validation)) {
    put('val_loss', record.validation.loss);
    if (isRecord(record.validation.metrics)) for (const [k, v] of Object.entries(record.validation.metrics)) put(`val_${k}`, v);
  }
  // The learning rate, under either name a log may give it.
  put('lr', record.lr ?? record.learningRate);
  return values;
}

function timesOf(v: unknown): Values | undefined {
  if (!isRecord(v)) return undefined;
  const out: Values = {};
  for (const [k, t] of Object.entries(v)) if (typeof t === 'number') out[k] = t;
  return out;
}

/** The parsed log of one run folder, extended by each read as the file grows. */
class LogState {
  offset = 0;
  size = 0;
  mtimeMs = 0;
  rest = '';
  /** The log's first bytes (its start record names the time it began): another log begins otherwise. */
  head: Buffer = Buffer.alloc(0);
  records: LogRecord[] = [];
  damaged = 0;
  truncated = false;
}

/** Reads run folders under a root, remembering how far each log was read. */
export class RunReader {
  private readonly logs = new Map<string, LogState>();
  /** Checkpoint facts by path, size and time: a checkpoint file is written once and not changed. */
  private readonly peeks = new Map<string, CheckpointPeek>();

  constructor(readonly root: string) {}

  /** Last change of a run's checkpoint folder (a checkpoint written or removed), 0 when there is none. */
  checkpointsChangedAt(dir: string): number {
    try {
      return lstatSync(path.join(dir, CHECKPOINT_FOLDER)).mtimeMs;
    } catch {
      return 0;
    }
  }

  /** Folders under the root (the root too) holding a metrics log, 3 levels deep at most; no links are followed. */
  listRuns(): { id: string; dir: string; stats: Stats }[] {
    const found: { id: string; dir: string; stats: Stats }[] = [];
    let visited = 0;
    const walk = (dir: string, id: string, depth: number) => {
      if (++visited > 2000) return;
      const log = regularFileStats(path.join(dir, METRICS_LOG));
      if (log) found.push({ id, dir, stats: log });
      if (depth >= 3) return;
      let entries;
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        // Dirent.isDirectory() is false for a link to a folder: links are not followed.
        if (!e.isDirectory() || e.name.startsWith('.') || e.name === CHECKPOINT_FOLDER || e.name === 'tensorboard' || e.name === 'node_modules') continue;
        walk(path.join(dir, e.name), id === '.' ? e.name : `${id}/${e.name}`, depth + 1);
      }
    };
    walk(this.root, '.', 0);
    return found;
  }

  /** The run in folder `dir` (`id` names it in the page); its checkpoints too unless `checkpoints` is false. */
  async read(dir: string, id: string, options: { checkpoints?: boolean } = {}): Promise<RunData> {
    const state = await this.readLog(dir);
    const run = buildRun(id, path.basename(path.resolve(dir)), state);
    if (options.checkpoints !== false) run.checkpoints = await readCheckpoints(path.join(dir, CHECKPOINT_FOLDER), run, this.peeks);
    return run;
  }

  private async readLog(dir: string): Promise<LogState> {
    const file = path.join(dir, METRICS_LOG);
    let state = this.logs.get(dir) ?? new LogState();
    const stats = regularFileStats(file);
    if (!stats) return new LogState();
    // A new run started the log afresh (it is shorter, was rewritten, or begins otherwise): read it from the start.
    if (stats.size < state.size || (stats.size === state.size && stats.mtimeMs !== state.mtimeMs) || (state.offset > 0 && !(await startsWith(file, state.head)))) state = new LogState();
    if (stats.size > state.offset && !state.truncated) {
      const end = Math.min(stats.size, MAX_LOG_BYTES);
      if (end > state.offset) {
        const handle = await open(file, 'r');
        try {
          const bytes = Buffer.alloc(end - state.offset);
          const { bytesRead } = await handle.read(bytes, 0, bytes.length, state.offset);
          state.offset += bytesRead;
          const text = state.rest + bytes.subarray(0, bytesRead).toString('utf8');
          const lines = text.split('\n');
          // The last piece may be a line still being written: kept for the next read.
          state.rest = lines.pop() ?? '';
          for (const line of lines) {
            if (line.trim() === '') continue;
            try {
              const record: unknown = JSON.parse(line);
              if (isRecord(record)) state.records.push(record);
              else state.damaged++;
            } catch {
              state.damaged++;
            }
          }
        } finally {
          await handle.close();
        }
      }
      state.truncated = stats.size > MAX_LOG_BYTES;
      if (state.head.length < HEAD_BYTES) state.head = await readHead(file, Math.min(state.offset, HEAD_BYTES));
    }
    state.size = stats.size;
    state.mtimeMs = stats.mtimeMs;
    this.logs.set(dir, state);
    return state;
  }
}

const HEAD_BYTES = 256;

async function readHead(file: string, length: number): Promise<Buffer> {
  const handle = await open(file, 'r');
  try {
    const bytes = Buffer.alloc(length);
    const { bytesRead } = await handle.read(bytes, 0, length, 0);
    return bytes.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}

async function startsWith(file: string, head: Buffer): Promise<boolean> {
  return (await readHead(file, head.length)).equals(head);
}

/** lstat of a regular file (not a link, device or FIFO), or undefined. */
function regularFileStats(file: string): Stats | undefined {
  try {
    const stats = lstatSync(file);
    return stats.isFile() ? stats : undefined;
  } catch {
    return undefined;
  }
}

function buildRun(id: string, folderName: string, log: LogState): RunData {
  const run: RunData = { id, name: folderName, status: 'interrupted', updatedAt: log.mtimeMs, progress: [], epochs: [], recoveries: [], checkpoints: [], notes: [] };
  if (log.truncated) run.notes.push(`${METRICS_LOG} is larger than ${MAX_LOG_BYTES >> 20} MiB: only its first ${MAX_LOG_BYTES >> 20} MiB are shown`);
  if (log.damaged > 0) run.notes.push(`${log.damaged} line(s) of ${METRICS_LOG} are not JSON objects and were skipped`);
  let stepsPerEpoch: number | undefined;
  const epochs = new Map<number, EpochRow>();
  let progress: CurvePoint[] = [];
  let finished = false;
  for (const r of log.records) {
    switch (r.event) {
      case 'start':
        finished = false;
        run.summary = undefined;
        if (typeof r.name === 'string') run.name = r.name;
        run.startedAt ??= typeof r.startedAt === 'string' ? r.startedAt : undefined;
        stepsPerEpoch = num(r.stepsPerEpoch) ?? stepsPerEpoch;
        run.stepsPerEpoch = stepsPerEpoch;
        run.epochsPlanned = num(r.epochs);
        run.replicas = num(r.worldReplicas);
        run.processes = num(r.processes);
        run.backend = typeof r.backend === 'string' ? r.backend : undefined;
        run.parameters = num(r.parameters);
        break;
      case 'progress': {
        const epoch = num(r.epoch);
        const step = num(r.step);
        const steps = num(r.steps) ?? stepsPerEpoch;
        if (epoch === undefined || step === undefined || steps === undefined) break;
        stepsPerEpoch ??= steps;
        const global = (epoch - 1) * steps + step;
        // A resumed run goes back to its checkpoint: what came after it was not kept.
        if (progress.length > 0 && progress[progress.length - 1]!.step >= global) progress = progress.filter((p) => p.step < global);
        progress.push({ step: global, epoch: (epoch - 1) + step / steps, values: { ...valuesOf(r), ...(num(r.samplesPerSec) !== undefined ? { samplesPerSec: num(r.samplesPerSec)! } : {}) } });
        if (progress.length > MAX_PROGRESS_POINTS) progress = progress.filter((_, i) => i % 2 === 0 || i === progress.length - 1);
        break;
      }
      case 'epoch': {
        const epoch = num(r.epoch);
        const steps = num(r.steps) ?? stepsPerEpoch;
        if (epoch === undefined || steps === undefined) break;
        stepsPerEpoch ??= steps;
        run.stepsPerEpoch ??= steps;
        run.epochsPlanned = num(r.epochs) ?? run.epochsPlanned;
        const global = epoch * steps;
        const replicaTimes = Array.isArray(r.replicaPhaseTimes) ? r.replicaPhaseTimes.map(timesOf).filter((t): t is Values => t !== undefined) : undefined;
        epochs.set(epoch, {
          epoch,
          step: global,
          steps,
          seconds: num(r.seconds) ?? Number.NaN,
          samplesPerSec: num(r.samplesPerSec) ?? Number.NaN,
          values: valuesOf(r),
          phaseTimes: timesOf(r.phaseTimes),
          ...(replicaTimes ? { replicaPhaseTimes: replicaTimes } : {}),
        });
        // Epochs after this one belong to a run this one was resumed from, if any.
        for (const e of [...epochs.keys()]) if (e > epoch) epochs.delete(e);
        break;
      }
      case 'recovery':
        run.recoveries.push(r);
        break;
      case 'summary':
        finished = true;
        run.summary = r;
        break;
    }
  }
  run.epochs = [...epochs.values()].sort((a, b) => a.epoch - b.epoch);
  run.progress = progress;
  if (finished) run.status = run.summary?.stopped ? 'stopped' : 'finished';
  else if (Date.now() - log.mtimeMs < RUNNING_WITHIN_MS) run.status = 'running';
  return run;
}

async function readCheckpoints(dir: string, run: RunData, peeks: Map<string, CheckpointPeek>): Promise<CheckpointRow[]> {
  let names: string[];
  try {
    if (!lstatSync(dir).isDirectory()) return [];
    names = readdirSync(dir);
  } catch {
    return [];
  }
  let best: string | undefined;
  try {
    const bestFile = path.join(dir, BEST_POINTER);
    if (regularFileStats(bestFile)) best = readRegularFileSync(bestFile, { what: 'a checkpoint pointer', maxBytes: READ_LIMITS.pointer }).toString('utf8').split('\n')[0];
  } catch {
    best = undefined;
  }
  const files = names
    .map((file) => ({ file, parsed: parseCheckpointFileName(file), stats: regularFileStats(path.join(dir, file)) }))
    .filter((c) => c.parsed !== undefined && c.stats !== undefined)
    .sort((a, b) => a.parsed!.globalStep - b.parsed!.globalStep || (a.file < b.file ? -1 : 1))
    .slice(-MAX_CHECKPOINTS);
  const rows: CheckpointRow[] = [];
  for (const { file, parsed, stats } of files) {
    const row: CheckpointRow = { file, bytes: stats!.size, epoch: parsed!.epoch, step: parsed!.globalStep, best: file === best, values: {} };
    try {
      const full = path.join(dir, file);
      const key = `${full}:${stats!.size}:${stats!.mtimeMs}`;
      const peek = peeks.get(key) ?? (await peekCheckpoint(full));
      peeks.set(key, peek);
      row.createdAt = peek.createdAt;
      row.epoch = peek.position.epoch;
      row.step = peek.position.globalStep;
      // The last finished epoch it holds; a partial epoch's sums are not means yet.
      if (peek.lastRecord && peek.lastRecord.event !== 'partial-epoch') row.values = valuesOf(peek.lastRecord);
    } catch (error) {
      row.error = (error as Error).message;
    }
    if (Object.keys(row.values).length === 0) {
      // Else the log's record of the epoch it closes.
      const epoch = run.epochs.find((e) => e.step === row.step);
      if (epoch) row.values = { ...epoch.values };
    }
    rows.push(row);
  }
  return rows;
}
