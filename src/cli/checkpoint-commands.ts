/** `ringtrain inspect` and `ringtrain export`: checkpoints outside a training run. */
import { exportTfjs } from '../checkpoint/export-tfjs.js';
import { readCheckpointFile } from '../checkpoint/format.js';
import { describeCheckpoint, formatCheckpoint } from '../checkpoint/inspect.js';
import { resolveCheckpointPath } from '../checkpoint/locate.js';
import { UserError } from '../errors.js';
import { checkWritableFolder } from '../util/read-regular-file.js';

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
