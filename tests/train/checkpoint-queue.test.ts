/**
 * Backpressure on checkpoint writes: a checkpoint every step of a 200k-parameter model (2.3 MB
 * per state with Adam's moments) comes much faster than the disk writes them. At most one
 * write is in flight and one state waits; newer states replace waiting periodic ones; the
 * epoch-end (and final) checkpoint is always written. So memory stays flat and `latest` on
 * disk is the last step when fit() returns. (Before, every state was queued: this run grew
 * by hundreds of MB and the writes trailed training by seconds.)
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { parseCheckpointFileName } from '../../src/checkpoint/store.js';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';

const SAMPLES = 2400;
const BATCH = 16;
const STEPS = SAMPLES / BATCH;
const random = mulberry32(5);
const data = {
  train: createSharedDataset({
    name: 'generated',
    featureShape: [784],
    labelShape: [],
    features: new Uint8Array(SAMPLES * 784).map(() => Math.floor(random() * 256)),
    labels: Float32Array.from({ length: SAMPLES }, () => Math.floor(random() * 10)),
    featureScale: 1 / 255,
  }),
};

it('checkpoint every step: at most 2 states alive, RSS flat, latest on disk is the last step at the end', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ringtrain-queue-'));
  const config = parseRunConfig({
    name: 'queue',
    model: { inputShape: [784], layers: [{ type: 'dense', units: 256, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }] },
    data: 'embedded-mnist',
    loss: 'sparseCategoricalCrossentropy',
    optimizer: 'adam',
    training: { epochs: 2, batchSize: BATCH, validationSplit: 0 },
    parallel: { workers: 1 },
    output: { dir, metricsLog: false },
    checkpoint: { everySteps: 1, keepLast: 2 },
  });
  const trainer = await Trainer.create(config, { data, checkpoints: true });
  try {
    const stateBytes = trainer.layout.length * 4 * 3; // params and Adam's two moments
    expect(stateBytes).toBeGreaterThan(2_000_000);
    // The first epoch warms up (the replicas' heaps grow by tens of MB whether or not checkpoints
    // are written); the second is measured.
    await trainer.fit(1);
    const before = process.memoryUsage().rss;
    let peak = before;
    // How far `latest` on disk trails the step the trainer is at, in steps.
    const latest = join(dir, 'checkpoints', 'latest');
    const onDisk = () => parseCheckpointFileName(readFileSync(latest, 'utf8').trim())!.globalStep;
    let lag = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
      lag = Math.max(lag, trainer.position.epoch * STEPS + trainer.position.stepInEpoch - onDisk());
    }, 10);
    const started = performance.now();
    try {
      await trainer.fit();
    } finally {
      clearInterval(sampler);
    }
    const seconds = (performance.now() - started) / 1000;
    const stats = trainer.checkpointStats;
    const growthMb = (peak - before) / 2 ** 20;
    console.log(
      `checkpoint every step, ${STEPS} steps (the 2nd epoch) in ${seconds.toFixed(1)} s: ${stats.written} written, ${stats.skipped} skipped, ` +
        `at most ${stats.maxStatesAlive} states alive, latest on disk at most ${lag} steps behind, RSS +${growthMb.toFixed(0)} MB (one state: ${(stateBytes / 2 ** 20).toFixed(1)} MB)`,
    );
    // Every step asked for one (periodic ones, then the epoch end): each was written or replaced by a newer one.
    expect(stats.written + stats.skipped).toBe(2 * STEPS);
    expect(stats.failed).toBe(0);
    expect(stats.maxStatesAlive).toBeLessThanOrEqual(2);
    // Two writes' worth of steps at most (a few here; generous for a loaded machine). Before,
    // the writes fell ever further behind (122 steps here, and the run took 3x as long).
    expect(lag).toBeLessThan(STEPS / 3);
    // The epoch-end checkpoint is never dropped, and fit() returns once it is on disk.
    expect(readFileSync(join(dir, 'checkpoints', 'latest'), 'utf8').trim()).toBe(`ckpt-e0002-s000${2 * STEPS}.rtckpt`);
    expect((await readCheckpointFile(join(dir, 'checkpoints', `ckpt-e0002-s000${2 * STEPS}.rtckpt`))).position.globalStep).toBe(2 * STEPS);
    // Queued states alone would be up to STEPS x 2.3 MB; allow 40 states' worth (garbage the GC has not collected yet).
    expect(peak - before).toBeLessThan(40 * stateBytes);
  } finally {
    await trainer.close();
  }
});
