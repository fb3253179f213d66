/**
 * Finding and reading a checkpoint a person names: a checkpoint file, a checkpoint folder (its
 * latest), a run folder (the latest of its checkpoints/), or a folder's `latest`/`best` pointer
 * (`runs/x/best` as well as `runs/x/checkpoints/best`).
 */
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { checkRegularFile, READ_LIMITS } from '../util/read-regular-file.js';
import { readCheckpointFile } from './format.js';
import type { CheckpointState } from './state.js';
import { BEST_POINTER, CheckpointStore, LATEST_POINTER } from './store.js';

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

/** The checkpoint file `ref` names (see above); a missing or unreadable one is a CheckpointError or UserError naming it. */
export function resolveCheckpointPath(ref: string): string {
  const name = basename(ref);
  if (name === LATEST_POINTER || name === BEST_POINTER) return new CheckpointStore(checkpointFolder(dirname(ref))).resolve(name);
  // A missing file is reported by resolve, naming it.
  const file = isDirectory(ref) ? new CheckpointStore(checkpointFolder(ref)).resolve(LATEST_POINTER) : new CheckpointStore(dirname(ref)).resolve(ref);
  checkRegularFile(file, { what: 'a checkpoint file', maxBytes: READ_LIMITS.checkpoint });
  return file;
}

export interface LoadedCheckpoint extends CheckpointState {
  /** The file read. */
  file: string;
}

/**
 * Reads and verifies the checkpoint `ref` names (a file, a checkpoint folder, a run folder, or
 * `…/latest` / `…/best`). Its `config` and `params` start a Trainer from it:
 * `Trainer.create(ckpt.config, { initialParams: ckpt.params })`.
 */
export async function loadCheckpoint(ref: string): Promise<LoadedCheckpoint> {
  const file = resolveCheckpointPath(ref);
  return { ...(await readCheckpointFile(file)), file };
}
