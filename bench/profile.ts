#!/usr/bin/env node
/**
 * Per-kernel profile of one replica's forward and backward pass: the time each TF.js kernel
 * takes per training step, on generated data of the workload's shape. It tells where a step's
 * time goes (BENCHMARKS.md, "what limits us"). Usage:
 *   npm run bench:profile -- [--workload mnist-cnn] [--batch 32] [--backend wasm] [--steps 30] [--shapes]
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { activateBackend, type BackendName } from '../dist/backend/select-backend.js';
import { loadRunConfig } from '../dist/config/load.js';
import { buildModel } from '../dist/model/build-model.js';
import { mulberry32 } from '../dist/util/random.js';
import { gradientStep } from './gradient-step.js';

const root = fileURLToPath(new URL('..', import.meta.url));

interface KernelTotal {
  ms: number;
  calls: number;
}

async function main(): Promise<void> {
  const options = new Command('bench:profile')
    .option('--workload <name>', 'config name under configs/', 'mnist-cnn')
    .option('--batch <n>', 'samples per step (one replica)', Number, 32)
    .option('--backend <name>', 'wasm or cpu', 'wasm')
    .option('--steps <n>', 'steps of the warm-up, of each of 5 timed windows and of the profiled run', Number, 30)
    .option('--shapes', 'one row per kernel and input shapes instead of per kernel')
    .parse()
    .opts<{ workload: string; batch: number; backend: BackendName; steps: number; shapes?: boolean }>();

  const config = await loadRunConfig(join(root, 'configs', `${options.workload}.json`));
  if (!('inputShape' in config.model)) throw new Error(`${options.workload}: the profile needs a layer-list model`);
  await activateBackend(options.backend);
  const model = await buildModel(config.model, config.training.seed);
  const random = mulberry32(1);
  const featureShape = config.model.inputShape;
  const x = Float32Array.from({ length: options.batch * featureShape.reduce((a, b) => a * b, 1) }, () => random());
  const classes = (model.outputs[0]!.shape.at(-1) as number) ?? 10;
  const y = Float32Array.from({ length: options.batch }, () => Math.floor(random() * classes));

  // The same work as a replica's gradient() (gradient-step.ts).
  const step = gradientStep(model, config.loss, x, y, options.batch, featureShape);

  for (let i = 0; i < options.steps; i++) step();
  // Unprofiled step time: the median of five windows, since the machines are noisy; the spread
  // of single steps shows how much one replica's step varies (what a synchronous step waits for).
  const windows: number[] = [];
  const steps: number[] = [];
  for (let w = 0; w < 5; w++) {
    const started = performance.now();
    for (let i = 0; i < options.steps; i++) {
      const stepStarted = performance.now();
      step();
      steps.push(performance.now() - stepStarted);
    }
    windows.push((performance.now() - started) / options.steps);
  }
  const wallMs = windows.sort((a, b) => a - b)[2]!;
  steps.sort((a, b) => a - b);
  const percentile = (p: number) => steps[Math.round(p * (steps.length - 1))]!.toFixed(2);

  const totals = new Map<string, KernelTotal>();
  for (let i = 0; i < options.steps; i++) {
    const info = await tf.profile(() => step());
    for (const k of info.kernels) {
      const key = options.shapes ? `${k.name} ${k.inputShapes.map((s) => `[${s}]`).join(' ')}` : k.name;
      const total = totals.get(key) ?? { ms: 0, calls: 0 };
      total.ms += Number(k.kernelTimeMs);
      total.calls += 1;
      totals.set(key, total);
    }
  }
  const rows = [...totals.entries()].sort((a, b) => b[1].ms - a[1].ms);
  const kernelMs = rows.reduce((a, [, t]) => a + t.ms, 0) / options.steps;
  console.log(`${options.workload}, batch ${options.batch}, ${options.backend}, ${tf.getBackend()}: ${wallMs.toFixed(2)} ms per step unprofiled (median of 5 windows) ` +
    `(${Math.round((options.batch * 1000) / wallMs)} samples/s), ${kernelMs.toFixed(2)} ms of it in kernels`);
  console.log(`single steps (${steps.length}): p10 ${percentile(0.1)}, p50 ${percentile(0.5)}, p90 ${percentile(0.9)}, max ${percentile(1)} ms`);
  console.log('| kernel | calls/step | ms/step | share of kernel time |');
  console.log('|---|---|---|---|');
  for (const [name, t] of rows) {
    const ms = t.ms / options.steps;
    console.log(`| ${name} | ${t.calls / options.steps} | ${ms.toFixed(2)} | ${((100 * ms) / kernelMs).toFixed(1)} % |`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
