/** The `ringtrain` command as a user runs it (the compiled dist/cli/main.js). */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

function ringtrain(...args: string[]) {
  const result = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('ringtrain CLI', () => {
  it('train --json prints one epoch object per line, then the summary, and writes the metrics log', () => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-cli-'));
    const { code, stdout, stderr } = ringtrain('train', 'configs/linear.json', '--json', '--epochs', '300', '--workers', '2', '--out', out);
    // One note: where the run writes.
    expect(stderr).toBe(`run folder ${out}: metrics log ${join(out, 'metrics.jsonl')}, checkpoints ${join(out, 'checkpoints')}, TensorBoard events ${join(out, 'tensorboard')}\n`);
    expect(code).toBe(0);
    const lines = stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(301);
    expect(lines[0]).toMatchObject({ event: 'epoch', epoch: 1, epochs: 300, steps: 1, samples: 100 });
    const summary = lines[300]!;
    expect(summary).toMatchObject({ event: 'summary', name: 'linear', workers: 2, backend: 'wasm', epochs: 300 });
    expect(summary.samplesPerSec).toBeGreaterThan(0);
    expect(summary.final).toHaveProperty('loss');
    expect(summary.evaluation).toMatchObject({ on: 'train', samples: 100 });
    const params = summary.params as { name: string; values: number[] }[];
    expect(params.map((p) => p.name)).toEqual(['dense_1/kernel', 'dense_1/bias']);
    const log = readFileSync(join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { event: string; epoch?: number });
    // The start record, one per epoch (one step each: no progress records), the summary.
    expect(log).toHaveLength(302);
    expect(log[0]).toMatchObject({ event: 'start', name: 'linear', stepsPerEpoch: 1, epochs: 300 });
    // The rate of the next update, as the float32 the optimizer uses (configs/linear.json: sgd 0.01).
    expect(log[300]).toMatchObject({ event: 'epoch', epoch: 300, lr: Math.fround(0.01) });
    expect(log[301]).toEqual(summary);
    // Each epoch's phase times per replica; their mean is the epoch's (averaged over replicas) phase times.
    for (const record of log.slice(1, 301) as unknown as { phaseTimes: Record<string, number>; replicaPhaseTimes: Record<string, number>[] }[]) {
      expect(record.replicaPhaseTimes).toHaveLength(2);
      for (const [phase, seconds] of Object.entries(record.phaseTimes)) {
        expect((record.replicaPhaseTimes[0]![phase]! + record.replicaPhaseTimes[1]![phase]!) / 2).toBeCloseTo(seconds, 9);
      }
    }
    // report.html carries the same epochs (the dashboard's page, for offline reading).
    const report = /<script type="application\/json" id="rt-boot">([^<]*)<\/script>/.exec(readFileSync(join(out, 'report.html'), 'utf8'));
    const reported = JSON.parse(report![1]!) as { runs: { name: string; status: string; epochs: { values: { loss: number } }[] }[] };
    expect(reported.runs.map((r) => [r.name, r.status, r.epochs.length])).toEqual([['linear', 'finished', 300]]);
    expect(reported.runs[0]!.epochs[299]!.values.loss).toBe((log[300] as unknown as { loss: number }).loss);
  });

  it('prints one plain line per epoch when stdout is not a terminal', () => {
    const { code, stdout } = ringtrain('train', 'configs/xor.json', '--epochs', '3', '--out', mkdtempSync(join(tmpdir(), 'ringtrain-cli-')));
    expect(code).toBe(0);
    const epochLines = stdout.split('\n').filter((l) => l.startsWith('Epoch '));
    expect(epochLines).toHaveLength(3);
    expect(epochLines[2]).toMatch(/^Epoch 3\/3 - 1 steps - \d+\.\ds - [\d,]+ samples\/s - loss: \d\.\d{4} - accuracy: \d\.\d{4} - lr: 0\.1000$/);
    expect(stdout).toMatch(/Training-data evaluation on 4 samples: loss: \d\.\d{4} - accuracy: \d\.\d{4}/);
  });

  it('a user error prints one line without a stack and exits with 2', () => {
    const missing = ringtrain('train', 'configs/does-not-exist.json');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toBe('ringtrain: configs/does-not-exist.json: config file not found\n');
    const badFlag = ringtrain('train', 'configs/xor.json', '--batch-size', '0');
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('--batch-size expects an integer >= 1, found "0"');
    expect(badFlag.stderr).not.toMatch(/\n\s+at /);
  });

  it('inspect shows a checkpoint (text and --json), export writes model files, a damaged file is refused with exit 2', () => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-cli-'));
    expect(ringtrain('train', 'configs/xor.json', '--epochs', '3', '--out', out).code).toBe(0);
    const text = ringtrain('inspect', join(out, 'checkpoints'));
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^checkpoint\s+.*ckpt-e0003-s000003\.rtckpt/);
    const json = JSON.parse(ringtrain('inspect', join(out, 'checkpoints', 'latest'), '--json').stdout) as { position: { globalStep: number }; replicas: number };
    expect(json.position.globalStep).toBe(3);
    expect(json.replicas).toBe(2);
    const exported = ringtrain('export', join(out, 'checkpoints'), join(out, 'model'), '--format', 'tfjs');
    expect(exported.code).toBe(0);
    expect(JSON.parse(readFileSync(join(out, 'model', 'model.json'), 'utf8')).weightsManifest[0].paths).toEqual(['weights.bin']);
    const damaged = join(out, 'damaged.rtckpt');
    const bytes = readFileSync(join(out, 'checkpoints', 'ckpt-e0003-s000003.rtckpt'));
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(damaged, bytes);
    const refused = ringtrain('inspect', damaged);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(new RegExp(`^ringtrain: ${damaged.replace(/[.]/g, '\\.')}: checksum mismatch: payload CRC32C expected 0x[0-9a-f]{8}, found 0x[0-9a-f]{8} \\(the file is damaged\\)\n$`));
  });

  it('a config written for a bigger machine (more workers than this one allows) trains here with --workers 1, and is refused without it, naming the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-big-machine-'));
    const config = JSON.parse(readFileSync(join(root, 'configs/xor.json'), 'utf8'));
    config.parallel = { ...config.parallel, workers: 64 };
    const file = join(dir, 'xor-64.json');
    writeFileSync(file, JSON.stringify(config));
    // The checks count 2 cores (a bound of 8 workers), whatever this machine has.
    const env = { ...process.env, RINGTRAIN_TEST_CORES: '2' };
    const common = ['train', file, '--epochs', '2', '--no-checkpoints', '--json', '--out', join(dir, 'out')];
    const run = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...common, '--workers', '1'], { cwd: root, encoding: 'utf8', env, timeout: 120_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim().split('\n').at(-1)!).workers).toBe(1);
    const refused = spawnSync(process.execPath, [join(root, 'dist/cli/main.js'), ...common], { cwd: root, encoding: 'utf8', env, timeout: 120_000 });
    expect(refused.status).toBe(2);
    const expected = `ringtrain: ${file}: parallel.workers: expected an integer from 1 to 8 or "auto", found 64 (`;
    expect(refused.stderr.trim().split('\n')[0]!.slice(0, expected.length)).toBe(expected);
  });

  it('an error quoting a name with a line break is still one line (the break shown as \\n)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-one-line-'));
    const file = join(dir, 'first\nsecond.json');
    const run = ringtrain('train', file);
    expect(run.code).toBe(2);
    expect(run.stderr).toBe(`ringtrain: ${dir}/first\\nsecond.json: config file not found\n`);
  });

  it('--version prints the package version', () => {
    const { code, stdout } = ringtrain('--version');
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
  });
});
