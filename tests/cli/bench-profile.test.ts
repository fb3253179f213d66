/**
 * `npm run bench:profile` (bench/profile.ts, compiled to dist-bench/profile.js): the per-kernel
 * table of a training step adds up to the kernel time it reports, and a wrong workload name is a
 * one-line error. The benches are not part of `npm run build`: this suite compiles them against
 * the built dist/ (which `npm test` builds first).
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const script = join(root, 'dist-bench/profile.js');

describe('bench:profile', () => {
  beforeAll(() => {
    const tsc = join(root, 'node_modules/typescript/bin/tsc');
    const build = spawnSync(process.execPath, [tsc, '-p', join(root, 'bench/tsconfig.json')], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    if (build.status !== 0) throw new Error(`tsc -p bench/tsconfig.json failed: ${build.error?.message ?? ''}${build.stdout}${build.stderr}`);
  }, 90_000);

  it('prints each kernel of a step with calls and times that add up to the kernel time', () => {
    const run = spawnSync(process.execPath, [script, '--workload', 'xor', '--batch', '4', '--steps', '3'], { cwd: root, encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    const head = /^xor, batch 4, wasm, wasm: ([\d.]+) ms per step unprofiled .*\(\d+ samples\/s\), ([\d.]+) ms of it in kernels$/.exec(lines[0]!);
    expect(head, lines[0]).not.toBeNull();
    expect(lines[1]).toMatch(/^single steps \(15\): p10 [\d.]+, p50 [\d.]+, p90 [\d.]+, max [\d.]+ ms$/);
    const rows = lines.slice(4).map((line) => line.split('|').map((cell) => cell.trim()));
    const byName = new Map(rows.map((cells) => [cells[1]!, { calls: Number(cells[2]), ms: Number(cells[3]) }]));
    // xor is Dense(3, sigmoid) -> Dense(1, sigmoid): two fused products forward, sigmoids, a loss.
    expect(byName.get('fusedMatMul__op')?.calls).toBe(2);
    expect(byName.has('Sigmoid')).toBe(true);
    const total = [...byName.values()].reduce((sum, row) => sum + row.ms, 0);
    // Rows are rounded to 0.01 ms each.
    expect(Math.abs(total - Number(head![2]))).toBeLessThanOrEqual(0.01 * rows.length);
  });

  it('names a missing workload config', () => {
    const run = spawnSync(process.execPath, [script, '--workload', 'no-such-workload'], { cwd: root, encoding: 'utf8' });
    expect(run.status).toBe(1);
    expect(run.stderr.trim()).toBe(`${join(root, 'configs', 'no-such-workload.json')}: config file not found`);
  });
});
