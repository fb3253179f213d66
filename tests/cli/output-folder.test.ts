import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import { chooseOutputFolder, describeOutputs, holdsRun } from '../../src/cli/output-folder.js';
import { UserError } from '../../src/errors.js';

const base = mkdtempSync(join(tmpdir(), 'ringtrain-folders-'));
const configAt = (out: string, checkpointDir?: string) =>
  parseRunConfig({
    name: 'x',
    model: { inputShape: [2], layers: [{ type: 'dense', units: 1 }] },
    data: 'xor',
    loss: 'mse',
    optimizer: 'sgd',
    training: { epochs: 1, batchSize: 4 },
    output: { dir: out },
    ...(checkpointDir ? { checkpoint: { dir: checkpointDir } } : {}),
  });
const newRun = { resuming: false, launched: false, flag: '--out' };

function refusal(fn: () => unknown): UserError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error('not refused');
}

describe('the run folder of a new run', () => {
  it('is the folder asked for while it holds no run (missing, empty, or only an empty metrics log)', () => {
    const out = join(base, 'fresh');
    expect(chooseOutputFolder(configAt(out), newRun)).toEqual({ config: configAt(out) });
    mkdirSync(join(out, 'checkpoints'), { recursive: true });
    writeFileSync(join(out, 'metrics.jsonl'), '');
    expect(holdsRun(out)).toBe(false);
    expect(chooseOutputFolder(configAt(out), newRun).movedFrom).toBeUndefined();
  });

  it('moves to the next free <out>-N, the checkpoints with it, when the folder holds a run; a resume keeps it', () => {
    const out = join(base, 'used');
    mkdirSync(out);
    writeFileSync(join(out, 'metrics.jsonl'), '{"event":"epoch"}\n');
    mkdirSync(`${out}-2/checkpoints`, { recursive: true });
    writeFileSync(`${out}-2/checkpoints/latest`, 'ckpt-e0001-s000001.rtckpt\n');
    const choice = chooseOutputFolder(configAt(out), newRun);
    expect(choice.movedFrom).toBe(out);
    expect(choice.config.output.dir).toBe(`${out}-3`);
    expect(choice.config.checkpoint.dir).toBe(join(`${out}-3`, 'checkpoints'));
    expect(describeOutputs(choice.config, { checkpoints: true, movedFrom: out })).toBe(
      `run folder ${out}-3 (${out} holds an earlier run): metrics log ${join(`${out}-3`, 'metrics.jsonl')}, checkpoints ${join(`${out}-3`, 'checkpoints')}, TensorBoard events ${join(`${out}-3`, 'tensorboard')}`,
    );
    expect(chooseOutputFolder(configAt(out), { ...newRun, resuming: true })).toEqual({ config: configAt(out) });
  });

  it('is refused for a process started by a launcher, and for a checkpoint.dir elsewhere that holds a run', () => {
    const out = join(base, 'used');
    const launched = refusal(() => chooseOutputFolder(configAt(out), { ...newRun, launched: true }));
    expect(launched.message).toBe(`--out: ${out} already holds a run; a process started by a launcher does not choose another folder`);
    expect(launched.hint).toBe('continue that run with --resume auto, or pass another --out');
    const elsewhere = join(base, 'ckpts');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'latest'), 'ckpt-e0001-s000001.rtckpt\n');
    const custom = refusal(() => chooseOutputFolder(configAt(join(base, 'other'), elsewhere), newRun));
    expect(custom.message).toBe(`checkpoint.dir: ${elsewhere} already holds the checkpoints of a run; a new run would write over them`);
  });
});
