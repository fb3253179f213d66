#!/usr/bin/env node
/**
 * Checkpoint figures.
 *
 * Overhead (the default): what checkpoints cost a training run, as a share of its time, for
 * xor (1000 epochs of one step: the worst case for per-epoch checkpoints) and mnist-cnn
 * (generated data of MNIST's shape). Each workload is trained with checkpoints as configured
 * by default (time-based, every 60 s, plus the end of the run) and without checkpoints, in
 * pairs of alternating order in one process, so that the machine's load falls on both alike;
 * then with a checkpoint at every epoch (the old default); after an untimed warm-up run. Reported: the median fit() wall and
 * CPU time of each, the overhead against the runs without checkpoints, and the time fit()
 * itself spent on checkpoints (capturing states, waiting for writes), which load blurs least.
 *   npm run bench:checkpoint -- [--repeats 3] [--every-epoch-repeats 2] [--cnn-samples 60000] [--cnn-epochs 1] [--workloads xor,mnist-cnn]
 *
 * I/O (--io): write and read throughput of a 10-million-parameter model with Adam state
 * against plain fs writes and reads of the same bytes on the same disk, in one run; and the
 * pause a checkpoint causes in training (copying the state out at a step boundary).
 *   npm run bench:checkpoint -- --io [--params 10000000] [--repeats 5] [--dir DIR]
 */
import { execSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { open, readFile, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { readCheckpointFile } from '../dist/checkpoint/format.js';
import type { CheckpointState } from '../dist/checkpoint/state.js';
import { CheckpointStore } from '../dist/checkpoint/store.js';
import { loadRunConfig, parseRunConfig } from '../dist/config/load.js';
import type { RunConfig } from '../dist/config/schema.js';
import { createSharedDataset } from '../dist/data/dataset.js';
import type { LoadedData } from '../dist/data/load-data.js';
import { Trainer } from '../dist/train/trainer.js';
import { mulberry32 } from '../dist/util/random.js';
import { VERSION } from '../dist/version.js';

const root = fileURLToPath(new URL('..', import.meta.url));

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


// ---------------------------------------------------------------------------------------------
// Overhead of checkpoints on a training run
// ---------------------------------------------------------------------------------------------

type Mode = 'default' | 'off' | 'everyEpoch';
const MODES: Mode[] = ['default', 'off', 'everyEpoch'];

interface RunFigures {
  fitSeconds: number;
  /** CPU time of the whole process (every thread) during fit(): less blurred by the machine's load than wall time. */
  cpuSeconds: number;
  checkpointSeconds: number;
  written: number;
  lastFileBytes: number;
}

/** MNIST-shaped random images and labels (the figures are about time, not accuracy). */
function generatedImages(samples: number): LoadedData {
  const random = mulberry32(1);
  const features = new Uint8Array(samples * 784).map(() => Math.floor(random() * 256));
  const labels = Float32Array.from({ length: samples }, () => Math.floor(random() * 10));
  return { train: createSharedDataset({ name: 'generated', featureShape: [28, 28, 1], labelShape: [], features, labels, featureScale: 1 / 255 }) };
}

async function workloadRun(workload: string, options: { cnnEpochs: number }): Promise<RunConfig> {
  const config = await loadRunConfig(join(root, 'configs', `${workload}.json`));
  const epochs = workload === 'mnist-cnn' ? options.cnnEpochs : config.training.epochs;
  return { ...config, training: { ...config.training, epochs, validationSplit: 0, validateOnTest: false }, output: { ...config.output, metricsLog: false } };
}

async function timedRun(config: RunConfig, mode: Mode, data: LoadedData | undefined, dir: string): Promise<RunFigures> {
  const checkpoint =
    mode === 'everyEpoch' ? { ...config.checkpoint, everyEpoch: true, everySeconds: 0 } : { ...config.checkpoint };
  const trainer = await Trainer.create({ ...config, checkpoint: { ...checkpoint, dir: join(dir, 'checkpoints') } }, { data, checkpoints: mode !== 'off' });
  try {
    const started = performance.now();
    const cpu = process.cpuUsage();
    await trainer.fit();
    const fitSeconds = (performance.now() - started) / 1000;
    const used = process.cpuUsage(cpu);
    const cpuSeconds = (used.user + used.system) / 1e6;
    const last = trainer.checkpointsWritten.at(-1);
    return { fitSeconds, cpuSeconds, checkpointSeconds: trainer.checkpointSeconds, written: trainer.checkpointsWritten.length, lastFileBytes: last ? statSync(last).size : 0 };
  } finally {
    await trainer.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function overhead(workloads: string[], repeats: number, everyEpochRepeats: number, cnnSamples: number, cnnEpochs: number): Promise<string[]> {
  const lines = [
    '| workload | checkpoints | fit() s median | min | max | overhead vs off (medians) | CPU s median | CPU vs off | fit() time spent on checkpoints | checkpoints written | last file |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const workload of workloads) {
    const config = await workloadRun(workload, { cnnEpochs });
    const data = workload === 'mnist-cnn' ? generatedImages(cnnSamples) : undefined;
    const runs: Record<Mode, RunFigures[]> = { default: [], off: [], everyEpoch: [] };
    // An untimed warm-up first: the first run of a process pays for compiling the backend's
    // WebAssembly (cached for the process's later runs), seconds of CPU on this machine.
    const warmUp = await Trainer.create(config, { data: workload === 'mnist-cnn' ? generatedImages(640) : undefined });
    try {
      await warmUp.fit(Math.min(20, config.training.epochs));
    } finally {
      await warmUp.close();
    }
    // Default and off in pairs, in alternating order; the every-epoch runs after all of them,
    // so that none of the pairs runs right after one (their thousand writes leave work behind
    // for whatever runs next: a plain rotation put "default" after "everyEpoch" every time).
    const order: Mode[] = [];
    for (let r = 0; r < repeats; r++) order.push(...((r % 2 === 0 ? ['default', 'off'] : ['off', 'default']) as Mode[]));
    for (let r = 0; r < Math.min(repeats, everyEpochRepeats); r++) order.push('everyEpoch');
    for (const mode of order) {
      const figures = await timedRun(config, mode, data, mkdtempSync(join(tmpdir(), 'ringtrain-bench-ckpt-run-')));
      runs[mode].push(figures);
      process.stderr.write(`${workload} ${mode}: fit ${figures.fitSeconds.toFixed(2)} s, CPU ${figures.cpuSeconds.toFixed(2)} s, on checkpoints ${figures.checkpointSeconds.toFixed(3)} s, ${figures.written} written, load ${loadavg()[0]!.toFixed(2)}\n`);
    }
    const off = median(runs.off.map((f) => f.fitSeconds));
    const offCpu = median(runs.off.map((f) => f.cpuSeconds));
    for (const mode of MODES.filter((m) => runs[m].length > 0)) {
      const fits = runs[mode].map((f) => f.fitSeconds);
      const m = median(fits);
      const spent = median(runs[mode].map((f) => f.checkpointSeconds / f.fitSeconds));
      const share = mode === 'off' ? '' : `${(((m - off) / off) * 100).toFixed(1)} %`;
      const cpu = median(runs[mode].map((f) => f.cpuSeconds));
      const cpuShare = mode === 'off' ? '' : `${(((cpu - offCpu) / offCpu) * 100).toFixed(1)} %`;
      const last = runs[mode].at(-1)!;
      lines.push(
        `| ${workload} | ${mode === 'default' ? 'default (every 60 s + end)' : mode === 'off' ? 'off' : 'every epoch'} | ${m.toFixed(2)} | ${Math.min(...fits).toFixed(2)} | ${Math.max(...fits).toFixed(2)} | ${share} | ${cpu.toFixed(2)} | ${cpuShare} | ${mode === 'off' ? '' : `${(spent * 100).toFixed(2)} %`} | ${last.written} | ${mode === 'off' ? '' : `${(last.lastFileBytes / 1000).toFixed(1)} kB`} |`,
      );
    }
  }
  return lines;
}

async function main(): Promise<void> {
  const options = new Command('bench-checkpoint')
    .option('--io', 'also measure write and read throughput and the pause of a large state')
    .option('--no-overhead', 'skip the overhead on training runs')
    .option('--workloads <names>', 'configs whose runs are timed', 'xor,mnist-cnn')
    .option('--cnn-samples <n>', 'generated images for mnist-cnn', '60000')
    .option('--cnn-epochs <n>', 'epochs of mnist-cnn', '1')
    .option('--params <n>', 'parameters (--io)', '10000000')
    .option('--repeats <n>', 'timed repeats', '3')
    .option('--every-epoch-repeats <n>', 'timed repeats of the every-epoch runs (at most --repeats)', '2')
    .option('--dir <dir>', 'folder on the disk to measure (--io; default: a temp folder)')
    .parse(process.argv)
    .opts<{ io?: boolean; overhead: boolean; everyEpochRepeats: string; workloads: string; cnnSamples: string; cnnEpochs: string; params: string; repeats: string; dir?: string }>();
  const repeats = Number(options.repeats);
  const machine = `${availableParallelism()} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
  const out: string[] = [machine, `load average at start: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`, ''];
  if (options.overhead) {
    out.push(...(await overhead(options.workloads.split(','), repeats, Number(options.everyEpochRepeats), Number(options.cnnSamples), Number(options.cnnEpochs))), '');
    out.push(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(', ')}`, '');
  }
  if (options.io) out.push(...(await io(Number(options.params), repeats, options.dir)));
  process.stdout.write(out.join('\n'));
}

async function io(params: number, repeats: number, dirOption: string | undefined): Promise<string[]> {
  const dir = dirOption ?? mkdtempSync(join(tmpdir(), 'ringtrain-bench-ckpt-'));
  try {
    const figures = await throughput(dir, params, repeats);
    const stop = await pause(params, repeats);
    const ratio = (a: string, b: string) => (figures[a]!.medianMBps / figures[b]!.medianMBps).toFixed(2);
    return [
      `state: ${params.toLocaleString('en-US')} parameters + Adam m and v = ${((params * 12) / 1e6).toFixed(1)} MB, in ${dir}`,
      '',
      '| operation | median MB/s | best MB/s |',
      '|---|---|---|',
      ...Object.entries(figures).map(([k, v]) => `| ${k} | ${v.medianMBps.toFixed(0)} | ${v.bestMBps.toFixed(0)} |`),
      '',
      `store write / plain write: ${ratio('storeWrite', 'plainWrite')}; store write / plain write + fsync: ${ratio('storeWrite', 'plainWriteFsync')}; store read / plain read: ${ratio('storeRead', 'plainRead')}`,
      `pause at a step boundary (state copied out of shared memory, ${stop.parameters.toLocaleString('en-US')} parameters): ${(stop.medianPauseSeconds * 1000).toFixed(1)} ms; peak RSS growth ${(stop.rssGrowthBytes / 1e6).toFixed(0)} MB (one copy = ${(stop.stateBytes / 1e6).toFixed(0)} MB)`,
      '',
    ];
  } finally {
    if (!dirOption) rmSync(dir, { recursive: true, force: true });
  }
}

await main();
