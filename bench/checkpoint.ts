#!/usr/bin/env node
/**
 * Checkpoint figures: write and read throughput of a 10-million-parameter model with Adam
 * state against plain fs writes and reads of the same bytes on the same disk, in one run; and
 * the pause a checkpoint causes in training (copying the state out at a step boundary).
 *   npm run bench:checkpoint -- [--params 10000000] [--repeats 5] [--dir DIR]
 */
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { readCheckpointFile } from '../dist/checkpoint/format.js';
import type { CheckpointState } from '../dist/checkpoint/state.js';
import { CheckpointStore } from '../dist/checkpoint/store.js';
import { parseRunConfig } from '../dist/config/load.js';
import { createSharedDataset } from '../dist/data/dataset.js';
import { Trainer } from '../dist/train/trainer.js';
import { VERSION } from '../dist/version.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/**
 * Flushes every dirty page first: otherwise one measurement pays for the write-back of the
 * previous one (a plain write leaves 120 MB dirty for the next fsync to wait behind).
 */
async function timed(work: () => Promise<unknown>): Promise<number> {
  execSync('sync');
  const started = performance.now();
  await work();
  return (performance.now() - started) / 1000;
}

function syntheticState(params: number): CheckpointState {
  const filled = (seed: number) => Float32Array.from({ length: params }, (_, i) => Math.sin(i * 0.001 + seed));
  return {
    ringtrainVersion: VERSION,
    config: parseRunConfig({ name: 'bench', model: { inputShape: [1], layers: [{ type: 'dense', units: 1 }] }, data: 'linear', loss: 'mse', optimizer: 'adam', training: { epochs: 1, batchSize: 1 } }),
    modelTopology: {},
    layout: [{ name: 'w', shape: [params], offset: 0, size: params }],
    params: filled(1),
    optimizer: { name: 'adam', hyperParameters: { learningRate: 0.001 }, step: 1, state: [{ name: 'm', shape: [params], values: filled(2) }, { name: 'v', shape: [params], values: filled(3) }] },
    position: { epoch: 0, stepInEpoch: 1, globalStep: 1, samplesSeen: 1 },
    sampler: { seed: 1, shuffle: true },
    rngStates: [],
    history: [],
    replicas: 1,
    createdAt: new Date().toISOString(),
  };
}

async function throughput(dir: string, params: number, repeats: number) {
  const state = syntheticState(params);
  const bytes = new Uint8Array(params * 4 * 3);
  const store = new CheckpointStore(join(dir, 'store'), { keepLast: 2 });
  const rows: Record<string, number[]> = { storeWrite: [], plainWrite: [], plainWriteFsync: [], storeRead: [], plainRead: [] };
  for (let i = 0; i < repeats; i++) {
    state.position = { ...state.position, globalStep: i + 1 };
    let file = '';
    rows.storeWrite!.push(await timed(async () => (file = await store.write(state))));
    rows.plainWrite!.push(await timed(() => writeFile(join(dir, 'plain.bin'), bytes)));
    rows.plainWriteFsync!.push(
      await timed(async () => {
        const handle = await open(join(dir, 'plain-sync.bin'), 'w');
        await handle.write(bytes);
        await handle.sync();
        await handle.close();
      }),
    );
    rows.storeRead!.push(await timed(() => readCheckpointFile(file)));
    rows.plainRead!.push(await timed(() => readFile(join(dir, 'plain.bin'))));
  }
  const mb = bytes.length / 1e6;
  return Object.fromEntries(Object.entries(rows).map(([k, v]) => [k, { medianMBps: mb / median(v), bestMBps: mb / Math.min(...v) }]));
}

/** The pause at a step boundary: the trainer copies the state out of shared memory. */
async function pause(params: number, repeats: number) {
  const units = Math.round(params / 785);
  const config = parseRunConfig({
    name: 'pause',
    model: { inputShape: [784], layers: [{ type: 'dense', units }] },
    data: 'linear',
    loss: 'mse',
    optimizer: 'adam',
    training: { epochs: 1, batchSize: 8 },
    parallel: { workers: 2 },
    backend: 'wasm',
    output: { metricsLog: false },
  });
  const data = { train: createSharedDataset({ name: 'g', featureShape: [784], labelShape: [units], features: new Float32Array(16 * 784), labels: new Float32Array(16 * units) }) };
  const trainer = await Trainer.create(config, { data });
  try {
    await trainer.fit(1);
    const times: number[] = [];
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    for (let i = 0; i < repeats; i++) {
      const started = performance.now();
      const state = trainer.captureState();
      times.push((performance.now() - started) / 1000);
      rssPeak = Math.max(rssPeak, process.memoryUsage().rss);
      void state;
    }
    return { parameters: trainer.layout.length, stateBytes: trainer.layout.length * 4 * 3, medianPauseSeconds: median(times), rssGrowthBytes: rssPeak - rssBefore };
  } finally {
    await trainer.close();
  }
}

async function main(): Promise<void> {
  const options = new Command('bench-checkpoint')
    .option('--params <n>', 'parameters', '10000000')
    .option('--repeats <n>', 'timed repeats', '5')
    .option('--dir <dir>', 'folder on the disk to measure (default: a temp folder)')
    .parse(process.argv)
    .opts<{ params: string; repeats: string; dir?: string }>();
  const params = Number(options.params);
  const repeats = Number(options.repeats);
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'ringtrain-bench-ckpt-'));
  try {
    const io = await throughput(dir, params, repeats);
    const stop = await pause(params, repeats);
    const machine = `${availableParallelism()} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
    const ratio = (a: string, b: string) => (io[a]!.medianMBps / io[b]!.medianMBps).toFixed(2);
    process.stdout.write(
      [
        machine,
        `state: ${params.toLocaleString('en-US')} parameters + Adam m and v = ${((params * 12) / 1e6).toFixed(1)} MB, in ${dir}`,
        '',
        '| operation | median MB/s | best MB/s |',
        '|---|---|---|',
        ...Object.entries(io).map(([k, v]) => `| ${k} | ${v.medianMBps.toFixed(0)} | ${v.bestMBps.toFixed(0)} |`),
        '',
        `store write / plain write: ${ratio('storeWrite', 'plainWrite')}; store write / plain write + fsync: ${ratio('storeWrite', 'plainWriteFsync')}; store read / plain read: ${ratio('storeRead', 'plainRead')}`,
        `pause at a step boundary (state copied out of shared memory, ${stop.parameters.toLocaleString('en-US')} parameters): ${(stop.medianPauseSeconds * 1000).toFixed(1)} ms; peak RSS growth ${(stop.rssGrowthBytes / 1e6).toFixed(0)} MB (one copy = ${(stop.stateBytes / 1e6).toFixed(0)} MB)`,
        '',
      ].join('\n'),
    );
  } finally {
    if (!options.dir) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
