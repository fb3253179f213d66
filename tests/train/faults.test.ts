/** A replica that throws stops the run with its error, fast, and leaves no thread behind. */
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { TrainingAbortedError } from '../../src/errors.js';
import type { TrainingEvent } from '../../src/train/events.js';
import { Trainer } from '../../src/train/trainer.js';

const config = parseRunConfig({
  name: 'fault',
  model: { inputShape: [4], layers: [{ type: 'dense', units: 8, activation: 'relu' }, { type: 'dense', units: 1 }] },
  data: { source: 'linear' },
  loss: 'mse',
  optimizer: 'sgd',
  training: { epochs: 1, batchSize: 8, seed: 1 },
  // A long deadline: the run must stop through the abort word, not by waiting this out.
  parallel: { workers: 3, stepTimeoutMs: 60_000, maxRecoveries: 0 },
  backend: 'cpu',
  output: { metricsLog: false },
});

const data = {
  train: createSharedDataset({
    name: 'generated',
    featureShape: [4],
    labelShape: [1],
    features: Float32Array.from({ length: 4 * 400 }, (_, i) => Math.sin(i)),
    labels: Float32Array.from({ length: 400 }, (_, i) => Math.cos(i)),
  }),
};

/** Worker threads and message ports that keep this process alive. */
function liveThreadResources(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'MessagePort' || r === 'Worker').length;
}

describe('replica faults', () => {
  it('a replica that throws at step 3 stops the run with that error within the deadline', async () => {
    const before = liveThreadResources();
    const trainer = await Trainer.create(config, { data, faults: { rank: 1, throwAtStep: 3 } });
    expect(liveThreadResources()).toBeGreaterThan(before);
    const started = Date.now();
    const error = await trainer.fit().then(
      () => undefined,
      (e: unknown) => e,
    );
    const elapsed = Date.now() - started;
    expect(error).toBeInstanceOf(TrainingAbortedError);
    expect((error as Error).message).toBe('epoch 1 failed: replica 1: injected fault in replica 1 at step 3');
    expect(elapsed).toBeLessThan(10_000);
    // The other replicas were released from their waits and every thread is gone.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(liveThreadResources()).toBe(before);
    await expect(trainer.evaluate('train')).rejects.toThrow('cannot run evaluating on train data: the trainer is closed');
  });

  it('a replica stuck in an endless loop is declared stuck after the step timeout, and every thread ends', async () => {
    const before = liveThreadResources();
    const quick = { ...config, parallel: { ...config.parallel, stepTimeoutMs: 500 } };
    const trainer = await Trainer.create(quick, { data, faults: { rank: 2, hangAtStep: 4 } });
    const started = Date.now();
    await expect(trainer.fit()).rejects.toThrow('epoch 1 failed: replica 2: timed out after 500 ms waiting for replica 2, which made no progress');
    expect(Date.now() - started).toBeLessThan(5_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(liveThreadResources()).toBe(before);
  });

  it('with recoveries on, a run whose replica throws, exits or hangs ends with the weights of a run without faults', async () => {
    const recovering = { ...config, training: { ...config.training, epochs: 2 }, parallel: { ...config.parallel, maxRecoveries: 3, stepTimeoutMs: 1_000 } };
    const clean = await Trainer.create(recovering, { data });
    await clean.fit();
    const expected = clean.params();
    await clean.close();
    for (const fault of [{ rank: 1, throwAtStep: 40 }, { rank: 2, exitAtStep: 10 }, { rank: 0, hangAtStep: 30 }]) {
      const events: TrainingEvent[] = [];
      const trainer = await Trainer.create(recovering, { data, faults: fault, onEvent: (e) => events.push(e) });
      try {
        const epochs = await trainer.fit();
        expect(epochs).toHaveLength(2);
        expect(trainer.recoveries).toBe(1);
        const recovery = events.find((e) => e.type === 'recovery');
        expect(recovery).toMatchObject({ type: 'recovery', attempt: 1, of: 3 });
        expect(Buffer.from(trainer.params().buffer).equals(Buffer.from(expected.buffer))).toBe(true);
      } finally {
        await trainer.close();
      }
    }
  });

  it('a replica that cannot be started again leaves the run with fewer replicas and the same global batches (1e-5)', async () => {
    const recovering = { ...config, training: { ...config.training, epochs: 2 }, parallel: { ...config.parallel, maxRecoveries: 3 } };
    const clean = await Trainer.create(recovering, { data });
    await clean.fit();
    const expected = clean.params();
    await clean.close();
    const events: TrainingEvent[] = [];
    const trainer = await Trainer.create(recovering, { data, faults: { rank: 2, throwAtStep: 20, failRestart: true }, onEvent: (e) => events.push(e) });
    try {
      await trainer.fit();
      expect(trainer.workers).toBe(2);
      expect(events.find((e) => e.type === 'recovery')).toMatchObject({ attempt: 1, replicas: 2 });
      const params = trainer.params();
      let diff = 0;
      let norm = 0;
      params.forEach((v, i) => {
        diff += (v - expected[i]!) ** 2;
        norm += expected[i]! ** 2;
      });
      expect(Math.sqrt(diff / norm)).toBeLessThan(1e-5);
      expect(Math.sqrt(diff / norm)).toBeGreaterThan(0); // 2 replicas sum in another order than 3
    } finally {
      await trainer.close();
    }
  });

  it('a deterministic error (the same error at the same step after a restart) is recovered once, then stops the run naming replica, step and error', async () => {
    const flaky = { ...config, parallel: { ...config.parallel, maxRecoveries: 3 } };
    const events: TrainingEvent[] = [];
    const trainer = await Trainer.create(flaky, { data, faults: { rank: 2, throwAtGlobalStep: 7, persistent: true }, onEvent: (e) => events.push(e) });
    const error = await trainer.fit().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TrainingAbortedError);
    expect((error as Error).message).toBe(
      'epoch 1 failed: replica 2: injected fault in replica 2 at global step 7 (again at global step 8 after 1 recovery: a deterministic error, not retried)',
    );
    expect(error).toMatchObject({ replica: 2, globalStep: 7 });
    expect((error as Error).message).not.toContain('\n');
    expect(trainer.recoveries).toBe(1);
    expect(events.filter((e) => e.type === 'recovery')).toHaveLength(1);
  });

  it('the same run without a fault trains all 50 steps', async () => {
    const trainer = await Trainer.create(config, { data });
    try {
      const [epoch] = await trainer.fit();
      expect(epoch!.steps).toBe(50);
      expect(epoch!.samples).toBe(400);
      expect(Number.isFinite(epoch!.loss)).toBe(true);
    } finally {
      await trainer.close();
    }
  });
});
