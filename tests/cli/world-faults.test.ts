/**
 * Faults between processes: in a world of 2 and of 3, one process killed with kill -9, stopped
 * with SIGSTOP, or throwing in a replica. Every survivor exits non-zero within its deadline with
 * one line naming the rank, its host and the step; none hangs; rank 0's latest checkpoint loads;
 * the throwing process writes torchrun's error file.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { CheckpointStore } from '../../src/checkpoint/store.js';
import { freePort, killAll, startRingtrain, torchrunEnv, type Started } from '../helpers/processes.js';

const STEP_TIMEOUT_MS = 3_000;

function longRunConfig(dir: string): string {
  const file = join(dir, 'xor-long.json');
  writeFileSync(
    file,
    JSON.stringify({
      model: { inputShape: [2], layers: [{ type: 'dense', units: 3, activation: 'sigmoid' }, { type: 'dense', units: 1, activation: 'sigmoid' }] },
      data: { source: 'xor' },
      loss: 'binaryCrossentropy',
      optimizer: { name: 'adam', learningRate: 0.1 },
      training: { epochs: 1_000_000, batchSize: 4 },
      evaluation: { on: 'train' },
      parallel: { workers: 1, stepTimeoutMs: STEP_TIMEOUT_MS, rendezvousTimeoutMs: 30_000 },
      output: { dir: join(dir, 'out') },
      checkpoint: { everySteps: 50, everyEpoch: false },
    }),
  );
  return file;
}

async function startWorld(size: number, extraEnv: (rank: number) => NodeJS.ProcessEnv = () => ({})) {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-world-faults-'));
  const config = longRunConfig(dir);
  const port = await freePort();
  const ranks = Array.from({ length: size }, (_, rank) => startRingtrain(['train', config, '--json'], torchrunEnv(rank, size, port, extraEnv(rank))));
  // Training is under way once rank 0 has written a few epochs and a checkpoint.
  await ranks[0]!.line(/"event":"epoch".*"epoch":200,/, 60_000);
  return { dir, ranks };
}

async function expectSurvivorsNameTheFailure(ranks: Started[], failed: number, deadlineMs: number) {
  const survivors = ranks.filter((_, rank) => rank !== failed);
  const codes = await Promise.all(survivors.map((r) => r.exited(deadlineMs)));
  for (const [i, survivor] of survivors.entries()) {
    expect(codes[i], survivor.stderr()).not.toBe(0);
    expect(survivor.stderr()).toMatch(new RegExp(`rank ${failed} \\(host [^)]+\\) failed at step \\d+`));
    // One line for the user, no stack.
    expect(survivor.stderr()).not.toMatch(/\n\s+at /);
  }
}

async function expectLatestCheckpointLoads(dir: string) {
  const state = await readCheckpointFile(new CheckpointStore(join(dir, 'out', 'checkpoints')).resolve('latest'));
  expect(state.position.globalStep).toBeGreaterThan(0);
}

afterEach(killAll);

describe.each([2, 3])('a world of %i processes', (size) => {
  const victim = size - 1;

  it('kill -9 of one process: every survivor stops at once, naming it', async () => {
    const { dir, ranks } = await startWorld(size);
    const killedAt = Date.now();
    ranks[victim]!.child.kill('SIGKILL');
    await expectSurvivorsNameTheFailure(ranks, victim, 15_000);
    // A closed socket is seen at once, not after the step timeout.
    expect(Date.now() - killedAt).toBeLessThan(STEP_TIMEOUT_MS + 5_000);
    await expectLatestCheckpointLoads(dir);
  });

  it('SIGSTOP of one process: every survivor stops within about the step timeout, naming it', async () => {
    const { dir, ranks } = await startWorld(size);
    const stoppedAt = Date.now();
    ranks[victim]!.child.kill('SIGSTOP');
    await expectSurvivorsNameTheFailure(ranks, victim, 4 * STEP_TIMEOUT_MS + 10_000);
    expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(STEP_TIMEOUT_MS - 500);
    await expectLatestCheckpointLoads(dir);
  });

  it('a replica that throws in one process: it exits with its error (and torchrun\'s error file), the others name it', async () => {
    const errorFile = join(mkdtempSync(join(tmpdir(), 'ringtrain-error-file-')), 'error.json');
    const { dir, ranks } = await startWorld(size, (rank) =>
      rank === victim ? { RINGTRAIN_INJECT_FAULT: JSON.stringify({ rank: 0, throwAtGlobalStep: 300 }), TORCHELASTIC_ERROR_FILE: errorFile } : {},
    );
    await expectSurvivorsNameTheFailure(ranks, victim, 20_000);
    expect(await ranks[victim]!.exited(20_000)).not.toBe(0);
    expect(ranks[victim]!.stderr()).toMatch(new RegExp(`\\[rank ${victim}\\] .*injected fault in replica 0 at global step 300`));
    const record = JSON.parse(readFileSync(errorFile, 'utf8')) as { message: { message: string; extraInfo: { timestamp: string } } };
    expect(record.message.message).toMatch(/injected fault in replica 0 at global step 300/);
    expect(Number(record.message.extraInfo.timestamp)).toBeGreaterThan(1_700_000_000);
    await expectLatestCheckpointLoads(dir);
  });
});
