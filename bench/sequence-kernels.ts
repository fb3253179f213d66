#!/usr/bin/env node
/**
 * What this project's sequence-model kernels (wasm SplitV and LogicalAnd) save on a sequence
 * model's training step: one replica's forward + backward of a configs/ workload, timed in
 * alternating windows with the project's kernels and with the built-in ones restored, so both
 * see the same machine load. Usage:
 *   npm run bench:sequence -- [--workload majority-lstm] [--batch 32] [--steps 10] [--rounds 5]
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import * as tf from '@tensorflow/tfjs';
import { activateBackend } from '../dist/backend/select-backend.js';
import { builtinKernel } from '../dist/backend/wasm-kernels/util.js';
import { loadRunConfig } from '../dist/config/load.js';
import { buildModel } from '../dist/model/build-model.js';
import { mulberry32 } from '../dist/util/random.js';
import { gradientStep } from './gradient-step.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const KERNELS = [tf.SplitV, tf.LogicalAnd];

async function main(): Promise<void> {
  const options = new Command('bench:sequence')
    .option('--workload <name>', 'config name under configs/', 'majority-lstm')
    .option('--batch <n>', 'samples per step (one replica)', Number, 32)
    .option('--steps <n>', 'steps per window', Number, 10)
    .option('--rounds <n>', 'pairs of windows (ours, built-in)', Number, 5)
    .parse()
    .opts<{ workload: string; batch: number; steps: number; rounds: number }>();
  const config = await loadRunConfig(join(root, 'configs', `${options.workload}.json`));
  if (!('inputShape' in config.model)) throw new Error(`${options.workload}: needs a layer-list model`);
  await activateBackend('wasm');
  const ours = new Map(KERNELS.map((name) => [name, tf.getKernel(name, 'wasm')!]));
  const builtins = new Map(KERNELS.map((name) => [name, builtinKernel(name)]));
  const use = (which: 'ours' | 'builtin') => {
    for (const name of KERNELS) {
      tf.unregisterKernel(name, 'wasm');
      tf.registerKernel(which === 'ours' ? ours.get(name)! : { kernelName: name, backendName: 'wasm', kernelFunc: builtins.get(name)! });
    }
  };
  const model = await buildModel(config.model, config.training.seed);
  const random = mulberry32(1);
  const featureShape = config.model.inputShape;
  // Token ids for the sequence workloads: integers below the smallest vocabulary (10).
  const x = Float32Array.from({ length: options.batch * featureShape.reduce((a, b) => a * b, 1) }, () => Math.floor(random() * 10));
  const y = Float32Array.from({ length: options.batch }, () => Math.floor(random() * 10));
  const step = gradientStep(model, config.loss, x, y, options.batch, featureShape);
  const times: Record<'ours' | 'builtin', number[]> = { ours: [], builtin: [] };
  for (const which of ['ours', 'builtin'] as const) {
    use(which);
    for (let i = 0; i < options.steps; i++) step();
  }
  for (let r = 0; r < options.rounds; r++) {
    for (const which of ['ours', 'builtin'] as const) {
      use(which);
      const started = performance.now();
      for (let i = 0; i < options.steps; i++) step();
      times[which].push((performance.now() - started) / options.steps);
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!;

  // The kernels alone, on the LSTM's shapes (batch 32, 64 units), in the same alternation.
  const gates = tf.randomUniform([options.batch, 256]);
  const [p, q] = [tf.randomUniform([options.batch, 64]).greater(0.5), tf.randomUniform([options.batch, 64]).greater(0.5)];
  const kernelCalls: Record<string, () => void> = {
    'SplitV [32,256] in 4': () => tf.dispose(tf.split(gates, 4, 1)),
    'LogicalAnd [32,64]': () => tf.dispose(tf.logicalAnd(p, q)),
  };
  for (const [name, call] of Object.entries(kernelCalls)) {
    const us: Record<'ours' | 'builtin', number[]> = { ours: [], builtin: [] };
    for (let r = 0; r < 2 * options.rounds; r++) {
      for (const which of ['ours', 'builtin'] as const) {
        use(which);
        const started = performance.now();
        for (let i = 0; i < 200; i++) call();
        us[which].push(((performance.now() - started) / 200) * 1000);
      }
    }
    const [a, b] = [Math.min(...us.ours), Math.min(...us.builtin)];
    console.log(`${name}: ${a.toFixed(1)} us with this project's kernel, ${b.toFixed(1)} us built-in (fastest of ${2 * options.rounds} alternating windows of 200 calls): ${(b / a).toFixed(1)}x`);
  }
  // The fastest window is the one least disturbed by other processes; the median is shown too.
  for (const [what, pick] of [['median', median], ['fastest', (v: number[]) => Math.min(...v)]] as const) {
    const [a, b] = [pick(times.ours), pick(times.builtin)];
    console.log(`${options.workload}, batch ${options.batch}, wasm, ${what} of ${options.rounds} alternating windows of ${options.steps} steps: ` +
      `${a.toFixed(1)} ms per step with this project's ${KERNELS.join(' and ')}, ${b.toFixed(1)} ms with the built-ins: ${(b / a).toFixed(2)}x`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
