/**
 * Write failures as a user meets them, with the built CLI: a full disk during training, a
 * read-only folder, a name too long, and `export` to a full or read-only disk. Each must exit
 * with 2 and one stderr line naming the file and the OS error; a full disk stops training at
 * once (not at the end of the run) and leaves the last good checkpoint loadable.
 *
 * The full and read-only disks are tmpfs mounts made here (CI runs as root). Without root or
 * mount, read-only is a chmod 555 folder (EACCES) and the full-disk cases are skipped.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mainJs, root } from '../helpers/processes.js';

const tmp = mkdtempSync(join(tmpdir(), 'ringtrain-write-errors-'));
const mounts: string[] = [];

/** A tmpfs of `size` at a new folder, or undefined when this machine does not allow it. */
function mountTmpfs(name: string, size: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
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
const fullReason = 'needs root and tmpfs mounts to fill a disk';

beforeAll(() => {
  full = mountTmpfs('full', '1m');
  full2 = mountTmpfs('full2', '1m');
  const ro = mountTmpfs('ro', '1m');
  if (ro) {
    remountReadOnly(ro);
    readOnly = ro;
    readOnlyKind = 'EROFS (read-only file system)';
  } else {
    readOnly = join(tmp, 'ro');
    mkdirSync(readOnly, { recursive: true });
    chmodSync(readOnly, 0o555);
    readOnlyKind = 'EACCES (permission denied)';
  }
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
      checkpoint: { keepLast: 100, ...checkpoint },
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

describe('write failures', () => {
  it.skipIf(!process.getuid || process.getuid() !== 0)('a full disk stops training at the first failed checkpoint; the last good one loads', () => {
    if (!full) return expect.fail(`tmpfs mount failed as root: ${fullReason}`);
    const dir = join(full, 'ckpts');
    const out = join(tmp, 'out-full');
    const run = ringtrain('train', config('full', { dir }), '--out', out, '--json');
    expect(run.code).toBe(2);
    oneLine(run.stderr);
    const match = /^ringtrain: checkpoint not written: (\S+\/ckpt-e\d+-s(\d+)\.rtckpt): cannot write it: ENOSPC \(no space left on device\); training stopped .*; last good checkpoint: (\S+\.rtckpt)\n$/.exec(run.stderr);
    expect(match, run.stderr).not.toBeNull();
    const failedStep = Number(match![2]);
    // 1 MB holds 3 checkpoints: training stopped a step or two after the 4th, not after 500.
    const epochs = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').length;
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

  it.skipIf(!process.getuid || process.getuid() !== 0)('with checkpoint.onWriteError "warn" the run goes on and says so once', () => {
    if (!full2) return expect.fail(`tmpfs mount failed as root: ${fullReason}`);
    const run = ringtrain('train', config('warn', { dir: join(full2, 'ckpts'), onWriteError: 'warn' }, 20), '--out', join(tmp, 'out-warn'), '--json');
    expect(run.code).toBe(0);
    oneLine(run.stderr);
    expect(run.stderr).toMatch(/^warning: checkpoint not written: \S+\.rtckpt: cannot write it: ENOSPC \(no space left on device\); training goes on/);
    expect(run.stdout.trim().split('\n')).toHaveLength(21); // 20 epochs and the summary
  });

  it('a read-only checkpoint folder fails before training, naming it', () => {
    const dir = join(readOnly, 'ckpts');
    const run = ringtrain('train', config('ro', { dir }), '--out', join(tmp, 'out-ro'), '--json');
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    // a read-only tmpfs refuses the new folder; a chmod'ed one too
    expect(run.stderr).toBe(`ringtrain: ${dir}: cannot create the checkpoint folder: ${readOnlyKind}\n`);
  });

  it('a read-only output folder, and one with a name too long, fail before training', () => {
    const ro = ringtrain('train', config('ro-out', {}), '--out', join(readOnly, 'out'));
    expect(ro.code).toBe(2);
    expect(ro.stdout).toBe('');
    expect(ro.stderr).toBe(`ringtrain: ${join(readOnly, 'out')}: cannot create the output folder: ${readOnlyKind}\n`);
    const long = join(tmp, 'x'.repeat(300));
    const tooLong = ringtrain('train', config('long', {}), '--out', long);
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toBe(`ringtrain: ${long}: cannot create the output folder: ENAMETOOLONG (name too long)\n`);
  });

  it('export to a read-only folder or a name too long: exit 2 naming the folder', () => {
    const out = join(tmp, 'out-export');
    expect(ringtrain('train', config('export', {}, 2), '--out', out).code).toBe(0);
    const ro = ringtrain('export', join(out, 'checkpoints'), join(readOnly, 'model'), '--format', 'tfjs');
    expect(ro.code).toBe(2);
    expect(ro.stderr).toBe(`ringtrain: ${join(readOnly, 'model')}: cannot create the model folder: ${readOnlyKind}\n`);
    const long = join(tmp, 'y'.repeat(300));
    const tooLong = ringtrain('export', join(out, 'checkpoints'), long, '--format', 'tfjs');
    expect(tooLong.code).toBe(2);
    expect(tooLong.stderr).toBe(`ringtrain: ${long}: cannot create the model folder: ENAMETOOLONG (name too long)\n`);
  });
});
