#!/usr/bin/env node
/**
 * The benchmark harness: every configuration runs in a fresh process, warms up, then times
 * several windows; rows report the median samples/s with min and max, and for ringtrain the
 * share of a step spent synchronising. Rows of one run: ringtrain in one process with each
 * replica (thread) count, ringtrain as a world of --processes processes of one thread each over
 * TCP on 127.0.0.1 (each process a fresh child of this program given its WorldSpec; they train
 * in lockstep, and rank 0 reports the world's samples/s), plain single-thread TF.js `model.fit`
 * on wasm and on cpu, and PyTorch (Debian's python3-torch at /usr/bin/python3, when it
 * imports) on 1 thread, on all cores, and as DDP over gloo with one process per core. Usage:
 *   npm run bench -- [--workload mnist-mlp,mnist-cnn] [--batch 32,128] [--workers 1,2] [--processes 2] [--steps 60] [--windows 5]
 *                    [--rounds 1] [--no-tfjs] [--no-torch] [--out FILE]
 */
import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { activateBackend, type BackendName } from '../dist/backend/select-backend.js';
import { loadRunConfig } from '../dist/config/load.js';
import type { RunConfig } from '../dist/config/schema.js';
import type { WorldSpec } from '../dist/launch/world.js';
import { createSharedDataset, DatasetReader, type SharedDataset } from '../dist/data/dataset.js';
import { buildModel } from '../dist/model/build-model.js';
import type { PhaseTimes } from '../dist/train/replica-protocol.js';
import { Trainer } from '../dist/train/trainer.js';
import { mulberry32 } from '../dist/util/random.js';

interface Job {
  kind: 'ringtrain' | 'tfjs-fit' | 'torch-threads' | 'torch-ddp';
  workload: string;
  backend: BackendName;
  batchSize: number;
  /** Replicas (threads) per process; torch: threads or DDP processes. */
  workers: number;
  /** ringtrain: processes of the world (each with `workers` replicas); 1 when absent. */
  processes?: number;
  /** Set by the parent for each process of a world: its rank and rank 0's port. */
  rank?: number;
  masterPort?: number;
  steps: number;
  windows: number;
}

interface Row extends Job {
  median: number;
  min: number;
  max: number;
  /** samples/s of every timed window (of every round). */
  rates?: number[];
  /** Why the row has no figures (a runner that is missing or failed). */
  error?: string;
  /** ringtrain only: share of the step in copy-in, copy-out, reduce-scatter, update and barriers. */
  syncShare?: number;
  phaseShares?: Record<string, number>;
}

const root = fileURLToPath(new URL('..', import.meta.url));

function generatedData(config: RunConfig, samples: number): SharedDataset {
  if (!('inputShape' in config.model)) throw new Error('benchmarks need a layer-list model');
  const shape = config.model.inputShape;
  const random = mulberry32(1);
  const features = new Uint8Array(samples * shape.reduce((a, b) => a * b, 1)).map(() => Math.floor(random() * 256));
  const labels = Float32Array.from({ length: samples }, () => Math.floor(random() * 10));
  return createSharedDataset({ name: 'generated', featureShape: shape, labelShape: [], features, labels, featureScale: 1 / 255 });
}

async function workloadConfig(job: Job): Promise<RunConfig> {
  const config = await loadRunConfig(join(root, 'configs', `${job.workload}.json`));
  return {
    ...config,
    backend: job.backend,
    metrics: config.metrics,
    training: { ...config.training, batchSize: job.batchSize, validationSplit: 0, validateOnTest: false },
    parallel: { ...config.parallel, workers: job.workers },
    output: { ...config.output, metricsLog: false },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Runs in the child process: one configuration, warm-up, then `windows` timed epochs. */
async function runJob(job: Job): Promise<Row> {
  const config = await workloadConfig(job);
  const data = generatedData(config, job.batchSize * job.steps);
  const rates: number[] = [];
  let syncShare: number | undefined;
  let phaseShares: Record<string, number> | undefined;
  if (job.kind === 'ringtrain') {
    const processes = job.processes ?? 1;
    const spec: WorldSpec | undefined =
      processes > 1
        ? {
            contract: 'flags',
            rank: job.rank!,
            worldSize: processes,
            localRank: job.rank!,
            localWorldSize: processes,
            masterAddr: '127.0.0.1',
            masterPort: job.masterPort!,
            runId: 'bench',
            restartCount: 0,
            describe: `bench world, rank ${job.rank} of ${processes}`,
          }
        : undefined;
    // In a world, every process generates the same data (seed 1) and its replicas train their
    // share of every global batch; the epochs' samples and seconds (rank 0's) are the world's.
    const trainer = await Trainer.create(config, { data: { train: data }, world: spec && { spec, token: 'bench' } });
    try {
      await trainer.fit(1);
      const epochs = await trainer.fit(job.windows);
      for (const e of epochs) rates.push(e.samples / e.seconds);
      const totals = epochs.reduce(
        (acc, e) => {
          for (const [k, v] of Object.entries(e.phaseTimes)) acc[k] = (acc[k] ?? 0) + v;
          return acc;
        },
        {} as Record<string, number>,
      );
      const stepTime = Object.values(totals).reduce((a, b) => a + b, 0);
      phaseShares = Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, v / stepTime]));
      const sync: (keyof PhaseTimes)[] = ['copyIn', 'copyOut', 'reduceScatter', 'update', 'barrier'];
      syncShare = sync.reduce((a, k) => a + phaseShares![k]!, 0);
    } finally {
      await trainer.close();
    }
  } else {
    await activateBackend(job.backend);
    const model = await buildModel(config.model, config.training.seed);
    model.compile({ optimizer: tf.train.adam(), loss: config.loss.name, metrics: config.metrics.length ? ['accuracy'] : [] });
    const reader = new DatasetReader(data);
    const x = new Float32Array(data.size * reader.perSample);
    const y = new Float32Array(data.size);
    reader.gatherRange(0, data.size, x, y);
    const xs = tf.tensor(x, [data.size, ...data.featureShape]);
    const ys = tf.tensor(y, [data.size]);
    const fit = () => model.fit(xs, ys, { batchSize: job.batchSize, epochs: 1, shuffle: false, verbose: 0 });
    await fit();
    for (let w = 0; w < job.windows; w++) {
      const started = performance.now();
      await fit();
      rates.push(data.size / ((performance.now() - started) / 1000));
    }
  }
  return { ...job, median: median(rates), min: Math.min(...rates), max: Math.max(...rates), rates, syncShare, phaseShares };
}

const PYTHON = '/usr/bin/python3';

function torchAvailable(): boolean {
  return spawnSync(PYTHON, ['-c', 'import torch'], { encoding: 'utf8' }).status === 0;
}

function failedRow(job: Job, stderr: string | undefined): Row {
  const reason = (stderr || 'failed').trim().split('\n').filter(Boolean).pop() ?? 'failed';
  return { ...job, median: NaN, min: NaN, max: NaN, error: reason.slice(0, 200) };
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

/** A world of `job.processes` fresh children of this program, started together; rank 0's row. */
async function runWorldInChildren(job: Job): Promise<Row> {
  const masterPort = await freePort();
  const ranks = [...Array(job.processes!).keys()].map((rank) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify({ ...job, rank, masterPort })], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 20 * 60_000);
    const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      }),
    );
    return { child, done };
  });
  const results = await Promise.all(ranks.map((r) => r.done));
  const failed = results.find((r) => r.code !== 0);
  if (failed) return failedRow(job, failed.stderr);
  const row = JSON.parse(results[0]!.stdout.trim().split('\n').pop()!) as Row;
  delete row.rank;
  delete row.masterPort;
  return { ...row, ...job };
}

function runInChild(job: Job): Row {
  const torch = job.kind === 'torch-threads' || job.kind === 'torch-ddp';
  const command = torch ? PYTHON : process.execPath;
  const args = torch
    ? [join(root, 'scripts', 'bench_torch.py'), JSON.stringify({ ...job, mode: job.kind === 'torch-ddp' ? 'ddp' : 'threads', threads: job.workers, processes: job.workers })]
    : [fileURLToPath(import.meta.url), '--child', JSON.stringify(job)];
  const child = spawnSync(command, args, { encoding: 'utf8', timeout: 20 * 60_000 });
  if (child.status !== 0) return failedRow(job, child.stderr || child.error?.message);
  return { ...job, ...(JSON.parse(child.stdout.trim().split('\n').pop()!) as Partial<Row>) } as Row;
}

function runnerName(row: Row): string {
  switch (row.kind) {
    case 'ringtrain':
      if ((row.processes ?? 1) > 1) return `ringtrain ${row.processes} processes × ${row.workers} thread${row.workers > 1 ? 's' : ''} (${row.backend})`;
      return row.workers === 1 ? `ringtrain 1 replica (${row.backend})` : `ringtrain 1 process × ${row.workers} threads (${row.backend})`;
    case 'tfjs-fit':
      return `tfjs model.fit 1 thread (${row.backend})`;
    case 'torch-threads':
      return `PyTorch ${row.workers} thread${row.workers > 1 ? 's' : ''}`;
    case 'torch-ddp':
      return `PyTorch DDP gloo ${row.workers} processes`;
  }
}

function table(rows: Row[]): string {
  const lines = [
    '| workload | batch | runner | samples/s median | min | max | vs ringtrain 1 replica | sync share of step |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const row of rows) {
    const base = rows.find((r) => r.kind === 'ringtrain' && r.workers === 1 && (r.processes ?? 1) === 1 && r.workload === row.workload && r.batchSize === row.batchSize);
    const ratio = base && !row.error ? (row.median / base.median).toFixed(2) : '';
    const sync = row.syncShare === undefined ? '' : `${(row.syncShare * 100).toFixed(1)} %`;
    const figures = row.error ? `${row.error} | | ` : `${Math.round(row.median)} | ${Math.round(row.min)} | ${Math.round(row.max)}`;
    lines.push(`| ${row.workload} | ${row.batchSize} | ${runnerName(row)} | ${figures} | ${ratio} | ${sync} |`);
  }
  return lines.join('\n');
}

/**
 * Side-by-side ratios of the multi-process rows: against PyTorch DDP with as many processes,
 * and against ringtrain with as many threads in one process.
 */
function ratios(rows: Row[]): string[] {
  const lines: string[] = [];
  for (const row of rows) {
    const processes = row.processes ?? 1;
    if (row.kind !== 'ringtrain' || processes <= 1 || row.error) continue;
    const same = (r: Row) => r.workload === row.workload && r.batchSize === row.batchSize && !r.error;
    const ddp = rows.find((r) => same(r) && r.kind === 'torch-ddp' && r.workers === processes);
    const threads = rows.find((r) => same(r) && r.kind === 'ringtrain' && (r.processes ?? 1) === 1 && r.workers === processes * row.workers);
    const parts: string[] = [];
    if (ddp) parts.push(`/ PyTorch DDP ${processes} processes = ${(row.median / ddp.median).toFixed(2)}`);
    if (threads) parts.push(`/ ringtrain 1 process × ${threads.workers} threads = ${(row.median / threads.median).toFixed(2)}`);
    if (parts.length) lines.push(`${row.workload} batch ${row.batchSize}: ${runnerName(row)} ${parts.join('; ')}`);
  }
  return lines;
}

/** One row from the rounds of a job: windows pooled, phase shares averaged. */
function pooled(rounds: Row[]): Row {
  const failed = rounds.find((r) => r.error);
  if (failed || rounds.length === 1) return failed ?? rounds[0]!;
  const rates = rounds.flatMap((r) => r.rates ?? [r.median]);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const row: Row = { ...rounds[0]!, median: median(rates), min: Math.min(...rates), max: Math.max(...rates), rates };
  if (row.syncShare !== undefined) row.syncShare = mean(rounds.map((r) => r.syncShare!));
  if (row.phaseShares) row.phaseShares = Object.fromEntries(Object.keys(row.phaseShares).map((k) => [k, mean(rounds.map((r) => r.phaseShares![k]!))]));
  return row;
}

/** The rows of one workload and batch size, in table order. */
function jobsFor(workload: string, batchSize: number, options: { workers: number[]; processes: number[]; steps: number; windows: number; cpuSteps: number; torch: boolean; tfjs: boolean }): Job[] {
  const common = { workload, batchSize, windows: options.windows };
  const jobs: Job[] = options.workers.map((workers) => ({ kind: 'ringtrain', backend: 'wasm', workers, steps: options.steps, ...common }));
  for (const processes of options.processes) {
    if (processes > 1) jobs.push({ kind: 'ringtrain', backend: 'wasm', workers: 1, processes, steps: options.steps, ...common });
  }
  if (options.tfjs) jobs.push({ kind: 'tfjs-fit', backend: 'wasm', workers: 1, steps: options.steps, ...common });
  // The pure-JS cpu backend trains CNNs at a few samples/s: a few steps at the reference batch
  // size tell its speed (a window at batch 128 would take minutes).
  const mlp = workload === 'mnist-mlp';
  if (options.tfjs && (mlp || batchSize <= 32)) {
    jobs.push({ kind: 'tfjs-fit', backend: 'cpu', workers: 1, ...common, steps: mlp ? options.steps : options.cpuSteps, windows: mlp ? options.windows : 2 });
  }
  if (options.torch) {
    const cores = Math.max(...options.workers);
    jobs.push({ kind: 'torch-threads', backend: 'cpu', workers: 1, steps: options.steps, ...common });
    if (cores > 1) {
      jobs.push({ kind: 'torch-threads', backend: 'cpu', workers: cores, steps: options.steps, ...common });
      jobs.push({ kind: 'torch-ddp', backend: 'cpu', workers: cores, steps: options.steps, ...common });
    }
  }
  return jobs;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const row = await runJob(JSON.parse(process.argv[3]!) as Job);
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  const list = (v: string) => v.split(',').map(Number);
  const options = new Command('bench')
    .option('--workload <names>', 'comma-separated config names', 'mnist-mlp,mnist-cnn,cifar10-cnn')
    .option('--batch <sizes>', 'global batch sizes', '32,128')
    .option('--workers <counts>', 'replica counts', [...Array(availableParallelism()).keys()].map((i) => i + 1).join(','))
    .option('--processes <counts>', 'process counts of the multi-process rows (1 thread each; 1 = none)', String(availableParallelism()))
    .option('--steps <n>', 'steps per timed window', '60')
    .option('--cpu-steps <n>', 'steps per window of the cpu backend on CNNs', '2')
    .option('--windows <n>', 'timed windows per configuration', '5')
    .option('--rounds <n>', 'run the rows of each workload and batch this many times, every other time in reverse order; windows are pooled', '1')
    .option('--no-tfjs', 'leave out the plain TF.js model.fit rows')
    .option('--no-torch', 'leave out the PyTorch rows')
    .option('--out <file>', 'JSON results file', join(root, 'bench-results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`))
    .parse(process.argv)
    .opts<{ workload: string; batch: string; workers: string; processes: string; steps: string; cpuSteps: string; windows: string; rounds: string; tfjs: boolean; torch: boolean; out: string }>();
  const torch = options.torch && torchAvailable();
  const notes: string[] = [];
  if (options.torch && !torch) notes.push(`PyTorch rows skipped: ${PYTHON} cannot import torch (apt-get install python3-torch)`);
  const rows: Row[] = [];
  const started = new Date();
  const loadBefore = loadavg()[0]!;
  for (const workload of options.workload.split(',')) {
    for (const batchSize of list(options.batch)) {
      const jobs = jobsFor(workload, batchSize, {
        workers: list(options.workers),
        processes: list(options.processes),
        steps: Number(options.steps),
        windows: Number(options.windows),
        cpuSteps: Number(options.cpuSteps),
        torch,
        tfjs: options.tfjs,
      });
      // With several rounds, every other round runs the rows in reverse order, so that a slow
      // spell of the machine does not fall on the same rows each time; windows are pooled.
      const runs: Row[][] = jobs.map(() => []);
      for (let round = 0; round < Number(options.rounds); round++) {
        const order = jobs.map((_, i) => i);
        if (round % 2 === 1) order.reverse();
        for (const i of order) {
          const job = jobs[i]!;
          const ofRounds = Number(options.rounds) > 1 ? ` (round ${round + 1})` : '';
          process.stderr.write(`${workload} batch ${batchSize}: ${runnerName({ ...job, median: 0, min: 0, max: 0 })}${ofRounds}...\n`);
          runs[i]!.push((job.processes ?? 1) > 1 ? await runWorldInChildren(job) : runInChild(job));
        }
      }
      rows.push(...runs.map(pooled));
    }
  }
  const machine = `${availableParallelism()} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, JSON.stringify({ machine, date: new Date().toISOString(), started: started.toISOString(), load: [loadBefore, loadavg()[0]], argv: process.argv.slice(2), notes, rows }, null, 2));
  // Other work on the machine shows in the 1-minute load average (this run adds 1-2 to it).
  const when = `${started.toISOString()} to ${new Date().toISOString()}, load average ${loadBefore.toFixed(1)} at the start, ${loadavg()[0]!.toFixed(1)} at the end`;
  const ratioLines = ratios(rows);
  process.stdout.write(`${machine}; ${when}\n${notes.map((n) => `note: ${n}\n`).join('')}\n${table(rows)}\n${ratioLines.length ? `\n${ratioLines.join('\n')}\n` : ''}\nresults: ${options.out}\n`);
}

await main();
