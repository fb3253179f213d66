/**
 * A directory of checkpoints: atomic writes, `latest` and `best` pointers, retention.
 *
 *   ckpt-e0003-s000120.rtckpt        a checkpoint (epoch and global step of its position)
 *   ckpt-e0005-s000200-final.rtckpt  a tagged checkpoint (never removed by retention)
 *   latest                           text: the file name of the newest complete checkpoint
 *   best                             text: the best checkpoint's file name, then a JSON line
 *                                    {"name":..., "mode":..., "value":...} of its metric
 *
 * A checkpoint is written to a temporary file in the same directory
 * (`.ckpt-….rtckpt.<pid>-<random>.tmp`), flushed (fdatasync) and renamed into place; only then
 * are the pointers replaced (each the same way, and the directory fsynced after `latest`'s
 * rename, which makes the checkpoint's rename durable too), and only after that are old
 * checkpoints removed. A crash at any moment leaves the previous `latest` valid;
 * at worst a temporary file stays behind, which is never taken for a checkpoint. Such
 * leftovers, and the write-check files (`.ringtrain-probe-<pid>.tmp`) of processes killed while
 * checking the folder, are removed when a store next opens the directory for writing
 * (`openForWriting`, at the start of a run), unless the process named in them is still alive.
 * Otherwise the store removes nothing but checkpoint files (names as above) that retention no
 * longer keeps; anything else in the directory is left alone.
 *
 * Speed: the file is written with one writev straight from the state's arrays (no copy of
 * the tensors is made); a large one is flushed while the main thread computes the CRCs, so
 * checksumming overlaps the I/O, a small one (up to 4 MiB) is checksummed first and flushed
 * once; the payload CRC is combined from the tensor CRCs rather than recomputed. A checkpoint
 * costs three flushes: its data, the `latest` pointer's, and the directory's.
 *
 * One store (one process) should write to a directory at a time; writes through one store are
 * serialized.
 */
import { randomBytes } from 'node:crypto';
import { readdirSync, rmSync, statSync, type Stats } from 'node:fs';
import { mkdir, open, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { CheckpointError } from './errors.js';
import { crc32c } from './crc32c.js';
import {
  CHECKPOINT_EXTENSION,
  directoryError,
  fileError,
  planCheckpoint,
  readCheckpointFile,
  sealCheckpoint,
  tensorData,
  type CheckpointPlan,
} from './format.js';
import type { CheckpointPosition, CheckpointState } from './state.js';
import { assertWritableFolder, osErrorText, writingFile } from '../util/fs-errors.js';
import { FileRefusedError, READ_LIMITS, readRegularFileSync } from '../util/read-regular-file.js';

export const LATEST_POINTER = 'latest';
export const BEST_POINTER = 'best';
export const DEFAULT_KEEP_LAST = 3;

const TAG = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const CHECKPOINT_NAME = /^ckpt-e(\d+)-s(\d+)(?:-([A-Za-z0-9][A-Za-z0-9_.-]*))?\.rtckpt$/;

export interface CheckpointStoreOptions {
  /** How many of the newest untagged checkpoints to keep (by global step); default 3; Infinity keeps all. */
  keepLast?: number;
}

export interface CheckpointMetric {
  name: string;
  value: number;
  /** Whether lower ('min', e.g. a loss) or higher ('max', e.g. an accuracy) is better. */
  mode: 'min' | 'max';
}

export interface CheckpointWriteOptions {
  /** Appended to the file name (letters, digits, '_', '.', '-'); tagged checkpoints are kept by retention. */
  tag?: string;
  /** The metric this checkpoint scored; the best one so far (by mode) is kept and named by the `best` pointer. */
  metric?: CheckpointMetric;
}

export interface CheckpointListEntry {
  /** File name inside the directory. */
  file: string;
  path: string;
  epoch: number;
  globalStep: number;
  tag?: string;
}

/** ckpt-e0003-s000120.rtckpt (numbers padded to 4 and 6 digits, longer when needed). */
export function checkpointFileName(position: Pick<CheckpointPosition, 'epoch' | 'globalStep'>, tag?: string): string {
  if (tag !== undefined && !TAG.test(tag)) {
    throw new RangeError(`checkpoint tag must be letters, digits, '_', '.' or '-' (not first), got ${JSON.stringify(tag)}`);
  }
  const epoch = String(position.epoch).padStart(4, '0');
  const step = String(position.globalStep).padStart(6, '0');
  return `ckpt-e${epoch}-s${step}${tag === undefined ? '' : `-${tag}`}${CHECKPOINT_EXTENSION}`;
}

/** The parts of a checkpoint file name, or undefined when `name` is not one. */
export function parseCheckpointFileName(name: string): { epoch: number; globalStep: number; tag?: string } | undefined {
  const match = CHECKPOINT_NAME.exec(name);
  if (!match) return undefined;
  const parsed = { epoch: Number(match[1]), globalStep: Number(match[2]) };
  return match[3] === undefined ? parsed : { ...parsed, tag: match[3] };
}

function byPosition(a: CheckpointListEntry, b: CheckpointListEntry): number {
  return a.globalStep - b.globalStep || a.epoch - b.epoch || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
}

function temporaryName(name: string): string {
  return `.${name}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
}

/** A temporary file of writeAtomically (of a checkpoint or a pointer): its writer's process id. */
const TEMPORARY_NAME = /^\.(?:ckpt-.+\.rtckpt|latest|best)\.(\d+)-[0-9a-f]{8}\.tmp$/;
/** The probe file of assertWritableFolder (probeFileName): its writer's process id. */
const PROBE_NAME = /^\.ringtrain-probe-(\d+)\.tmp$/;

/** Whether process `pid` is running (this one included). */
function processAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
}

function isMissing(error: unknown): boolean {
  const cause = error instanceof FileRefusedError ? error.cause : error;
  return (cause as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

/** A pointer's text, read as a regular file of at most 4 KiB: a FIFO or device put there is refused, not read. */
function readPointer(file: string): string {
  return readRegularFileSync(file, { what: 'a checkpoint pointer', maxBytes: READ_LIMITS.pointer }).toString('utf8');
}

/** Writes all of `bytes` at offset `at` of the file. */
async function writeAt(handle: FileHandle, bytes: Uint8Array, at: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, done, Math.min(bytes.length - done, 1 << 30), at + done);
    done += bytesWritten;
  }
}

/** Writes the buffers one after another from offset `at`, with as few system calls as possible. */
async function writeAllAt(handle: FileHandle, buffers: readonly Uint8Array[], at: number): Promise<void> {
  let pending = buffers.filter((b) => b.length > 0);
  while (pending.length > 0) {
    let { bytesWritten } = await handle.writev(pending, at);
    at += bytesWritten;
    // A partial write (large totals): continue after the bytes that made it.
    while (pending.length > 0 && bytesWritten >= pending[0]!.length) bytesWritten -= pending.shift()!.length;
    if (pending.length > 0 && bytesWritten > 0) pending[0] = pending[0]!.subarray(bytesWritten);
  }
}

/**
 * Checkpoints up to this size are checksummed before they are written, then written and flushed
 * once; larger ones are flushed while they are checksummed, then their checksums are written and
 * flushed again (the overlap pays off only when the data take long to flush).
 */
const SMALL_CHECKPOINT_BYTES = 4 << 20;

/** Bytes between two turns of the event loop while checksumming, so I/O completions are handled meanwhile. */
const CRC_SLICE = 8 << 20;

/** CRC32C of a large array, yielding to the event loop every CRC_SLICE bytes. */
async function crc32cYielding(bytes: Uint8Array): Promise<number> {
  let crc = 0;
  for (let at = 0; at < bytes.length; at += CRC_SLICE) {
    crc = crc32c(bytes.subarray(at, Math.min(bytes.length, at + CRC_SLICE)), crc);
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return crc;
}

/** fsync of a directory, so a rename or unlink in it is durable (not possible on every platform). */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Windows cannot open directories; some file systems refuse fsync on them.
    if (!(code === 'EISDIR' || code === 'EPERM' || code === 'EACCES' || code === 'EINVAL' || code === 'ENOTSUP')) throw error;
  } finally {
    await handle?.close();
  }
}

/**
 * Creates `file` atomically: temporary file in the same directory, fdatasync, rename, and (unless
 * `syncDir` is false: a later write in the same directory will) fsync of the directory.
 */
async function writeAtomically(file: string, write: (handle: FileHandle) => Promise<void>, syncDir = true): Promise<void> {
  const dir = path.dirname(file);
  const temporary = path.join(dir, temporaryName(path.basename(file)));
  let handle: FileHandle | undefined;
  try {
    handle = await open(temporary, 'wx', 0o644);
    await write(handle);
    await handle.datasync();
    await handle.close();
    handle = undefined;
    await rename(temporary, file);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw error;
  }
  if (syncDir) await syncDirectory(dir);
}

interface BestPointer {
  file: string;
  metric: CheckpointMetric;
}

export class CheckpointStore {
  readonly dir: string;
  readonly keepLast: number;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(dir: string, options: CheckpointStoreOptions = {}) {
    const keepLast = options.keepLast ?? DEFAULT_KEEP_LAST;
    if (!(keepLast === Infinity || (Number.isInteger(keepLast) && keepLast >= 1))) {
      throw new RangeError(`keepLast must be an integer >= 1 or Infinity, got ${keepLast}`);
    }
    this.dir = dir;
    this.keepLast = keepLast;
  }

  /**
   * Writes a checkpoint and returns its path once the file is durable, the pointers name it
   * and retention is done. The tensor data goes to disk straight from the state's arrays (no
   * copy is made), so they must not change until the promise settles; a change meanwhile
   * would make the file fail its checksums when read. Throws RangeError for an inconsistent
   * state and CheckpointError when the file system fails (nothing is left half-written: the
   * previous checkpoints and pointers stay as they were).
   */
  write(state: CheckpointState, options: CheckpointWriteOptions = {}): Promise<string> {
    const { metric } = options;
    if (metric !== undefined) {
      if (metric.mode !== 'min' && metric.mode !== 'max') throw new RangeError(`metric mode must be 'min' or 'max', got ${String(metric.mode)}`);
      if (typeof metric.name !== 'string' || metric.name === '') throw new RangeError('metric name must be a non-empty string');
      if (typeof metric.value !== 'number') throw new RangeError(`metric value must be a number, got ${String(metric.value)}`);
    }
    const name = checkpointFileName(state.position, options.tag);
    const plan = planCheckpoint(state);
    const run = this.queue.then(() => this.writePlan(name, plan, metric));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async writePlan(name: string, plan: CheckpointPlan, metric: CheckpointMetric | undefined): Promise<string> {
    const file = path.join(this.dir, name);
    await this.io(file, 'create the directory', () => mkdir(this.dir, { recursive: true }));
    // No fsync of the directory after the rename: the `latest` pointer, written next in the
    // same directory, fsyncs it and so makes both renames durable (until then `latest` names the
    // previous checkpoint, so a crash in between loses nothing). One fsync fewer per checkpoint.
    await this.io(file, 'write it', () =>
      writeAtomically(
        file,
        async (handle) => {
          if (plan.length <= SMALL_CHECKPOINT_BYTES) {
            // Small: checksums first (a few ms at most), then one write and one flush.
            sealCheckpoint(plan);
            await writeAllAt(handle, [plan.header, ...plan.segments.map((s) => s.bytes)], 0);
            return;
          }
          // Large: the whole file goes to disk in one writev (in a libuv thread) and is flushed
          // while this thread computes the checksums; then the header and the metadata, which
          // hold the checksums, are written again (a few hundred bytes) and flushed.
          const bulk = writeAllAt(handle, [plan.header, ...plan.segments.map((s) => s.bytes)], 0).then(() => handle.datasync());
          const flushed = bulk.then(
            () => undefined,
            (error: unknown) => ({ error }),
          );
          const crcs: number[] = [];
          try {
            for (let i = 0; i < plan.tensors.length; i++) crcs.push(await crc32cYielding(tensorData(plan, i)));
          } finally {
            const outcome = await flushed;
            if (outcome) throw outcome.error;
          }
          sealCheckpoint(plan, crcs);
          await writeAt(handle, plan.header, 0);
          for (const segment of plan.segments) if (segment.tensor === undefined) await writeAt(handle, segment.bytes, segment.at);
          // writeAtomically flushes these and renames the file into place.
        },
        false,
      ),
    );

    await this.writePointer(LATEST_POINTER, `${name}\n`);
    if (metric !== undefined && this.isNewBest(metric)) {
      await this.writePointer(BEST_POINTER, `${name}\n${JSON.stringify({ name: metric.name, mode: metric.mode, value: metric.value })}\n`);
    }
    await this.applyRetention(name);
    return file;
  }

  /**
   * Prepares the directory for a run that writes checkpoints: creates it, removes the
   * temporary files writes interrupted by a crash or a kill left behind, and write-check files
   * (those of processes that are no longer running), and checks that a file can be written and
   * removed in it. Returns the names of the leftovers removed. Throws a FileWriteError naming
   * the directory and the OS error (also when it cannot be listed).
   */
  openForWriting(): string[] {
    assertWritableFolder(this.dir, 'the checkpoint folder');
    const removed: string[] = [];
    const names = writingFile(this.dir, 'list the checkpoint folder', () => readdirSync(this.dir));
    for (const name of names) {
      const temporary = TEMPORARY_NAME.exec(name);
      const probe = temporary ? undefined : PROBE_NAME.exec(name);
      const pid = (temporary ?? probe)?.[1];
      if (pid === undefined || processAlive(Number(pid))) continue;
      const file = path.join(this.dir, name);
      const what = temporary ? 'this temporary file of an interrupted checkpoint write' : 'this write-check file of an interrupted start';
      writingFile(file, `remove ${what}`, () => rmSync(file, { force: true }));
      removed.push(name);
    }
    return removed;
  }

  private async io<T>(file: string, doing: string, action: () => Promise<T>): Promise<T> {
    try {
      return await action();
    } catch (error) {
      throw new CheckpointError(file, 'io', `cannot ${doing}: ${osErrorText(error)}`, { cause: error });
    }
  }

  private writePointer(pointer: string, text: string): Promise<void> {
    const file = path.join(this.dir, pointer);
    return this.io(file, 'write the pointer', () => writeAtomically(file, (handle) => handle.writeFile(text, 'utf8')));
  }

  /** Whether `metric` beats the current best (a best pointer for another metric or mode, or a dangling one, does not count). */
  private isNewBest(metric: CheckpointMetric): boolean {
    if (Number.isNaN(metric.value)) return false;
    const current = this.readBest();
    if (current === undefined || current.metric.name !== metric.name || current.metric.mode !== metric.mode) return true;
    if (!this.exists(current.file)) return true;
    return metric.mode === 'min' ? metric.value < current.metric.value : metric.value > current.metric.value;
  }

  private exists(name: string): boolean {
    try {
      return statSync(path.join(this.dir, name)).isFile();
    } catch {
      return false;
    }
  }

  /** The best checkpoint so far and its metric, or undefined when none was recorded (or the pointer is unreadable). */
  readBest(): BestPointer | undefined {
    let text: string;
    try {
      text = readPointer(path.join(this.dir, BEST_POINTER));
    } catch {
      return undefined;
    }
    const [file, json] = text.split('\n');
    try {
      const metric = JSON.parse(json ?? '') as CheckpointMetric;
      if (file === undefined || parseCheckpointFileName(file) === undefined) return undefined;
      if (typeof metric.name !== 'string' || typeof metric.value !== 'number' || (metric.mode !== 'min' && metric.mode !== 'max')) return undefined;
      return { file, metric: { name: metric.name, mode: metric.mode, value: metric.value } };
    } catch {
      return undefined;
    }
  }

  /** The file name a pointer holds, if the pointer exists and is well formed. */
  private pointerTarget(pointer: string): string | undefined {
    try {
      const name = readPointer(path.join(this.dir, pointer)).split('\n')[0]!;
      return parseCheckpointFileName(name) === undefined ? undefined : name;
    } catch {
      return undefined;
    }
  }

  /**
   * Removes the checkpoints retention no longer keeps. Kept: the `keepLast` untagged ones with
   * the highest global steps, every tagged one, the one just written, and the targets of the
   * `latest` and `best` pointers.
   */
  private async applyRetention(justWritten: string): Promise<void> {
    const all = this.list();
    const untagged = all.filter((e) => e.tag === undefined);
    const keep = new Set<string>([justWritten]);
    for (const e of untagged.slice(Math.max(0, untagged.length - this.keepLast))) keep.add(e.file);
    for (const e of all) if (e.tag !== undefined) keep.add(e.file);
    for (const pointer of [LATEST_POINTER, BEST_POINTER]) {
      const target = this.pointerTarget(pointer);
      if (target !== undefined) keep.add(target);
    }
    const remove = all.filter((e) => !keep.has(e.file));
    for (const e of remove) {
      await this.io(e.path, 'remove it (retention)', () => unlink(e.path).catch((error: unknown) => (isMissing(error) ? undefined : Promise.reject(error))));
    }
    if (remove.length > 0) await this.io(this.dir, 'sync the directory', () => syncDirectory(this.dir));
  }

  /** Checkpoint files in the directory, oldest first (by global step, then epoch, then name). */
  list(): CheckpointListEntry[] {
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch (error) {
      if (isMissing(error)) return [];
      throw new CheckpointError(this.dir, 'io', `cannot list the checkpoint directory: ${(error as Error).message}`, { cause: error });
    }
    const entries: CheckpointListEntry[] = [];
    for (const file of names) {
      const parsed = parseCheckpointFileName(file);
      if (parsed === undefined) continue;
      const full = path.join(this.dir, file);
      if (!this.exists(file)) continue; // a directory (or dangling link) with a checkpoint's name
      entries.push({ file, path: full, ...parsed });
    }
    return entries.sort(byPosition);
  }

  /**
   * The path of a checkpoint: 'latest' or 'best' (through the pointer), a file name inside the
   * directory, or a path (anything with a directory separator). Throws CheckpointError when
   * the pointer or the file is missing, or the path is a directory.
   */
  resolve(ref: string): string {
    if (ref === LATEST_POINTER || ref === BEST_POINTER) return this.resolvePointer(ref);
    const file = path.isAbsolute(ref) || ref.includes('/') || ref.includes(path.sep) ? ref : path.join(this.dir, ref);
    let stats: Stats;
    try {
      stats = statSync(file);
    } catch (error) {
      throw fileError(file, error, 'look at it');
    }
    if (stats.isDirectory()) throw directoryError(file);
    return file;
  }

  private resolvePointer(pointer: string): string {
    const pointerFile = path.join(this.dir, pointer);
    let text: string;
    try {
      text = readPointer(pointerFile);
    } catch (error) {
      if (error instanceof FileRefusedError && !isMissing(error)) throw error;
      if (!isMissing(error)) throw fileError(pointerFile, error, 'read the pointer');
      let dirExists = true;
      try {
        statSync(this.dir);
      } catch {
        dirExists = false;
      }
      const count = dirExists ? this.list().length : 0;
      throw new CheckpointError(
        pointerFile,
        'pointer',
        dirExists
          ? `no such pointer file: no ${pointer === LATEST_POINTER ? 'checkpoint' : 'best checkpoint'} has been recorded in ${this.dir}`
          : `no such pointer file: the checkpoint directory ${this.dir} does not exist`,
        count > 0 ? { hint: `${this.dir} holds ${count} checkpoint file${count === 1 ? '' : 's'}; give one by name` } : undefined,
      );
    }
    const name = text.split('\n')[0]!;
    if (parseCheckpointFileName(name) === undefined) {
      throw new CheckpointError(
        pointerFile,
        'pointer',
        `damaged pointer: expected a checkpoint file name such as ckpt-e0003-s000120${CHECKPOINT_EXTENSION}, found ${JSON.stringify(text.slice(0, 80))}`,
      );
    }
    const file = path.join(this.dir, name);
    let stats: Stats;
    try {
      stats = statSync(file);
    } catch (error) {
      if (!isMissing(error)) throw fileError(file, error, 'look at it');
      throw new CheckpointError(pointerFile, 'pointer', `points to ${name}, but ${file} does not exist`);
    }
    if (stats.isDirectory()) throw directoryError(file);
    return file;
  }

  /** Reads and verifies a checkpoint (see `resolve` for `ref`). */
  async read(ref: string): Promise<CheckpointState> {
    return readCheckpointFile(this.resolve(ref));
  }
}
