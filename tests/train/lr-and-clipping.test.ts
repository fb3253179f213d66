/**
 * Learning-rate schedules and gradient clipping in training: one replica equals plain
 * TensorFlow.js (tf.train.sgd with the schedule's rate set before each step, the gradient
 * clipped with TF.js ops by Keras's formula), N = 2 and 3 equal one within 1e-5, and a resumed
 * run continues the schedule and reduce-on-plateau's state bitwise.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { checkCheckpointContents } from '../../src/checkpoint/validate.js';
import { parseRunConfig } from '../../src/config/load.js';
import type { RunConfig } from '../../src/config/schema.js';
import { createSharedDataset, DatasetReader } from '../../src/data/dataset.js';
import { epochPermutation, globalBatchRange, stepsPerEpoch } from '../../src/data/sampler.js';
import { buildModel } from '../../src/model/build-model.js';
import { ParamLayout } from '../../src/model/param-layout.js';
import type { ProgressEvent } from '../../src/train/events.js';
import type { ReduceScatterKind } from '../../src/train/replica-protocol.js';
import type { TrainingCallback } from '../../src/train/callbacks/callback.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';
import { bitwiseEqual, relativeDifference } from '../helpers/equivalence.js';

const random = mulberry32(7);
// 60 samples at batch 8: 8 steps per epoch, the last one uneven (4 samples).
const data = {
  train: createSharedDataset({
    name: 'generated',
    featureShape: [4],
    labelShape: [2],
    features: Float32Array.from({ length: 60 * 4 }, () => random() * 4 - 2),
    labels: Float32Array.from({ length: 60 * 2 }, () => random() * 6 - 3),
  }),
};

/** The exponential decay the tests use: 0.2 halved every 4 updates. */
const decay = { name: 'exponentialDecay', initialLearningRate: 0.2, decaySteps: 4, decayRate: 0.5 };
const decayAt = (step: number) => Math.fround(0.2 * 0.5 ** (step / 4));

function config(workers: number, optimizer: Record<string, unknown>, training: Record<string, unknown> = {}, dir?: string): RunConfig {
  return parseRunConfig({
    name: 'lr-and-clipping',
    model: { inputShape: [4], layers: [{ type: 'dense', units: 8, activation: 'tanh' }, { type: 'dense', units: 2 }] },
    data: 'xor',
    loss: 'meanSquaredError',
    optimizer: { name: 'sgd', learningRate: decay, ...optimizer },
    training: { epochs: 2, batchSize: 8, seed: 11, ...training },
    parallel: { workers },
    backend: 'cpu',
    output: { dir: dir ?? mkdtempSync(join(tmpdir(), 'ringtrain-lr-')), metricsLog: false },
    checkpoint: { everyEpoch: dir !== undefined, everySteps: dir !== undefined ? 5 : 0, keepLast: 100 },
  });
}

async function train(cfg: RunConfig, options: { resume?: string; reduceScatter?: ReduceScatterKind } = {}) {
  const resume = options.resume ? { file: options.resume, state: await readCheckpointFile(options.resume) } : undefined;
  const progress: ProgressEvent[] = [];
  const trainer = await Trainer.create(cfg, { data, checkpoints: cfg.checkpoint.everyEpoch, resume, reduceScatter: options.reduceScatter, progressIntervalMs: 20, onEvent: (e) => e.type === 'progress' && progress.push(e) });
  try {
    await trainer.fit();
    return { params: trainer.params(), history: trainer.history, written: [...trainer.checkpointsWritten], state: trainer.captureState(), progress };
  } finally {
    await trainer.close();
  }
}

/** Trains until a callback stops the run after `step` steps of epoch `epoch` (from 0); the checkpoint the stop writes. */
async function checkpointWhereStopped(cfg: RunConfig, epoch: number, step: number): Promise<string> {
  let current = -1;
  const stopper: TrainingCallback = {
    onEpochBegin: (e) => void (current = e),
    onBatchEnd: (batch, _logs, run) => void (current === epoch && batch + 1 === step && run.stopTraining(`stop at epoch ${epoch + 1}, step ${step}`)),
  };
  const trainer = await Trainer.create(cfg, { data, checkpoints: true, callbacks: [stopper] });
  try {
    await trainer.fit();
    return trainer.checkpointsWritten.at(-1)!;
  } finally {
    await trainer.close();
  }
}

type Clip = (grads: tf.Tensor[]) => tf.Tensor[];
const keras: Record<string, (c: number) => Clip> = {
  clipNorm: (c) => (grads) => grads.map((g) => tf.div(tf.mul(g, c), tf.maximum(tf.sqrt(tf.sum(tf.square(g))), c))),
  globalClipNorm: (c) => (grads) => {
    const norm = tf.sqrt(tf.addN(grads.map((g) => tf.sum(tf.square(g)))));
    const scale = tf.mul(c, tf.minimum(tf.div(1, norm), 1 / c));
    return grads.map((g) => tf.mul(g, scale));
  },
  clipValue: (c) => (grads) => grads.map((g) => tf.clipByValue(g, -c, c)),
};

/** Plain TF.js on the cpu backend: the same global batches, mean loss, clipped gradient, the schedule's rate. */
async function trainPlain(cfg: RunConfig, clip: Clip | undefined): Promise<Float32Array> {
  await tf.setBackend('cpu');
  const model = await buildModel(cfg.model, cfg.training.seed);
  const layout = ParamLayout.fromModel(model);
  const variables = model.trainableWeights.map((w) => w.read() as tf.Variable);
  const sgd = tf.train.sgd(decayAt(0));
  const reader = new DatasetReader(data.train);
  const steps = stepsPerEpoch(data.train.size, cfg.training.batchSize);
  for (let epoch = 0, update = 0; epoch < cfg.training.epochs; epoch++) {
    const order = epochPermutation(data.train.size, cfg.training.seed, epoch);
    for (let step = 0; step < steps; step++, update++) {
      const [from, to] = globalBatchRange(data.train.size, cfg.training.batchSize, step);
      const x = new Float32Array((to - from) * 4);
      const y = new Float32Array((to - from) * 2);
      reader.gather(order, from, to, x, y);
      tf.tidy(() => {
        const { grads } = tf.variableGrads(() => tf.mean(tf.square(tf.sub(model.apply(tf.tensor(x, [to - from, 4])) as tf.Tensor, tf.tensor(y, [to - from, 2])))) as tf.Scalar, variables);
        const list = variables.map((v) => grads[v.name]!);
        const clipped = clip ? clip(list) : list;
        sgd.setLearningRate(decayAt(update));
        sgd.applyGradients(Object.fromEntries(variables.map((v, i) => [v.name, clipped[i]!])));
      });
    }
  }
  const params = new Float32Array(layout.length);
  layout.readFrom(model, params);
  model.dispose();
  return params;
}

describe('learning-rate schedules and gradient clipping in training', () => {
  it.each([
    // Each trainer costs seconds of thread start-up: every count meets the same reference.
    // The direct reduce-scatter leaves the averaged chunks where the ring does: the norm reads them alike.
    ['clipNorm', 0.3, [1, 3], 'ring'],
    ['globalClipNorm', 0.5, [2], 'direct'],
    ['clipValue', 0.05, [2], 'ring'],
  ] as const)('%s %d with a schedule: equals plain TF.js and N replicas equal one', async (option, value, counts, reduceScatter) => {
    const reference = await trainPlain(config(1, {}), keras[option]!(value));
    // The clipping is active: the unclipped run ends elsewhere.
    expect(relativeDifference(await trainPlain(config(1, {}), undefined), reference)).toBeGreaterThan(1e-3);
    let first: Float32Array | undefined;
    for (const workers of counts) {
      const { params, history, progress } = await train(config(workers, { [option]: value }), { reduceScatter });
      expect(relativeDifference(params, reference), `${workers} replica(s)`).toBeLessThan(1e-5);
      if (first) expect(relativeDifference(params, first)).toBeLessThan(1e-5);
      first ??= params;
      // The epoch records carry the rate after 8 and 16 updates; progress the rate of the step
      // running (of the last step once `step` finished steps reach the end).
      expect(history.map((e) => e.lr)).toEqual([decayAt(8), decayAt(16)]);
      expect(progress.filter((p) => p.step === p.steps).length).toBeGreaterThanOrEqual(2);
      for (const p of progress) expect(p.lr, `epoch ${p.epoch} step ${p.step}`).toBe(decayAt((p.epoch - 1) * 8 + Math.min(p.step, p.steps - 1)));
    }
  });

  it('a resumed run continues the schedule and reduce-on-plateau exactly; the checkpoint keeps the rate and the plateau state', async () => {
    // minDelta 10: only the first epoch improves, so from the second on every epoch reduces (patience 1).
    const training = { epochs: 4, reduceLrOnPlateau: { monitor: 'loss', factor: 0.5, patience: 1, minDelta: 10, minLr: 0.004 } };
    const optimizer = { learningRate: { name: 'cosineDecay', initialLearningRate: 0, warmupTarget: 0.1, warmupSteps: 6, decaySteps: 40 }, globalClipNorm: 1 };
    const cosine = (step: number) => Math.fround(step < 6 ? (0.1 * step) / 6 : 0.1 * 0.5 * (1 + Math.cos((Math.PI * (step - 6)) / 40)));
    const full = await train(config(1, optimizer, training, mkdtempSync(join(tmpdir(), 'ringtrain-lr-'))));
    // lr at each epoch's end: before that epoch's reduction; scales 1, 1, 0.5, 0.25.
    expect(full.history.map((e) => e.lr)).toEqual([cosine(8), cosine(16), Math.fround(cosine(24) * 0.5), Math.fround(Math.max(cosine(32) * 0.25, 0.004))]);
    expect(full.state.learningRate).toEqual({ current: Math.fround(Math.max(cosine(32) * 0.125, 0.004)), plateau: { best: full.history[0]!.loss, wait: 0, cooldownCounter: 0, scale: 0.125 } });

    const states = await Promise.all(full.written.map(readCheckpointFile));
    const at = (epoch: number, step: number) => full.written[states.findIndex((s) => s.position.epoch === epoch && s.position.stepInEpoch === step)]!;
    const afterEpoch2 = await readCheckpointFile(at(2, 0));
    expect(afterEpoch2.learningRate).toEqual({ current: Math.fround(cosine(16) * 0.5), plateau: { best: full.history[0]!.loss, wait: 0, cooldownCounter: 0, scale: 0.5 } });
    // From inside an epoch (update 20 = epoch 3, step 4), after a reduction. The full run's
    // periodic checkpoint there may have been replaced by a newer state under load (the queue
    // keeps at most one waiting); a run that a callback stops there writes one that is kept.
    const midEpoch = await checkpointWhereStopped(config(1, optimizer, training, mkdtempSync(join(tmpdir(), 'ringtrain-lr-'))), 2, 4);
    expect((await readCheckpointFile(midEpoch)).position).toMatchObject({ epoch: 2, stepInEpoch: 4, globalStep: 20 });
    for (const file of [midEpoch]) {
      const resumed = await train(config(1, optimizer, training, mkdtempSync(join(tmpdir(), 'ringtrain-lr-'))), { resume: file });
      expect(bitwiseEqual(resumed.params, full.params), file).toBe(true);
      // A checkpoint keeps the last epoch record (epoch 2's), then the resumed run adds epochs 3 and 4.
      expect(resumed.history.map((e) => e.lr)).toEqual(full.history.slice(1).map((e) => e.lr));
      expect(resumed.state.learningRate).toEqual(full.state.learningRate);
    }

    // Read back, the rate is checked against the config's schedule and the plateau state.
    const tampered = { ...afterEpoch2, learningRate: { ...afterEpoch2.learningRate!, current: 0.05 } };
    expect(() => checkCheckpointContents(tampered, 'x.rtckpt')).toThrow(
      `x.rtckpt: invalid contents: learningRate.current: expected ${Math.fround(cosine(16) * 0.5)} (the config's learning rate at position.globalStep), found 0.05`,
    );
    // A checkpoint from before schedules (no learningRate) still passes.
    const { learningRate: _, ...old } = afterEpoch2;
    expect(checkCheckpointContents(old, 'old.rtckpt')).toBe(old);
    // Another schedule is refused on resume.
    const other = config(2, { ...optimizer, learningRate: { ...optimizer.learningRate, decaySteps: 50 } }, training);
    await expect(Trainer.create(other, { data, resume: { file: at(2, 0), state: afterEpoch2 } })).rejects.toThrow('the learning-rate schedule differs');
  });
});
