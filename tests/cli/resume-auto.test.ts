/**
 * --resume auto (what a process restarted by torchrun does): a fresh start without checkpoints,
 * the latest one when there is one, and a one-line error, with every file left as it was, when
 * the latest pointer is there but damaged.
 */
import { readdirSync, readFileSync, writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, startRingtrain } from '../helpers/processes.js';

afterEach(killAll);

const args = (out: string, epochs: number) => ['train', 'configs/linear.json', '--epochs', String(epochs), '--batch-size', '10', '--workers', '1', '--json', '--out', out, '--resume', 'auto'];

describe('--resume auto', () => {
  it('starts fresh without a checkpoint, continues from the latest with one, and refuses a damaged pointer', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-resume-auto-'));
    const fresh = startRingtrain(args(out, 3));
    expect(await fresh.exited(60_000), fresh.stderr()).toBe(0);
    expect(fresh.stderr()).not.toMatch(/resuming/);

    const more = startRingtrain(args(out, 5));
    expect(await more.exited(60_000), more.stderr()).toBe(0);
    expect(more.stderr()).toMatch(/resuming from .*ckpt-e0003.* \(epoch 4, step 0\)/);

    const dir = join(out, 'checkpoints');
    writeFileSync(join(dir, 'latest'), 'no-such-checkpoint.rtckpt\n');
    const before = readdirSync(dir).sort();
    const damaged = startRingtrain(args(out, 7));
    expect(await damaged.exited(60_000)).toBe(2);
    expect(damaged.stderr()).toMatch(/^ringtrain: .*no-such-checkpoint\.rtckpt/m);
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(readFileSync(join(dir, 'latest'), 'utf8')).toBe('no-such-checkpoint.rtckpt\n');
  });
});
