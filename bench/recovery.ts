#!/usr/bin/env node
/**
 * Time from a replica's death to training continuing: mnist-mlp on generated data with 2
 * replicas, one fault injected per run (throw, process.exit, endless loop), compared with the
 * same run without a fault in the same process.
 *   npm run bench:recovery -- [--repeats 3] [--step-timeout-ms 2000]
 */
import { availableParallelism, cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { applyOverrides, loadRunConfig } from '../dist/config/load.js';
import { createSharedDataset } from '../dist/data/dataset.js';
import type { RecoveryEvent } from '../dist/train/events.js';
import { Trainer, type TrainerOptions } from '../dist/train/trainer.js';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const options = new Command('bench-recovery')
    .option('--repeats <n>', 'runs per fault', '3')
    .option('--step-timeout-ms <ms>', 'parallel.stepTimeoutMs (how long a hang takes to be seen)', '2000')
    .parse(process.argv)
    .opts<{ repeats: string; stepTimeoutMs: string }>();
  const base = applyOverrides(await loadRunConfig(fileURLToPath(new URL('../configs/mnist-mlp.json', import.meta.url))), { workers: 2, epochs: 1 });
  const config = {
    ...base,
    backend: 'wasm' as const,
    training: { ...base.training, validationSplit: 0 },
    parallel: { ...base.parallel, stepTimeoutMs: Number(options.stepTimeoutMs), maxRecoveries: 3 },
    output: { ...base.output, metricsLog: false },
  };
  const samples = 32 * 200;
  const data = {
    train: createSharedDataset({
      name: 'generated',
      featureShape: [28, 28, 1],
      labelShape: [],
      features: new Uint8Array(samples * 784).map((_, i) => (i * 31) % 256),
      labels: Float32Array.from({ length: samples }, (_, i) => i % 10),
      featureScale: 1 / 255,
    }),
  };
  const run = async (faults?: TrainerOptions['faults']) => {
    let recovery: RecoveryEvent | undefined;
    const trainer = await Trainer.create(config, { data, faults, onEvent: (e) => e.type === 'recovery' && (recovery = e) });
    const started = performance.now();
    await trainer.fit();
    const seconds = (performance.now() - started) / 1000;
    await trainer.close();
    return { seconds, recovery };
  };
  const rows: string[] = [];
  const clean: number[] = [];
  for (let i = 0; i < Number(options.repeats); i++) clean.push((await run()).seconds);
  rows.push(`| none | ${median(clean).toFixed(2)} | | |`);
  for (const [name, fault] of [
    ['throw', { rank: 1, throwAtStep: 100 }],
    ['process.exit', { rank: 1, exitAtStep: 100 }],
    ['endless loop', { rank: 1, hangAtStep: 100 }],
  ] as const) {
    const total: number[] = [];
    const restart: number[] = [];
    for (let i = 0; i < Number(options.repeats); i++) {
      const result = await run(fault);
      total.push(result.seconds);
      restart.push(result.recovery!.seconds);
    }
    rows.push(`| ${name} | ${median(total).toFixed(2)} | ${(median(total) - median(clean)).toFixed(2)} | ${median(restart).toFixed(2)} |`);
  }
  process.stdout.write(
    [
      `${availableParallelism()} cores, ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}; mnist-mlp, generated data, 200 steps at batch 32, 2 replicas, stepTimeoutMs ${options.stepTimeoutMs}`,
      '',
      '| fault at step 100 | epoch seconds (median) | extra seconds vs no fault | restart seconds (failure seen → new replicas ready) |',
      '|---|---|---|---|',
      ...rows,
      '',
    ].join('\n'),
  );
}

await main();
