/**
 * kill -9 at 20 moments of a run that checkpoints every 3 steps: the latest checkpoint always
 * loads, and resuming from it finishes with the weights of an uninterrupted run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { CheckpointStore } from '../../src/checkpoint/store.js';
import { mulberry32 } from '../../src/util/random.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const main = join(root, 'dist/cli/main.js');
const args = (out: string) => ['train', 'configs/linear.json', '--epochs', '60', '--batch-size', '10', '--workers', '2', '--checkpoint-every', '3', '--json', '--out', out];

function finalParams(stdout: string): number[] {
  const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { params: { values: number[] }[] };
  return summary.params.flatMap((p) => p.values);
}

/**
 * Kills the run `delayMs` after its `epochs`-th epoch line: counted in progress, not wall time,
 * so the moments fall inside the run however fast the machine is (a 20 s deadline still kills).
 */
function runAndKill(argv: string[], epochs: number, delayMs: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [main, ...argv], { cwd: root, stdio: ['ignore', 'pipe', 'ignore'] });
    let seen = 0;
    let buffered = '';
    const kill = () => child.kill('SIGKILL');
    const deadline = setTimeout(kill, 20_000);
    child.stdout.on('data', (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) if (line.includes('"event":"epoch"') && ++seen === epochs) setTimeout(kill, delayMs);
    });
    child.on('exit', (code) => {
      clearTimeout(deadline);
      resolve(code);
    });
  });
}

describe('kill -9', () => {
  it('at 20 random moments: the latest checkpoint always loads and the resumed run ends as the uninterrupted one', async () => {
    const random = mulberry32(99);
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-kill-'));
    const store = new CheckpointStore(join(out, 'checkpoints'));
    let kills = 0;
    for (let i = 0; i < 20; i++) {
      const hasLatest = existsSync(join(out, 'checkpoints', 'latest'));
      // After 1 or 2 epochs (of 60), at a random moment of the next one (~25 ms, 3 checkpoints).
      // Without a checkpoint yet, --resume auto starts afresh in the same folder (a new run without
      // --resume would move to the next free <out>-N, the folder holding the killed run's log).
      const code = await runAndKill([...args(out), '--resume', hasLatest ? 'latest' : 'auto'], 1 + Math.floor(random() * 2), Math.floor(random() * 30));
      if (code === null) kills++;
      if (existsSync(join(out, 'checkpoints', 'latest'))) {
        const state = await readCheckpointFile(store.resolve('latest'));
        expect(state.position.globalStep).toBeGreaterThan(0);
      }
      // No temporary file is ever taken for a checkpoint: every listed one verifies.
      if (existsSync(store.dir)) for (const entry of store.list()) await readCheckpointFile(entry.path);
    }
    expect(kills).toBe(20);
    expect(readdirSync(join(out, 'checkpoints'))).toContain('latest');
    const resumed = spawnSync(process.execPath, [main, ...args(out), '--resume', 'latest'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    expect(resumed.status).toBe(0);
    const clean = spawnSync(process.execPath, [main, ...args(mkdtempSync(join(tmpdir(), 'ringtrain-kill-'))), '--no-checkpoints'], {
      cwd: root,
      encoding: 'utf8',
      maxBuffer: 64 * 1024 * 1024,
    });
    expect(clean.status).toBe(0);
    expect(finalParams(resumed.stdout)).toEqual(finalParams(clean.stdout));
    // 22 runs one after another: on 2 cores shared with the multi-process suites this takes
    // longer than the default 120 s (each run still has its own 20 s deadline).
  }, 300_000);
});
