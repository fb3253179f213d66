/**
 * Write failures as a user meets them, with the built CLI: a full disk during training, a
 * read-only folder, a name too long, and `export` to a full or read-only disk. Each must exit
 * with 2 and one stderr line naming the file and the OS error; a full disk stops training at
 * once (not at the end of the run) and leaves the last good checkpoint loadable.
 *
 * The full and read-only disks are tmpfs mounts made here (CI runs as root). Whether a tmpfs can
 * be mounted is probed once: without mount rights (not root, or root in a container without
 * CAP_SYS_ADMIN) the full-disk cases are skipped, saying so in their titles. Read-only is then a
 * chmod 555 folder (EACCES), which does not bind root: as root without mount rights the
 * read-only cases are skipped too.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mainJs, root } from '../helpers/processes.js';

const tmp = mkdtempSync(join(tmpdir(), 'ringtrain-write-errors-'));
const mounts: string[] = [];

const isRoot = process.getuid?.() === 0;
/** Whether a tmpfs can be mounted (and unmounted) here: root with mount rights. */
const canMount = ((): boolean => {
  if (!isRoot) return false;
  const dir = mkdtempSync(join(tmp, 'probe-'));
  if (spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { stdio: 'ignore' }).status !== 0) return false;
  return spawnSync('umount', [dir], { stdio: 'ignore' }).status === 0;
})();
const cannotMount = canMount ? '' : ' (skipped: cannot mount a tmpfs here)';
/** Root without mount rights: no read-only tmpfs, and a chmod 555 folder does not stop root. */
const noReadOnly = isRoot && !canMount;
const cannotReadOnly = noReadOnly ? ' (skipped: root cannot mount a read-only tmpfs here, and chmod does not bind root)' : '';

/** A tmpfs of `size` at a new folder, or undefined when the mount fails. */
function mountTmpfs(name: string, size: string): string | undefined {
  if (!canMount) return undefined;
  const dir = join(tmp, name);
  mkdirSync(dir);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  mounts.push(dir);
  return dir;
}

function remountReadOnly(dir: string): void {
  execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'ignore' });
}

let full: string | undefined;
let full2: string | undefined;
let readOnly: string;
let readOnlyKind: string;

beforeAll(() => {
  if (!canMount) {
    if (!noReadOnly) {
      readOnly = join(tmp, 'ro');
      mkdirSync(readOnly, { recursive: true });
      chmodSync(readOnly, 0o555);
      readOnlyKind = 'EACCES (permission denied)';
    }
    return;
  }
  full = mountTmpfs('full', '1m');
  full2 = mountTmpfs('full2', '1m');
  const ro = mountTmpfs('ro', '1m');
  if (!ro) throw new Error('mounting a tmpfs worked once, then failed');
  remountReadOnly(ro);
  readOnly = ro;
  readOnlyKind = 'EROFS (read-only file system)';
});

afterAll(() => {
  for (const dir of mounts) spawnSync('umount', ['-l', dir]);
});

/** 66k float parameters (no optimizer state): a 270 kB checkpoint, 1 step per epoch. */
function config(name: string, checkpoint: object, epochs = 500): string {
  const file = join(tmp, `${name}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      model: { inputShape: [1], layers: [{ type: 'dense', units: 256, activation: 'relu' }, { type: 'dense', units: 256 }, { type: 'dense', units: 1 }] },
      data: { source: 'linear', samples: 100 },
      loss: 'meanSquaredError',
      optimizer: { name: 'sgd', learningRate: 0.001 },
      training: { epochs, batchSize: 100 },
      parallel: { workers: 1 },
      evaluation: { on: 'train' },
      // A checkpoint at every epoch end (and none by time: the steps must be known).
      checkpoint: { keepLast: 100, everyEpoch: true, everySeconds: 0, ...checkpoint },
    }),
  );
  return file;
}

function ringtrain(...args: string[]) {
  const result = spawnSync(process.execPath, [mainJs, ...args], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

const oneLine = (stderr: string) => {
  expect(stderr.endsWith('\n')).toBe(true);
  expect(stderr.trimEnd().split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/\n\s+at /);
};

/** A run that began training says first where it writes (one "run folder" line); the rest of stderr. */
const afterRunFolderNote = (stderr: string) => {
  expect(stderr).toMatch(/^run folder \S+: /);
  return stderr.slice(stderr.indexOf('\n') + 1);
};

describe('write failures', () => {
  it.skipIf(!canMount)(`a full disk stops training at the first failed checkpoint; the last good one loads${cannotMount}`, () => {
    if (!full) return expect.fail('the tmpfs mount failed');
    const dir = join(full, 'ckpts');
    const out = join(tmp, 'out-full');
    const run = ringtrain('train', config('full', { dir }), '--out', out, '--json');
    expect(run.code).toBe(2);
    const stderr = afterRunFolderNote(run.stderr);
    oneLine(stderr);
    const match = /^ringtrain: checkpoint not written: (\S+\/ckpt-e\d+-s(\d+)\.rtckpt): cannot write it: ENOSPC \(no space left on device\); training stopped .*; last good checkpoint: (\S+\.rtckpt)\n$/.exec(stderr);
    expect(match, run.stderr).not.toBeNull();
    const failedStep = Number(match![2]);
    // 1 MB holds 3 checkpoints: training stopped a step or two after the 4th, not after 500.
    const epochs = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').filter((line) => line.startsWith('{"event":"epoch"')).length;
    expect(epochs).toBeGreaterThanOrEqual(failedStep);
    expect(epochs).toBeLessThanOrEqual(failedStep + 3);
    expect(match![3]).toBe(join(dir, `ckpt-e${String(failedStep - 1).padStart(4, '0')}-s${String(failedStep - 1).padStart(6, '0')}.rtckpt`));
    const inspect = ringtrain('inspect', match![3]!, '--json');
    expect(inspect.code).toBe(0);
    expect(JSON.parse(inspect.stdout)).toMatchObject({ position: { globalStep: failedStep - 1 } });
    // export to the full disk: the weights file and ENOSPC
    const exported = ringtrain('export', match![3]!, join(full, 'model'), '--format', 'tfjs');
    expect(exported.code).toBe(2);
    oneLine(exported.stderr);
    expect(exported.stderr).toBe(`ringtrain: ${join(full, 'model', 'weights.bin')}: cannot write the model weights: ENOSPC (no space left on device)\n`);
  });

  it.skipIf(!canMount)(`with checkpoint.onWriteError "warn" the run goes on and says so once${cannotMount}`, () => {
    if (!full2) return expect.fail('the tmpfs mount failed');
    const run = ringtrain('train', config('warn', { dir: join(full2, 'ckpts'), onWriteError: 'warn' }, 20), '--out', join(tmp, 'out-warn'), '--json');
    expect(run.code).toBe(0);
    const stderr = afterRunFolderNote(run.stderr);
    oneLine(stderr);
    expect(stderr).toMatch(/^warning: checkpoint not written: \S+\.rtckpt: cannot write it: ENOSPC \(no space left on device\); training goes on/);
    expect(run.stdout.trim().split('\n')).toHaveLength(21); // 20 epochs and the summary
  });

  it.skipIf(noReadOnly)(`a read-only checkpoint folder fails before training, naming it${cannotReadOnly}`, () => {
    const dir = join(readOnly, 'ckpts');
    const run = ringtrain('train', config('ro', { dir }), '--out', join(tmp, 'out-ro'), '--json');
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    // a read-only tmpfs refuses the new folder; a chmod'ed one too
    expect(run.stderr).toBe(`ringtrain: ${dir}: cannot create the checkpoint folder: ${readOnlyKind}\n`);
  });

  it.skipIf(noReadOnly)(`a read-only output folder fails before training${cannotReadOnly}`, () => {
    const ro = ringtrain('train', config('ro-out', {}), '--out', join(readOnly, 'out'));
    expect(ro.code).toBe(2);
    expect(ro.stdout).toBe('');
    expect(ro.stderr).toBe(`ringtrain: ${join(readOnly, 'out')}: cannot create the output folder: ${readOnlyKind}\n`);
  });

  it('an output folder with a name too long fails before training', () => {
    const long = join(tmp, 'x'.repeat(300));
    const tooLong = ringtrain('train', config('long', {}), '--out', long);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toBe(`ringtrain: ${long}: cannot create the output folder: ENAMETOOLONG (name too long)\n`);
  });

  it(`export to a read-only folder or a name too long: exit 2 naming the folder${cannotReadOnly ? ' (read-only part skipped: root cannot mount a read-only tmpfs here, and chmod does not bind root)' : ''}`, () => {
    const out = join(tmp, 'out-export');
    expect(ringtrain('train', config('export', {}, 2), '--out', out).code).toBe(0);
    if (!noReadOnly) {
      const ro = ringtrain('export', join(out, 'checkpoints'), join(readOnly, 'model'), '--format', 'tfjs');
      expect(ro.code).toBe(2);
      expect(ro.stderr).toBe(`ringtrain: ${join(readOnly, 'model')}: cannot create the model folder: ${readOnlyKind}\n`);
    }
    const long = join(tmp, 'y'.repeat(300));
    const tooLong = ringtrain('export', join(out, 'checkpoints'), long, '--format', 'tfjs');
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toBe(`ringtrain: ${long}: cannot create the model folder: ENAMETOOLONG (name too long)\n`);
  });
});
