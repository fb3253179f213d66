/**
 * --trace in a world of two processes (--nproc-per-node 2, one replica each): each process writes
 * its own file (rank 1's with `.rank1` before the extension), its replica's steps hold the
 * all-reduce across processes inside the reduce-scatter, its coordinator the network all-reduce
 * of each step inside the segment of steps, the timestamps of both files are on one
 * clock, and only rank 0 writes TensorBoard files.
 */
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, expect, it } from 'vitest';
import { killAll, startRingtrain } from '../helpers/processes.js';

afterEach(killAll);

interface TraceRecord {
  name: string;
  ph: string;
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args?: { name?: string };
}

it('each process writes its own trace; rank 0 alone writes TensorBoard files', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-trace-world-'));
  const out = join(dir, 'run');
  const args = ['train', 'configs/linear.json', '--epochs', '3', '--batch-size', '25', '--workers', '1', '--no-checkpoints', '--out', out, '--trace', join(dir, 'trace.json'), '--nproc-per-node', '2'];
  const run = startRingtrain(args);
  expect(await run.exited(120_000), run.stderr()).toBe(0);
  expect(readdirSync(dir).sort()).toEqual(['run', 'trace.json', 'trace.rank1.json']);
  expect(readdirSync(join(out, 'tensorboard', 'train'))).toHaveLength(1);

  const started = Date.now() * 1000;
  for (const [rank, file] of [[0, 'trace.json'], [1, 'trace.rank1.json']] as const) {
    const records = JSON.parse(readFileSync(join(dir, file), 'utf8')) as TraceRecord[];
    expect(new Set(records.map((r) => r.pid))).toEqual(new Set([rank]));
    const tracks = records.filter((r) => r.name === 'thread_name').map((r) => r.args!.name);
    expect(tracks).toEqual(['coordinator', `replica ${rank}`]);
    const spans = records.filter((r) => r.ph === 'X');
    // Unix time in µs: both files are on one clock, within this test's minutes.
    for (const s of spans) expect(Math.abs(s.ts - started)).toBeLessThan(300e6);
    const replica = spans.filter((s) => s.tid === 2 + rank);
    expect(replica.filter((s) => s.name.startsWith('step ')).map((s) => s.name)).toEqual(Array.from({ length: 12 }, (_, i) => `step ${i + 1}`));
    // Every step's reduce-scatter holds one all-reduce across processes.
    const reduceScatters = replica.filter((s) => s.name === 'reduce-scatter');
    const acrossProcesses = replica.filter((s) => s.name === 'all-reduce across processes');
    expect(acrossProcesses).toHaveLength(12);
    acrossProcesses.forEach((a, i) => {
      const parent = reduceScatters[i]!;
      expect(a.ts).toBeGreaterThanOrEqual(parent.ts);
      expect(a.ts + a.dur).toBeLessThanOrEqual(parent.ts + parent.dur + 1e-3);
    });
    expect(spans.filter((s) => s.tid === 0 && s.name === 'sums across processes').length).toBeGreaterThanOrEqual(3);
    // The coordinator's side of each step's all-reduce: over the network, inside its segment.
    const segments = spans.filter((s) => s.tid === 0 && s.name.startsWith('steps '));
    const network = spans.filter((s) => s.tid === 0 && s.name.startsWith('network all-reduce'));
    expect(network.map((s) => s.name)).toEqual(Array.from({ length: 12 }, (_, i) => `network all-reduce (step ${i + 1})`));
    for (const n of network) expect(segments.some((s) => n.ts >= s.ts && n.ts + n.dur <= s.ts + s.dur + 1e-3), n.name).toBe(true);
  }
}, 130_000);
