/**
 * A run's folder is its output folder (`--out`, default runs/<name>): metrics.jsonl,
 * checkpoints/, tensorboard/, report.html. A new run (no --resume) into a folder that already
 * holds a run neither mixes with it nor overwrites it: it writes to the next free `<out>-2`,
 * `<out>-3`, ... (as ultralytics does) and says so. With --resume (any form) the folder is used
 * as given. Only rank 0 writes in the folder, so only its choice matters; a process started by a
 * launcher does not move (a restart, resuming with auto, would not find the moved folder): it
 * refuses a folder holding a run, unless it resumes. --nproc-per-node chooses before it starts
 * its processes and passes the folder to them.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import type { RunConfig } from '../config/schema.js';
import { LATEST_POINTER } from '../checkpoint/store.js';
import { UserError } from '../errors.js';

/** What a run leaves in its folder; any of them there means the folder holds a run. */
const RUN_ENTRIES = ['metrics.jsonl', 'checkpoints', 'tensorboard', 'report.html'] as const;

/** A folder with entries or a file with bytes (a run refused at start leaves an empty metrics log). */
function nonEmpty(entry: string): boolean {
  try {
    const stats = statSync(entry);
    return stats.isDirectory() ? readdirSync(entry).length > 0 : stats.size > 0;
  } catch {
    return false;
  }
}

/** True when `dir` holds files of a run (or `checkpointDir`, when given, holds a latest checkpoint). */
export function holdsRun(dir: string, checkpointDir?: string): boolean {
  if (RUN_ENTRIES.some((name) => nonEmpty(path.join(dir, name)))) return true;
  return checkpointDir !== undefined && existsSync(path.join(checkpointDir, LATEST_POINTER));
}

/** The first of `<dir>-2`, `<dir>-3`, ... that holds no run. */
export function nextFreeFolder(dir: string): string {
  const base = dir.replace(/[/\\]+$/, '');
  for (let n = 2; ; n++) {
    const candidate = `${base}-${n}`;
    if (!holdsRun(candidate)) return candidate;
  }
}

/** `config` writing to `dir` (the checkpoint folder moves with it when it was the default one inside). */
export function withOutputFolder(config: RunConfig, dir: string): RunConfig {
  const defaultCheckpoints = path.join(config.output.dir, 'checkpoints');
  const checkpointDir = path.normalize(config.checkpoint.dir) === path.normalize(defaultCheckpoints) ? path.join(dir, 'checkpoints') : config.checkpoint.dir;
  return { ...config, output: { ...config.output, dir }, checkpoint: { ...config.checkpoint, dir: checkpointDir } };
}

export interface FolderChoice {
  config: RunConfig;
  /** The folder asked for, when the run moved to another. */
  movedFrom?: string;
}

/**
 * The folder a new run writes to. `resuming`: --resume in any form (or a launcher's restart);
 * `launched`: started by a launcher (torchrun, mpirun, Slurm, --rank flags).
 */
export function chooseOutputFolder(config: RunConfig, options: { resuming: boolean; launched: boolean; flag: string }): FolderChoice {
  if (options.resuming) return { config };
  const asked = config.output.dir;
  const customCheckpoints = path.normalize(config.checkpoint.dir) !== path.normalize(path.join(asked, 'checkpoints'));
  if (customCheckpoints && existsSync(path.join(config.checkpoint.dir, LATEST_POINTER))) {
    throw new UserError(`checkpoint.dir: ${config.checkpoint.dir} already holds the checkpoints of a run; a new run would write over them`, {
      hint: 'continue that run with --resume latest (or auto), or choose another checkpoint.dir',
    });
  }
  if (!holdsRun(asked)) return { config };
  if (options.launched) {
    throw new UserError(`${options.flag}: ${asked} already holds a run; a process started by a launcher does not choose another folder`, {
      hint: `continue that run with --resume auto, or pass another --out`,
    });
  }
  return { config: withOutputFolder(config, nextFreeFolder(asked)), movedFrom: asked };
}

/** Where a run writes, said once as it starts. */
export function describeOutputs(config: RunConfig, options: { checkpoints: boolean; movedFrom?: string }): string {
  const out = config.output.dir;
  const writes = [
    config.output.metricsLog ? `metrics log ${path.join(out, 'metrics.jsonl')}` : undefined,
    options.checkpoints ? `checkpoints ${config.checkpoint.dir}` : undefined,
    config.report.tensorboard.enabled ? `TensorBoard events ${path.join(out, 'tensorboard')}` : undefined,
  ].filter((s) => s !== undefined);
  const moved = options.movedFrom === undefined ? '' : ` (${options.movedFrom} holds an earlier run)`;
  return `run folder ${out}${moved}${writes.length > 0 ? `: ${writes.join(', ')}` : ''}`;
}
