/** `ringtrain inspect` and `ringtrain export`: checkpoints outside a training run. */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { exportTfjs } from '../checkpoint/export-tfjs.js';
import { readCheckpointFile } from '../checkpoint/format.js';
import { describeCheckpoint, formatCheckpoint } from '../checkpoint/inspect.js';
import { BEST_POINTER, CheckpointStore, LATEST_POINTER } from '../checkpoint/store.js';
import { UserError } from '../errors.js';
import { checkRegularFile, checkWritableFolder, READ_LIMITS } from '../util/read-regular-file.js';

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** A run folder (its checkpoints/ subfolder, when it has no `latest` pointer of its own) or a checkpoint folder. */
function checkpointFolder(dir: string): string {
  const inside = join(dir, 'checkpoints');
  return !existsSync(join(dir, LATEST_POINTER)) && isDirectory(inside) ? inside : dir;
}

/**
 * A checkpoint file, a checkpoint folder (its latest), a run folder (its checkpoints' latest),
 * or a folder's `latest`/`best` pointer (`runs/x/best` as well as `runs/x/checkpoints/best`).
 */
export function resolveCheckpointPath(ref: string): string {
  const name = basename(ref);
  if (name === LATEST_POINTER || name === BEST_POINTER) return new CheckpointStore(checkpointFolder(dirname(ref))).resolve(name);
  // A missing file is reported by resolve, naming it.
  const file = isDirectory(ref) ? new CheckpointStore(checkpointFolder(ref)).resolve(LATEST_POINTER) : new CheckpointStore(dirname(ref)).resolve(ref);
  checkRegularFile(file, { what: 'a checkpoint file', maxBytes: READ_LIMITS.checkpoint });
  return file;
}

export async function exportCommand(ref: string, dir: string, flags: { format: string }): Promise<void> {
  if (flags.format !== 'tfjs') throw new UserError(`--format: expected tfjs, found "${flags.format}"`);
  checkWritableFolder(dir, 'export folder');
  const file = resolveCheckpointPath(ref);
  const state = await readCheckpointFile(file);
  const modelJson = await exportTfjs(state, dir, file);
  process.stdout.write(`exported ${file} (epoch ${state.position.epoch}, step ${state.position.globalStep}) to ${modelJson}\n`);
}

export async function inspectCommand(ref: string, flags: { json?: boolean }): Promise<void> {
  const file = resolveCheckpointPath(ref);
  const description = describeCheckpoint(await readCheckpointFile(file), file);
  process.stdout.write(flags.json ? `${JSON.stringify(description)}\n` : `${formatCheckpoint(description)}\n`);
}
