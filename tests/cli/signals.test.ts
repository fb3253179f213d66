/**
 * SIGINT and SIGTERM: the run finishes its step, writes a checkpoint, says how to resume and
 * exits 130 / 143; resuming finishes with the weights of an uninterrupted run.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const main = join(root, 'dist/cli/main.js');
const args = (out: string) => ['train', 'configs/linear.json', '--epochs', '80', '--batch-size', '10', '--workers', '2', '--json', '--out', out];

function finalParams(stdout: string): number[] {
  const summary = JSON.parse(stdout.trim().split('\n').pop()!) as { params: { values: number[] }[] };
  return summary.params.flatMap((p) => p.values);
}

/** Starts a run, sends `signal` once it has trained a while, and waits for the exit. */
function interrupted(out: string, signal: NodeJS.Signals): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [main, ...args(out)], { cwd: root });
    let stderr = '';
    let epochs = 0;
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.on('data', (d: Buffer) => {
      epochs += d.toString().split('\n').filter((l) => l.startsWith('{"event":"epoch"')).length;
      if (epochs >= 20 && !child.killed) child.kill(signal);
    });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no exit after ${signal}: ${stderr}`));
    }, 60_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('signals', () => {
  const uninterrupted = spawnSync(process.execPath, [main, ...args(mkdtempSync(join(tmpdir(), 'ringtrain-sig-'))), '--no-checkpoints'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });

  for (const [signal, exitCode] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    it(`${signal}: checkpoint, exit ${exitCode}, and --resume latest ends as the uninterrupted run`, async () => {
      // One note: where the run writes.
      expect(uninterrupted.stderr).toMatch(/^run folder \S+: metrics log \S+metrics\.jsonl, TensorBoard events \S+tensorboard\n$/); // --no-checkpoints
      expect(uninterrupted.status).toBe(0);
      const out = mkdtempSync(join(tmpdir(), 'ringtrain-sig-'));
      const { code, stderr } = await interrupted(out, signal);
      expect(code).toBe(exitCode);
      expect(stderr).toContain(`${signal}: stopping after the current step and writing a checkpoint`);
      expect(stderr).toMatch(/stopped at epoch \d+, step 0; checkpoint .*ckpt-e\d+-s\d+\.rtckpt\nresume with: ringtrain train configs\/linear\.json --resume latest\n/);
      expect(readdirSync(join(out, 'checkpoints'))).toContain('latest');
      const resumed = spawnSync(process.execPath, [main, ...args(out), '--resume', 'latest'], { cwd: root, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      expect(resumed.status).toBe(0);
      expect(finalParams(resumed.stdout)).toEqual(finalParams(uninterrupted.stdout));
    });
  }
});
