/**
 * Reading the files and using the folders a user names (config, model.json and its weights,
 * checkpoints, data files, output folders) without surprises: only regular files are read, never
 * more than a stated number of bytes, and nothing on a kernel pseudo file system (/proc, /sys and
 * the like) or a device is read or written. `/dev/zero` as a model.json would otherwise be read
 * until memory runs out, a FIFO would block the open for ever, and a folder under /proc made with
 * mkdir -p spins.
 *
 * Every refusal is a FileRefusedError (a UserError: one line, exit 2) whose message names the
 * file or folder, what it is and what was expected; `reason` is the same without the name, for
 * callers that put the name elsewhere (`configs/x.json: ...`, `model.topology: ...`).
 */
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, statfsSync, statSync, type Stats } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { UserError } from '../errors.js';
import { errorCode } from './fs-errors.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Upper bounds of what is read, by kind of file. Each is far above what a real file of its kind
 * holds and far below what would exhaust memory; the reason is beside each.
 */
export const READ_LIMITS = {
  /** A run config is a few kB of JSON; 10 MiB leaves room for long inline layer lists. */
  config: 10 * MiB,
  /** model.json holds the topology and the weights manifest, never the weights (a few MB for very large models). */
  modelJson: 32 * MiB,
  /** One weights file of a model.json: ringtrain writes one weights.bin; 2 GiB is 512 M float32 parameters, more than a replica per core can train. */
  weights: 2 * GiB,
  /** A checkpoint: its header plus a payload, which the format bounds to 4 GiB. */
  checkpoint: 4 * GiB + 32,
  /** A data file (IDX, CIFAR archive, cached MNIST JSON), also the bound of a gunzipped one: the largest Buffer Node 20 makes is 4 GiB. */
  data: 4 * GiB - 1,
  /** A checkpoint folder's `latest` or `best` pointer: a file name and a metric. */
  pointer: 4 * 1024,
} as const;

/** statfs `type` of kernel pseudo file systems: what is there is not data a user wrote. */
const PSEUDO_FILE_SYSTEMS = new Map<number, string>([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroupfs'],
  [0x63677270, 'cgroup2fs'],
  [0xcafe4a11, 'bpffs'],
  [0x6165676c, 'pstorefs'],
  [0xde5e81e4, 'efivarfs'],
  [0x62656570, 'configfs'],
]);

/** A user's file or folder that ringtrain will not read or write; see the module comment. */
export class FileRefusedError extends UserError {
  constructor(
    readonly file: string,
    /** The problem without the file's name. */
    readonly reason: string,
    options?: { hint?: string; cause?: unknown },
  ) {
    super(`${file}: ${reason}`, options);
  }
}

export interface ReadOptions {
  /** What the file should be, for messages ("a config file", "a TensorFlow.js model.json"). */
  what: string;
  /** Bytes read at most; a larger file is refused (see READ_LIMITS). */
  maxBytes: number;
}

function kind(stats: Stats): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isFIFO()) return 'a named pipe (FIFO)';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

function formatBytes(bytes: number): string {
  if (bytes >= GiB) return `${+(bytes / GiB).toFixed(2)} GiB`;
  if (bytes >= MiB) return `${+(bytes / MiB).toFixed(2)} MiB`;
  return `${bytes} bytes`;
}

/** The pseudo file system `target` lies on, if any (statfs where Node has it, else the path). */
export function pseudoFileSystem(target: string): string | undefined {
  let real: string;
  try {
    real = realpathSync(target);
  } catch {
    real = path.resolve(target);
  }
  try {
    const name = PSEUDO_FILE_SYSTEMS.get(Number(statfsSync(real).type));
    if (name) return name;
  } catch {
    // statfs failed (a file system that does not answer): the path prefix below still applies
  }
  if (real === '/proc' || real.startsWith('/proc/')) return 'procfs';
  if (real === '/sys' || real.startsWith('/sys/')) return 'sysfs';
  return undefined;
}

function openFailure(file: string, error: unknown, what: string): FileRefusedError {
  const code = errorCode(error);
  const reason = code === 'ENOENT' ? 'file not found' : code === 'EISDIR' ? `is a directory, not ${what}` : `cannot open it (${code ?? (error as Error).message})`;
  return new FileRefusedError(file, reason, { cause: error });
}

/** Refuses what is not a regular file of at most maxBytes on a real file system. */
function check(file: string, stats: Stats, { what, maxBytes }: ReadOptions): void {
  if (stats.isDirectory()) throw new FileRefusedError(file, `is a directory, not ${what}`);
  if (!stats.isFile()) throw new FileRefusedError(file, `is ${kind(stats)}, expected ${what} (a regular file)`);
  const pseudo = pseudoFileSystem(file);
  if (pseudo) throw new FileRefusedError(file, `is on ${pseudo}, a kernel file system, expected ${what}`);
  if (stats.size > maxBytes) throw tooLarge(file, stats.size, { what, maxBytes });
}

function tooLarge(file: string, size: number | undefined, { what, maxBytes }: ReadOptions): FileRefusedError {
  const found = size === undefined ? 'is larger' : `has ${size} bytes, more`;
  return new FileRefusedError(file, `${found} than the ${formatBytes(maxBytes)} ringtrain reads of ${what}`);
}

/**
 * Checks without reading that `file` is a regular file of at most maxBytes on a real file system
 * (for readers that stream, such as the checkpoint reader). Missing files pass: the reader names them.
 */
export function checkRegularFile(file: string, options: ReadOptions): void {
  let stats: Stats;
  try {
    stats = statSync(file);
  } catch {
    return;
  }
  check(file, stats, options);
}

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, for ever. It changes
// nothing for regular files, and anything else is refused before a byte is read.
const OPEN_FLAGS = constants.O_RDONLY | (constants.O_NONBLOCK ?? 0);
const CHUNK = 1 * MiB;

/** The whole of a regular file of at most maxBytes (never reads more than maxBytes + 1). */
export async function readRegularFile(file: string, options: ReadOptions): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, OPEN_FLAGS);
  } catch (error) {
    throw openFailure(file, error, options.what);
  }
  try {
    const stats = await handle.stat();
    check(file, stats, options);
    const read = new BoundedRead(file, stats.size, options);
    for (;;) {
      const chunk = read.nextChunk();
      if (!read.keep(chunk, (await handle.read(chunk, 0, chunk.length, null)).bytesRead)) return read.bytes();
    }
  } catch (error) {
    throw readFailure(file, error);
  } finally {
    await handle.close();
  }
}

/** readRegularFile, synchronously. */
export function readRegularFileSync(file: string, options: ReadOptions): Buffer {
  let fd: number;
  try {
    fd = openSync(file, OPEN_FLAGS);
  } catch (error) {
    throw openFailure(file, error, options.what);
  }
  try {
    const stats = fstatSync(fd);
    check(file, stats, options);
    const read = new BoundedRead(file, stats.size, options);
    for (;;) {
      const chunk = read.nextChunk();
      if (!read.keep(chunk, readSync(fd, chunk, 0, chunk.length, null))) return read.bytes();
    }
  } catch (error) {
    throw readFailure(file, error);
  } finally {
    closeSync(fd);
  }
}

/**
 * The chunks of one bounded read. The size may change while reading: it reads to the end, but
 * never more than the limit + 1 byte (which proves the file too large).
 */
class BoundedRead {
  private readonly chunks: Buffer[] = [];
  private total = 0;

  constructor(
    private readonly file: string,
    private readonly statSize: number,
    private readonly options: ReadOptions,
  ) {}

  /** A buffer for the next read. */
  nextChunk(): Buffer {
    const want = Math.min(Math.max(this.statSize - this.total, CHUNK), this.options.maxBytes + 1 - this.total, GiB);
    if (want <= 0) throw tooLarge(this.file, undefined, this.options);
    return Buffer.allocUnsafe(want);
  }

  /** Keeps what a read put in `chunk`; false at the end of the file. */
  keep(chunk: Buffer, bytesRead: number): boolean {
    if (bytesRead === 0) return false;
    this.chunks.push(bytesRead === chunk.length ? chunk : chunk.subarray(0, bytesRead));
    this.total += bytesRead;
    if (this.total > this.options.maxBytes) throw tooLarge(this.file, undefined, this.options);
    return true;
  }

  bytes(): Buffer {
    return this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks, this.total);
  }
}

function readFailure(file: string, error: unknown): FileRefusedError {
  if (error instanceof FileRefusedError) return error;
  return new FileRefusedError(file, `cannot read it (${errorCode(error) ?? (error as Error).message})`, { cause: error });
}

/**
 * Checks that `dir` is a folder ringtrain may write into: an existing real folder, or one that
 * mkdir -p can make below one. Refused: a file where the folder should be, a folder (or its
 * nearest existing parent) on a kernel pseudo file system, and anything under /dev but /dev/shm.
 */
export function checkWritableFolder(dir: string, field: string): void {
  const absolute = path.resolve(dir);
  let existing = absolute;
  let stats: Stats | undefined;
  for (;;) {
    try {
      stats = statSync(existing);
      break;
    } catch {
      const parent = path.dirname(existing);
      if (parent === existing) break;
      existing = parent;
    }
  }
  const named = `${field}: ${dir}`;
  if (stats && !stats.isDirectory()) {
    const what = stats.isFile() ? 'a file' : kind(stats);
    throw new UserError(existing === absolute ? `${named} is ${what}, not a folder` : `${named}: ${existing} is ${what}, not a folder`);
  }
  const pseudo = pseudoFileSystem(existing);
  if (pseudo) throw new UserError(`${named} is on ${pseudo}, a kernel file system; expected a folder on a disk (or tmpfs) to write the run's files in`);
  let real = existing;
  try {
    real = realpathSync(existing);
  } catch {
    // kept as resolved
  }
  if ((real === '/dev' || real.startsWith('/dev/')) && !(real === '/dev/shm' || real.startsWith('/dev/shm/'))) {
    throw new UserError(`${named} is under /dev, the devices folder; expected a folder on a disk (or /dev/shm) to write the run's files in`);
  }
}
