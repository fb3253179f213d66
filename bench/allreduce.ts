#!/usr/bin/env node
/**
 * All-reduce between processes in the manner of nccl-tests' all_reduce_perf: a world of
 * processes on loopback, float32 sums in place, sizes from --min to --max growing by --factor;
 * for each size the time of one all-reduce (median over --iters timed iterations after --warmup,
 * each started after a barrier and timed on every rank; an iteration's time is that of its
 * slowest rank) and the bus bandwidth 2(n-1)/n x size / time. Runners of one run, side by side:
 *   - ringtrain's TCP ring (src/collective/tcp: rendezvous() -> ProcessGroup.allReduce),
 *   - torch.distributed.all_reduce over gloo (scripts/bench_allreduce_torch.py, Debian's
 *     python3-torch at /usr/bin/python3, when it imports), same sizes, same world,
 *   - the loopback ceiling: two processes each streaming --stream bytes to the other over TCP
 *     at the same time (one connection per direction, as the ring's), per direction, measured
 *     before and after the all-reduce runners by three programs: Node reading with 'data'
 *     events (a fresh buffer per read), Node reading into one reused buffer (the socket's
 *     onread option, as the ring's data connections do: reused-reads.ts), and Python
 *     (recv_into one fixed buffer); the ceiling is the best of their medians.
 * With n = 2 the bus bandwidth equals size / time, and each rank sends and receives `size`
 * bytes per all-reduce, so it compares directly with the per-direction loopback figure. The
 * ring's results are checked on every rank after each size, and each rank reports its CPU time
 * and minor page faults per call.
 *   npm run bench:allreduce -- [--min 4K] [--max 256M] [--factor 4] [--warmup 3] [--iters 20]
 *                              [--nproc 2] [--rounds 2] [--stream 256M] [--no-torch] [--out FILE]
 */
import { fork, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { addInto } from '../dist/collective/tcp/accumulate.js';
import { rendezvous } from '../dist/collective/tcp/group.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const self = fileURLToPath(import.meta.url);
const PYTHON = '/usr/bin/python3';
const MiB = 1 << 20;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface SweepJob {
  sizes: number[];
  warmup: number;
  /** Timed iterations per size (already reduced for the large sizes). */
  iters: number[];
}

/** Per size, per timed iteration, one rank's seconds. */
type RankTimes = number[][];

/** Per size, one rank's costs per timed all-reduce (its barrier included). */
interface Cost {
  /** CPU seconds of the process, user and system. */
  user: number;
  system: number;
  /** Minor page faults per 4 KiB page of data received (2(n-1)/n x size per rank). */
  faultsPerPage: number;
}

interface RingResult {
  times: number[][];
  /** Per size, the mean over ranks. */
  costs: Cost[];
}

// ---- ringtrain rank (child) ----------------------------------------------------------------

async function ringRank(rank: number, size: number, port: number, job: SweepJob): Promise<{ times: RankTimes; costs: Cost[] }> {
  const group = await rendezvous({
    rank,
    size,
    masterAddr: '127.0.0.1',
    masterPort: port,
    token: 'bench-allreduce',
    fingerprint: { bench: 'allreduce' },
    info: { pid: process.pid },
    timeoutMs: 60_000,
    stepTimeoutMs: 120_000,
  });
  const out: RankTimes = [];
  const costs: Cost[] = [];
  let step = 0;
  try {
    for (const [s, bytes] of job.sizes.entries()) {
      const buf = new Float32Array(bytes / 4);
      // Small values: repeated in-place sums double them, far from overflow in a few dozen rounds.
      for (let i = 0; i < buf.length; i++) buf[i] = ((i % 1000) + rank) * 1e-3;
      const times: number[] = [];
      let before = process.resourceUsage();
      for (let i = 0; i < job.warmup + job.iters[s]!; i++) {
        if (i === job.warmup) before = process.resourceUsage();
        await group.barrier(step++);
        const started = performance.now();
        await group.allReduce(buf, step++);
        const seconds = (performance.now() - started) / 1000;
        if (i >= job.warmup) times.push(seconds);
      }
      const after = process.resourceUsage();
      const calls = job.iters[s]!;
      const pagesReceived = (((2 * (size - 1)) / size) * bytes * calls) / 4096;
      costs.push({
        user: (after.userCPUTime - before.userCPUTime) / 1e6 / calls,
        system: (after.systemCPUTime - before.systemCPUTime) / 1e6 / calls,
        faultsPerPage: (after.minorPageFault - before.minorPageFault) / pagesReceived,
      });
      // The sums must be right (2 ranks: a + b after the first call, doubled by each further one).
      if (size === 2) {
        const calls = job.warmup + job.iters[s]!;
        for (let i = 0; i < buf.length; i++) {
          const expected = Math.fround(Math.fround((i % 1000) * 1e-3) + Math.fround(((i % 1000) + 1) * 1e-3)) * 2 ** (calls - 1);
          if (buf[i] !== Math.fround(expected)) throw new Error(`wrong sum at ${i} of ${bytes} bytes: ${buf[i]} instead of ${expected}`);
        }
      }
      out.push(times);
    }
  } finally {
    await group.close();
  }
  return { times: out, costs };
}

// ---- loopback streaming rank (child) --------------------------------------------------------

/**
 * Each rank writes `bytes` to the other on one connection (the one its server accepted) and
 * reads `bytes` from the other on another (the one it opened), at the same time, `reps` times
 * (each started by the parent); reports the seconds of each repetition (until its own bytes
 * are handed to the kernel and the peer's all arrived). Reads: 'data' events (Node allocates a
 * fresh buffer for every read) or 'fixed' (the socket's `onread`
 * option: every read into one reused 1 MiB buffer).
 */
async function loopbackRank(reads: 'data' | 'fixed', bytes: number, send: (m: unknown) => void, next: () => Promise<Message>): Promise<void> {
  let out: Socket | undefined;
  let server: Server | undefined;
  const accepted = new Promise<void>((resolve) => {
    server = createServer((socket) => {
      out = socket;
      server!.close();
      resolve();
    });
    server.listen(0, '127.0.0.1', () => send({ type: 'port', port: (server!.address() as { port: number }).port }));
  });
  const peerPort = (await next()).port as number;
  let received = 0;
  let wantReceived = 0;
  let onReceived: () => void = () => undefined;
  const count = (n: number) => {
    received += n;
    if (received >= wantReceived) onReceived();
  };
  const inc = await new Promise<Socket>((resolve) => {
    const options = reads === 'fixed' ? { onread: { buffer: Buffer.alloc(MiB), callback: (n: number) => (count(n), true) } } : {};
    const socket = connect({ port: peerPort, host: '127.0.0.1', ...options }, () => resolve(socket));
    if (reads === 'data') socket.on('data', (piece: Buffer) => count(piece.length));
  });
  await accepted;
  for (const s of [out!, inc]) s.setNoDelay(true);
  const chunk = Buffer.alloc(4 * MiB, 1);
  send({ type: 'ready' });
  for (;;) {
    const command = await next();
    if (command.type !== 'go') break;
    const started = performance.now();
    wantReceived += bytes;
    const allIn = received >= wantReceived ? Promise.resolve() : new Promise<void>((resolve) => (onReceived = resolve));
    const allOut = (async () => {
      for (let sent = 0; sent < bytes; sent += chunk.length) {
        const piece = sent + chunk.length <= bytes ? chunk : chunk.subarray(0, bytes - sent);
        if (!out!.write(piece)) await new Promise((resolve) => out!.once('drain', resolve));
      }
      await new Promise<void>((resolve) => out!.write(Buffer.alloc(0), () => resolve()));
    })();
    await Promise.all([allIn, allOut]);
    send({ type: 'done', seconds: (performance.now() - started) / 1000 });
  }
  out!.destroy();
  inc.destroy();
}

// ---- parent ---------------------------------------------------------------------------------

interface Message {
  type: string;
  [key: string]: unknown;
}

/** A forked child of this program with a queue of its IPC messages. */
class Child {
  readonly process: ChildProcess;
  private readonly messages: Message[] = [];
  private waiter: ((m: Message) => void) | undefined;
  readonly exited: Promise<number>;

  constructor(args: string[]) {
    this.process = fork(self, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    this.process.on('message', (m: Message) => {
      if (this.waiter) {
        const w = this.waiter;
        this.waiter = undefined;
        w(m);
      } else this.messages.push(m);
    });
    this.exited = new Promise((resolve) => this.process.on('exit', (code) => resolve(code ?? 1)));
  }

  next(): Promise<Message> {
    const queued = this.messages.shift();
    if (queued) return Promise.resolve(queued);
    return Promise.race([
      new Promise<Message>((resolve) => (this.waiter = resolve)),
      this.exited.then((code) => {
        throw new Error(`child ${this.process.pid} exited with ${code} before reporting`);
      }),
    ]);
  }

  send(m: unknown): void {
    this.process.send(m as object);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Per size, per iteration, the slowest rank's seconds. */
function slowest(perRank: RankTimes[]): number[][] {
  return perRank[0]!.map((times, s) => times.map((_, i) => Math.max(...perRank.map((r) => r[s]![i]!))));
}

async function runRing(nproc: number, job: SweepJob): Promise<RingResult> {
  const port = await freePort();
  const children = [...Array(nproc).keys()].map((rank) => new Child(['--ring-rank', String(rank), String(nproc), String(port), JSON.stringify(job)]));
  try {
    const results = await Promise.all(children.map(async (c) => (await c.next()).result as { times: RankTimes; costs: Cost[] }));
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const costs = job.sizes.map((_, s) => ({
      user: mean(results.map((r) => r.costs[s]!.user)),
      system: mean(results.map((r) => r.costs[s]!.system)),
      faultsPerPage: mean(results.map((r) => r.costs[s]!.faultsPerPage)),
    }));
    return { times: slowest(results.map((r) => r.times)), costs };
  } finally {
    for (const c of children) if (c.process.exitCode === null) c.process.kill();
  }
}

function runGloo(nproc: number, job: SweepJob): number[][] {
  const child = spawnSync(PYTHON, [join(root, 'scripts', 'bench_allreduce_torch.py'), JSON.stringify({ ...job, nproc })], { encoding: 'utf8', timeout: 15 * 60_000, maxBuffer: 64 * MiB });
  if (child.status !== 0) throw new Error(`bench_allreduce_torch.py failed: ${(child.stderr || child.error?.message || '').trim().split('\n').pop()}`);
  const { ranks } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { ranks: RankTimes[] };
  return slowest(ranks);
}

/** Node streaming both ways at once: per-direction bytes/s of each repetition. */
async function runLoopbackNode(reads: 'data' | 'fixed', bytes: number, reps: number): Promise<number[]> {
  const both = [0, 1].map(() => new Child(['--loopback-rank', reads, String(bytes)]));
  const rates: number[] = [];
  try {
    const ports = await Promise.all(both.map(async (c) => (await c.next()).port as number));
    both.forEach((c, i) => c.send({ type: 'port', port: ports[1 - i] }));
    for (const c of both) if ((await c.next()).type !== 'ready') throw new Error('loopback child not ready');
    for (let r = 0; r < reps + 1; r++) {
      for (const c of both) c.send({ type: 'go' });
      const seconds = await Promise.all(both.map(async (c) => (await c.next()).seconds as number));
      if (r > 0) rates.push(bytes / Math.max(...seconds)); // the first is a warm-up
    }
    for (const c of both) c.send({ type: 'stop' });
    await Promise.all(both.map((c) => c.exited));
  } finally {
    for (const c of both) if (c.process.exitCode === null) c.process.kill();
  }
  return rates;
}

function runLoopbackPython(bytes: number, reps: number): number[] {
  const child = spawnSync(PYTHON, [join(root, 'scripts', 'bench_loopback.py'), JSON.stringify({ bytes, reps })], { encoding: 'utf8', timeout: 5 * 60_000 });
  if (child.status !== 0) throw new Error(`bench_loopback.py failed: ${(child.stderr || child.error?.message || '').trim().split('\n').pop()}`);
  return (JSON.parse(child.stdout.trim().split('\n').pop()!) as { rates: number[] }).rates;
}

/**
 * The cost of the arithmetic of the ring in this process's JS: the add loop of accumulate.ts
 * (addInto itself: dst[i] = dst[i] + src[i] on Float32Arrays, unrolled by four since 96b1b6c;
 * a plain loop beside it) and a byte copy, in GB/s of the bytes summed or copied (each rank sums size/n and
 * copies size/n of every all-reduce with n = 2), over 64 KiB pieces as reads arrive.
 */
function jsRates(bytes: number): { sum: number; sumPlain: number; copy: number } {
  const n = bytes / 4;
  const dst = new Float32Array(n).fill(1);
  const src = new Float32Array(n).fill(2);
  const addPlain = (d: Float32Array, at: number, s: Float32Array, count: number) => {
    for (let i = 0; i < count; i++) d[at + i] = d[at + i]! + s[i]!;
  };
  // The library's own loop, not a copy of it.
  const add = addInto;
  const time = (body: () => void) => {
    const t = performance.now();
    body();
    return bytes / ((performance.now() - t) / 1000);
  };
  const sums: number[] = [];
  const plains: number[] = [];
  const copies: number[] = [];
  const dstBytes = new Uint8Array(dst.buffer);
  const srcBytes = new Uint8Array(src.buffer);
  const piece = 16384;
  const sumAll = (loop: typeof add) => () => {
    for (let at = 0; at < n; at += piece) loop(dst, at, src.subarray(at, Math.min(n, at + piece)), Math.min(piece, n - at));
  };
  const copyAll = () => {
    for (let at = 0; at < bytes; at += piece * 4) dstBytes.set(srcBytes.subarray(at, Math.min(bytes, at + piece * 4)), at);
  };
  for (let r = 0; r < 6; r++) {
    sums.push(time(sumAll(add)));
    plains.push(time(sumAll(addPlain)));
    copies.push(time(copyAll));
    dst.fill(1);
  }
  return { sum: median(sums.slice(1)), sumPlain: median(plains.slice(1)), copy: median(copies.slice(1)) };
}

function parseSize(text: string): number {
  const m = /^(\d+)\s*([KMG]?)(i?B)?$/i.exec(text.trim());
  if (!m) throw new Error(`not a size: ${text}`);
  return Number(m[1]) * ({ '': 1, K: 1 << 10, M: 1 << 20, G: 1 << 30 } as Record<string, number>)[m[2]!.toUpperCase()]!;
}

function formatSize(bytes: number): string {
  if (bytes >= MiB) return `${bytes / MiB} MiB`;
  return `${bytes / 1024} KiB`;
}

const gbs = (bytesPerSecond: number) => (bytesPerSecond / 1e9).toFixed(2);
const us = (seconds: number) => (seconds * 1e6 >= 10_000 ? Math.round(seconds * 1e6).toString() : (seconds * 1e6).toFixed(0));

async function main(): Promise<void> {
  if (process.argv[2] === '--ring-rank') {
    const [rank, size, port, job] = process.argv.slice(3);
    const result = await ringRank(Number(rank), Number(size), Number(port), JSON.parse(job!) as SweepJob);
    process.send!({ type: 'result', result }, () => process.exit(0));
    return;
  }
  if (process.argv[2] === '--loopback-rank') {
    const [reads, bytes] = process.argv.slice(3);
    const inbox: Message[] = [];
    let waiter: ((m: Message) => void) | undefined;
    process.on('message', (m: Message) => (waiter ? (waiter(m), (waiter = undefined)) : inbox.push(m)));
    const next = () => (inbox.length ? Promise.resolve(inbox.shift()!) : new Promise<Message>((resolve) => (waiter = resolve)));
    await loopbackRank(reads as 'data' | 'fixed', Number(bytes), (m) => process.send!(m as object), next);
    process.disconnect();
    return;
  }
  const options = new Command('bench:allreduce')
    .option('--min <size>', 'smallest buffer', '4K')
    .option('--max <size>', 'largest buffer', '256M')
    .option('--factor <n>', 'growth between sizes', '4')
    .option('--warmup <n>', 'untimed iterations per size', '3')
    .option('--iters <n>', 'timed iterations per size up to 1 MiB (fewer above: 4 MiB..16 MiB 15, 64 MiB 10, larger 5)', '20')
    .option('--nproc <n>', 'processes', '2')
    .option('--rounds <n>', 'rounds of ringtrain and gloo, alternating which goes first; iterations are pooled', '2')
    .option('--stream <size>', 'bytes each way per loopback repetition', '256M')
    .option('--stream-reps <n>', 'timed loopback repetitions (after one warm-up)', '3')
    .option('--no-torch', 'leave out the gloo runner and the Python loopback')
    .option('--out <file>', 'JSON results file', join(root, 'bench-results', `allreduce-${new Date().toISOString().replace(/[:.]/g, '-')}.json`))
    .parse(process.argv)
    .opts<{ min: string; max: string; factor: string; warmup: string; iters: string; nproc: string; rounds: string; stream: string; streamReps: string; torch: boolean; out: string }>();
  const nproc = Number(options.nproc);
  const sizes: number[] = [];
  for (let s = parseSize(options.min); s <= parseSize(options.max); s *= Number(options.factor)) sizes.push(s);
  const baseIters = Number(options.iters);
  const iters = sizes.map((s) => (s <= MiB ? baseIters : s <= 16 * MiB ? Math.min(baseIters, 15) : s <= 64 * MiB ? Math.min(baseIters, 10) : Math.min(baseIters, 5)));
  const job: SweepJob = { sizes, warmup: Number(options.warmup), iters };
  const torch = options.torch && spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
  const torchVersion = torch ? spawnSync(PYTHON, ['-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8' }).stdout.trim() : undefined;
  const stream = parseSize(options.stream);
  const reps = Number(options.streamReps);
  const log = (line: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);
  const started = new Date();
  const loadBefore = loadavg()[0]!;

  const loopback: Record<string, number[]> = {};
  const measureLoopback = async (when: 'before' | 'after') => {
    log(`loopback (${when}): node, 'data' events, ${formatSize(stream)} each way x ${reps}`);
    loopback[`node ${when}`] = await runLoopbackNode('data', stream, reps);
    log(`loopback (${when}): node, reads into a fixed buffer`);
    loopback[`node-fixed ${when}`] = await runLoopbackNode('fixed', stream, reps);
    if (torch) {
      log(`loopback (${when}): python`);
      loopback[`python ${when}`] = runLoopbackPython(stream, reps);
    }
  };

  await measureLoopback('before');
  const ring: number[][] = sizes.map(() => []);
  const ringCosts: Cost[][] = [];
  const gloo: number[][] = sizes.map(() => []);
  const pool = (into: number[][], from: number[][]) => from.forEach((times, s) => into[s]!.push(...times));
  for (let round = 0; round < Number(options.rounds); round++) {
    const order = round % 2 === 0 ? ['ring', 'gloo'] : ['gloo', 'ring'];
    for (const runner of order) {
      if (runner === 'ring') {
        log(`round ${round + 1}: ringtrain TCP ring, ${nproc} processes`);
        const asBuilt = await runRing(nproc, job);
        pool(ring, asBuilt.times);
        ringCosts.push(asBuilt.costs);
      } else if (torch) {
        log(`round ${round + 1}: torch.distributed gloo, ${nproc} processes`);
        pool(gloo, runGloo(nproc, job));
      }
    }
  }
  await measureLoopback('after');
  log('JS sum and copy rates');
  const js = jsRates(64 * MiB);
  const finished = new Date();
  const loadAfter = loadavg()[0]!;

  const busFactor = (2 * (nproc - 1)) / nproc;
  // The ceiling: the best of the loopback medians (before or after; any of the three programs).
  const ceiling = Math.max(...Object.values(loopback).map(median));
  const rows = sizes.map((bytes, s) => {
    const ringTime = median(ring[s]!);
    const glooTime = gloo[s]!.length ? median(gloo[s]!) : NaN;
    return {
      bytes,
      iterations: ring[s]!.length,
      ringTime,
      ringBusBw: (busFactor * bytes) / ringTime,
      ringMin: Math.min(...ring[s]!),
      glooTime,
      glooBusBw: (busFactor * bytes) / glooTime,
      glooMin: gloo[s]!.length ? Math.min(...gloo[s]!) : NaN,
    };
  });

  const machine = `${availableParallelism()} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}${torchVersion ? `, torch ${torchVersion}` : ''}`;
  const lines = [
    `${machine}; ${nproc} processes on 127.0.0.1; ${started.toISOString()} to ${finished.toISOString()}, 1-minute load average ${loadBefore.toFixed(1)} at the start, ${loadAfter.toFixed(1)} at the end`,
    '',
    '| size | ringtrain time (µs) | ringtrain busbw (GB/s) | gloo time (µs) | gloo busbw (GB/s) | ringtrain / gloo (busbw) | ringtrain / loopback ceiling |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${formatSize(r.bytes)} | ${us(r.ringTime)} | ${gbs(r.ringBusBw)} | ${Number.isNaN(r.glooTime) ? '' : us(r.glooTime)} | ${Number.isNaN(r.glooTime) ? '' : gbs(r.glooBusBw)} | ${Number.isNaN(r.glooTime) ? '' : (r.ringBusBw / r.glooBusBw).toFixed(2)} | ${((r.ringBusBw / ceiling) * 100).toFixed(0)} % |`,
    ),
    '',
    '',
    `Costs per all-reduce and rank (its barrier included; mean of ranks and rounds): CPU ms user + system, minor page faults per 4 KiB page received:`,
    '',
    '| size | ringtrain CPU ms | ringtrain faults/page |',
    '|---|---|---|',
    ...sizes.map((bytes, s) => {
      const cell = (runs: Cost[][]) => {
        const mean = (f: (c: Cost) => number) => runs.reduce((a, r) => a + f(r[s]!), 0) / runs.length;
        return `${(mean((c) => c.user) * 1e3).toFixed(2)} + ${(mean((c) => c.system) * 1e3).toFixed(2)} | ${mean((c) => c.faultsPerPage).toFixed(2)}`;
      };
      return `| ${formatSize(bytes)} | ${cell(ringCosts)} |`;
    }),
    '',
    `loopback, per direction, both directions at once (${formatSize(stream)} each way, median of ${reps} after a warm-up; GB/s):`,
    ...Object.entries(loopback).map(([k, v]) => `  ${k.padEnd(18)} ${gbs(median(v))} (runs ${v.map(gbs).join(', ')})`),
    `  ceiling used: ${gbs(ceiling)} GB/s (the best median); node = 'data' events (a fresh buffer per read), node-fixed = onread into one 1 MiB buffer (as the ring's data connections), python = recv_into one 4 MiB buffer`,
    `JS in this process, 64 MiB in 64 KiB pieces: float32 sum loop of accumulate.ts (unrolled by 4) ${gbs(js.sum)} GB/s of bytes summed (plain loop ${gbs(js.sumPlain)}), byte copy ${gbs(js.copy)} GB/s`,
    `times: median over ${options.rounds} rounds x iterations (${iters.join('/')}) per size, each iteration the slowest of the ${nproc} ranks, after a barrier; busbw = 2(n-1)/n x size / time`,
  ];
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(
    options.out,
    JSON.stringify({ machine, started: started.toISOString(), finished: finished.toISOString(), load: [loadBefore, loadAfter], argv: process.argv.slice(2), nproc, loopback, ceiling, js, rows, ring, gloo, ringCosts }, null, 2),
  );
  process.stdout.write(`${lines.join('\n')}\n\nresults: ${options.out}\n`);
}

await main();
