/**
 * File-system failures a user can fix (a full disk, a read-only or missing folder, a name too
 * long, no permission) as one-line UserErrors: `<file>: cannot <action>: <CODE> (<what the OS
 * said>)`, e.g. `runs/x/metrics.jsonl: cannot append to the metrics log: ENOSPC (no space
 * left on device)`. Every file ringtrain writes goes through these helpers, so none of those
 * failures ends in "internal error" with a stack.
 */
import { existsSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { UserError } from '../errors.js';

/** A file (or folder) that could not be written, created or removed. */
export class FileWriteError extends UserError {
  readonly file: string;
  /** The OS error code, e.g. 'ENOSPC'. */
  readonly code: string | undefined;

  constructor(file: string, action: string, cause: unknown) {
    super(`${file}: cannot ${action}: ${osErrorText(cause)}`, { cause });
    this.file = file;
    this.code = errorCode(cause);
  }
}

/** The code of a Node.js system error ('ENOSPC'), if it is one. */
export function errorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** Whether `error` is an error of the operating system (it has an errno code such as 'EROFS'). */
export function isSystemError(error: unknown): error is NodeJS.ErrnoException {
  return error instanceof Error && errorCode(error) !== undefined;
}

/**
 * "ENOSPC (no space left on device)" from Node's "ENOSPC: no space left on device, write",
 * dropping the system call and the path (the message names the file already); for any other
 * error, its message.
 */
export function osErrorText(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const code = errorCode(error);
  if (code === undefined) return message;
  const match = /^E[A-Z0-9]+: (.*?)(?:, [a-z_0-9]+(?: '.*)?)?$/s.exec(message);
  return match ? `${code} (${match[1]})` : `${code} (${message})`;
}

/** Runs `action`; a system error becomes a FileWriteError naming `file` and `action`, anything else passes. */
export function writingFile<T>(file: string, action: string, run: () => T): T {
  try {
    return run();
  } catch (error) {
    throw isSystemError(error) ? new FileWriteError(file, action, error) : error;
  }
}

/** writingFile for asynchronous work. */
export async function writingFileAsync<T>(file: string, action: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (error) {
    throw isSystemError(error) ? new FileWriteError(file, action, error) : error;
  }
}

/**
 * mkdir -p, but with the real reason when it fails: Node's recursive mkdir reports ENOENT for
 * a folder that cannot be created in a read-only or otherwise refusing parent; creating the
 * first missing folder alone gives the OS's own error (EROFS, EACCES, ...).
 */
export function makeFolder(dir: string): void {
  try {
    mkdirSync(dir, { recursive: true });
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
    let first = path.resolve(dir);
    while (!existsSync(path.dirname(first)) && path.dirname(first) !== first) first = path.dirname(first);
    try {
      mkdirSync(first); // throws the real error
    } catch (firstError) {
      // EEXIST: the folder appeared meanwhile (another process of the run made it): go on. A
      // file or a dangling link of that name is the real error.
      if (errorCode(firstError) !== 'EEXIST' || !isFolder(first)) throw firstError;
    }
    mkdirSync(dir, { recursive: true });
  }
}

/**
 * Makes sure ringtrain can write in `dir` before a run starts: creates it (with its parents)
 * and writes and removes a small probe file. `what` says what the folder is for ("the output
 * folder (--out)"). Throws a FileWriteError naming the folder and the OS error.
 */
export function assertWritableFolder(dir: string, what: string): void {
  writingFile(dir, `create ${what}`, () => makeFolder(dir));
  const probe = path.join(dir, probeFileName(process.pid));
  try {
    writingFile(dir, `write in ${what}`, () => writeFileSync(probe, 'ringtrain write check\n'));
  } catch (error) {
    // The file may have been created before the write failed (ENOSPC): do not leave it behind.
    try {
      rmSync(probe, { force: true });
    } catch {
      // the write's error is the one to report
    }
    throw error;
  }
  writingFile(dir, `remove a file from ${what}`, () => rmSync(probe, { force: true }));
}

/**
 * The probe file of assertWritableFolder, named with its process id: one left behind by a
 * process killed meanwhile is removed by the checkpoint store when it next opens the folder
 * (src/checkpoint/store.ts, openForWriting), once that process is gone.
 */
export function probeFileName(pid: number): string {
  return `.ringtrain-probe-${pid}.tmp`;
}

function isFolder(file: string): boolean {
  try {
    return statSync(file).isDirectory();
  } catch {
    return false;
  }
}
