/**
 * Two "hosts": the two processes of a training run in two network namespaces joined by a veth
 * pair (10.213.0.1 and 10.213.0.2), so rendezvous and the ring cross a real interface rather than
 * loopback. Both are started as torchrun starts workers (RANK, WORLD_SIZE, MASTER_ADDR, ...),
 * both exit 0, and rank 0's summary holds the parameters of the same run in one process with 2
 * worker threads (same global batches). The test makes its namespaces itself and deletes them
 * afterwards; it is skipped, saying why, only where `ip netns add` is not allowed (CI runs as root
 * with iproute2, so it runs there).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { killAll, mainJs, start, startRingtrain } from '../helpers/processes.js';

const tag = process.pid;
const nsA = `rt-a-${tag}`;
const nsB = `rt-b-${tag}`;
// Interface names have at most 15 characters.
const vethA = `veth-a-${tag % 100000}`;
const vethB = `veth-b-${tag % 100000}`;
const ADDR_A = '10.213.0.1';
const ADDR_B = '10.213.0.2';
const MASTER_PORT = '29611';

function ip(args: string[]): { ok: boolean; why: string } {
  const run = spawnSync('ip', args, { encoding: 'utf8', timeout: 10_000 });
  if (run.error) return { ok: false, why: run.error.message };
  return { ok: run.status === 0, why: (run.stderr || run.stdout || `exit ${run.status}`).trim() };
}

/** Why network namespaces cannot be made here, or undefined when they can. */
function cannotCreateNamespaces(): string | undefined {
  const probe = `rt-probe-${tag}`;
  const added = ip(['netns', 'add', probe]);
  if (!added.ok) return added.why;
  ip(['netns', 'del', probe]);
  return undefined;
}

const reason = cannotCreateNamespaces();

function summaryOf(stdout: string): { processes: number; epochs: number; params: { name: string; values: number[] }[] } {
  const lines = stdout.trim().split('\n').filter((l) => l.includes('"event":"summary"'));
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]!);
}

/** Bytes through a veth end in its namespace. */
function counters(ns: string, dev: string): { rx: number; tx: number } {
  const run = spawnSync('ip', ['-n', ns, '-s', '-j', 'link', 'show', 'dev', dev], { encoding: 'utf8', timeout: 10_000 });
  const [link] = JSON.parse(run.stdout) as { stats64: { rx: { bytes: number }; tx: { bytes: number } } }[];
  return { rx: link!.stats64.rx.bytes, tx: link!.stats64.tx.bytes };
}

describe.skipIf(reason !== undefined)(`two processes in two network namespaces over a veth pair${reason ? ` (skipped: cannot create network namespaces here: ${reason})` : ''}`, () => {
  beforeAll(() => {
    const steps: string[][] = [
      ['netns', 'add', nsA],
      ['netns', 'add', nsB],
      ['link', 'add', vethA, 'type', 'veth', 'peer', 'name', vethB],
      ['link', 'set', vethA, 'netns', nsA],
      ['link', 'set', vethB, 'netns', nsB],
      ['-n', nsA, 'addr', 'add', `${ADDR_A}/24`, 'dev', vethA],
      ['-n', nsB, 'addr', 'add', `${ADDR_B}/24`, 'dev', vethB],
      ['-n', nsA, 'link', 'set', 'lo', 'up'],
      ['-n', nsB, 'link', 'set', 'lo', 'up'],
      ['-n', nsA, 'link', 'set', vethA, 'up'],
      ['-n', nsB, 'link', 'set', vethB, 'up'],
    ];
    for (const step of steps) {
      const done = ip(step);
      if (!done.ok) throw new Error(`ip ${step.join(' ')}: ${done.why}`);
    }
  });

  afterEach(killAll);

  afterAll(() => {
    // Deleting a namespace deletes the veth end in it (and so the pair); the link is deleted in
    // case it never left this namespace.
    ip(['netns', 'del', nsA]);
    ip(['netns', 'del', nsB]);
    ip(['link', 'del', vethA]);
  });

  it('RANK=0 in one, RANK=1 in the other (MASTER_ADDR 10.213.0.1) both exit 0; rank 0 reports 2 processes and the parameters of 1 process x 2 workers', async () => {
    const args = (out: string, workers: number) => [
      'train', 'configs/linear.json', '--epochs', '20', '--batch-size', '10', '--workers', String(workers), '--json', '--no-checkpoints', '--out', out,
    ];
    const env = (rank: number): NodeJS.ProcessEnv => ({
      RANK: String(rank),
      WORLD_SIZE: '2',
      LOCAL_RANK: '0',
      LOCAL_WORLD_SIZE: '1',
      MASTER_ADDR: ADDR_A,
      MASTER_PORT,
      TORCHELASTIC_RUN_ID: 'netns',
    });
    const before = counters(nsA, vethA);
    const ranks = [nsA, nsB].map((ns, rank) =>
      start('ip', ['netns', 'exec', ns, process.execPath, mainJs, ...args(mkdtempSync(join(tmpdir(), `ringtrain-netns-${rank}-`)), 1)], env(rank)),
    );
    // The reference in this namespace, at the same time: one process, two worker threads.
    const single = startRingtrain(args(mkdtempSync(join(tmpdir(), 'ringtrain-netns-single-')), 2));
    const codes = await Promise.all([...ranks, single].map((run) => run.exited(90_000)));
    expect(codes, [...ranks, single].map((run) => run.stderr()).join('\n---\n')).toEqual([0, 0, 0]);

    expect(ranks[0]!.stderr()).toMatch(/world: torchrun \(RANK=0 WORLD_SIZE=2\)/);
    expect(ranks[1]!.stdout()).not.toContain('"event":"summary"');
    const summary = summaryOf(ranks[0]!.stdout());
    expect(summary.processes).toBe(2);
    expect(summary.epochs).toBe(20);
    const reference = summaryOf(single.stdout());
    expect(reference.processes).toBe(1);
    expect(summary.params.map((p) => p.name)).toEqual(reference.params.map((p) => p.name));
    const got = summary.params.flatMap((p) => p.values);
    const want = reference.params.flatMap((p) => p.values);
    expect(got).toHaveLength(want.length);
    got.forEach((value, i) => expect(Math.abs(value - want[i]!), `parameter ${i}: ${value} vs ${want[i]}`).toBeLessThanOrEqual(1e-6 * Math.abs(want[i]!)));

    // The traffic went through the veth pair: both directions carried the run.
    const after = counters(nsA, vethA);
    expect(after.tx - before.tx).toBeGreaterThan(10_000);
    expect(after.rx - before.rx).toBeGreaterThan(10_000);
  });
});
