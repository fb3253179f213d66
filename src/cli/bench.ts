#!/usr/bin/env node
/**
 * The benchmark harness: every configuration runs in a fresh process, warms up, then times
 * several windows; rows report the median samples/s with min and max, and for ringtrain the
 * share of a step spent synchronising. Usage:
 *   npm run bench -- [--workload mnist-mlp] [--batch 32,128] [--workers 1,2] [--steps 60] [--windows 5] [--out FILE]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { activateBackend, type BackendName } from '../backend/select-backend.js';
import { loadRunConfig } from '../config/load.js';
import type { RunConfig } from '../config/schema.js';
import { createSharedDataset, DatasetReader, type SharedDataset } from '../data/dataset.js';
import { buildModel } from '../model/build-model.js';
import type { PhaseTimes } from '../train/replica-protocol.js';
import { Trainer } from '../train/trainer.js';
import { mulberry32 } from '../util/random.js';

interface Job {
  kind: 'ringtrain' | 'tfjs-fit';
  workload: string;
  backend: BackendName;
  batchSize: number;
  workers: number;
  steps: number;
  windows: number;
}

interface Row extends Job {
  median: number;
  min: number;
  max: number;
  /** ringtrain only: share of the step in copy-in, copy-out, reduce-scatter, update and barriers. */
  syncShare?: number;
  phaseShares?: Record<string, number>;
}

const root = fileURLToPath(new URL('../..', import.meta.url));

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
    const trainer = await Trainer.create(config, { data: { train: data } });
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
  return { ...job, median: median(rates), min: Math.min(...rates), max: Math.max(...rates), syncShare, phaseShares };
}

function runInChild(job: Job): Row {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', JSON.stringify(job)], {
    encoding: 'utf8',
    timeout: 20 * 60_000,
  });
  if (child.status !== 0) throw new Error(`benchmark child failed (${JSON.stringify(job)}):\n${child.stderr}`);
  return JSON.parse(child.stdout.trim().split('\n').pop()!) as Row;
}

function table(rows: Row[]): string {
  const header = '| workload | batch | runner | samples/s median | min | max | vs tfjs-fit | sync share of step |';
  const lines = [header, '|---|---|---|---|---|---|---|---|'];
  for (const row of rows) {
    const base = rows.find((r) => r.kind === 'tfjs-fit' && r.workload === row.workload && r.batchSize === row.batchSize);
    const runner = row.kind === 'ringtrain' ? `ringtrain ${row.workers} replica(s), ${row.backend}` : `tfjs model.fit, 1 thread, ${row.backend}`;
    const ratio = base ? (row.median / base.median).toFixed(2) : '';
    const sync = row.syncShare === undefined ? '' : `${(row.syncShare * 100).toFixed(1)} %`;
    lines.push(`| ${row.workload} | ${row.batchSize} | ${runner} | ${Math.round(row.median)} | ${Math.round(row.min)} | ${Math.round(row.max)} | ${ratio} | ${sync} |`);
  }
  return lines.join('\n');
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') {
    const row = await runJob(JSON.parse(process.argv[3]!) as Job);
    process.stdout.write(`${JSON.stringify(row)}\n`);
    return;
  }
  const list = (v: string) => v.split(',').map(Number);
  const options = new Command('bench')
    .option('--workload <names>', 'comma-separated config names', 'mnist-mlp')
    .option('--batch <sizes>', 'global batch sizes', '32,128')
    .option('--workers <counts>', 'replica counts', [...Array(availableParallelism()).keys()].map((i) => i + 1).join(','))
    .option('--backend <name>', 'wasm or cpu', 'wasm')
    .option('--steps <n>', 'steps per timed window', '60')
    .option('--windows <n>', 'timed windows per configuration', '5')
    .option('--out <file>', 'JSON results file', join(root, 'bench-results', `bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`))
    .parse(process.argv)
    .opts<{ workload: string; batch: string; workers: string; backend: BackendName; steps: string; windows: string; out: string }>();
  const rows: Row[] = [];
  for (const workload of options.workload.split(',')) {
    for (const batchSize of list(options.batch)) {
      const common = { workload, backend: options.backend, batchSize, steps: Number(options.steps), windows: Number(options.windows) };
      const jobs: Job[] = [{ kind: 'tfjs-fit', workers: 1, ...common }, ...list(options.workers).map((workers) => ({ kind: 'ringtrain' as const, workers, ...common }))];
      for (const job of jobs) {
        process.stderr.write(`running ${job.kind} ${workload} batch ${batchSize} workers ${job.workers}...\n`);
        rows.push(runInChild(job));
      }
    }
  }
  const machine = `${availableParallelism()} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, JSON.stringify({ machine, date: new Date().toISOString(), argv: process.argv.slice(2), rows }, null, 2));
  process.stdout.write(`${machine}\n\n${table(rows)}\n\nresults: ${options.out}\n`);
}

await main();
