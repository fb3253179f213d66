/**
 * The callback API on a real run: hooks in order with logs that agree with the epoch records, a
 * callback's stop pausing fit() at a step boundary (a later fit() ends as the uninterrupted
 * run), and early stopping (training.earlyStopping) stopping, restoring its best weights and
 * continuing exactly from its checkpoints.
 */
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { parseRunConfig } from '../../src/config/load.js';
import type { Logs, TrainingCallback } from '../../src/train/callbacks/callback.js';
import { epochLogs } from '../../src/train/callbacks/callback-list.js';
import type { WorldSpec } from '../../src/launch/world.js';
import { Trainer } from '../../src/train/trainer.js';
import { freePort } from '../helpers/processes.js';

const bytes = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

function config(dir: string, extra: { training?: object; checkpoint?: object } = {}) {
  return parseRunConfig({
    name: 'callbacks',
    model: { inputShape: [1], layers: [{ type: 'dense', units: 4, activation: 'tanh' }, { type: 'dense', units: 1 }] },
    data: { source: 'linear', samples: 50 },
    loss: 'meanSquaredError',
    metrics: ['meanAbsoluteError'],
    optimizer: { name: 'sgd', learningRate: 0.05 },
    // 40 training samples at batch 10: 4 steps per epoch; segments cut every 3 updates.
    training: { epochs: 3, batchSize: 10, validationSplit: 0.2, ...extra.training },
    parallel: { workers: 1 },
    backend: 'cpu',
    output: { dir, metricsLog: false },
    checkpoint: { everySteps: 3, everySeconds: 0, keepLast: 100, ...extra.checkpoint },
  });
}

const tmp = (name: string) => mkdtempSync(join(tmpdir(), `ringtrain-${name}-`));

describe('callbacks', () => {
  it('are called in order with logs that agree with the epoch records; a stop from onBatchEnd pauses fit(), and the next fit() ends as the uninterrupted run', async () => {
    const calls: [string, number | undefined, Logs][] = [];
    let stopAt: number | undefined = 1; // the first segment of the second epoch
    const recorder: TrainingCallback = {
      onTrainBegin: (logs) => void calls.push(['trainBegin', undefined, logs]),
      onEpochBegin: (epoch, logs) => void calls.push(['epochBegin', epoch, logs]),
      onBatchEnd: (batch, logs, run) => {
        calls.push(['batchEnd', batch, logs]);
        const epochsDone = calls.filter((c) => c[0] === 'epochEnd').length;
        if (stopAt !== undefined && epochsDone === stopAt) {
          stopAt = undefined;
          run.stopTraining('enough for now');
        }
      },
      onEpochEnd: (epoch, logs) => void calls.push(['epochEnd', epoch, logs]),
      onTrainEnd: (logs) => void calls.push(['trainEnd', undefined, logs]),
    };
    const uninterrupted = await Trainer.create(config(tmp('cb-whole')));
    let expected: Float32Array;
    try {
      await uninterrupted.fit();
      expected = uninterrupted.params();
    } finally {
      await uninterrupted.close();
    }

    const trainer = await Trainer.create(config(tmp('cb')), { callbacks: [recorder] });
    try {
      expect(await trainer.fit()).toHaveLength(1);
      expect(trainer.stopReason).toBe('enough for now');
      expect(trainer.stopped).toBe(false); // not a stop(): no resume advice, the run may evaluate
      // Epoch 1: updates 0-2 and 3; epoch 2's first segment: updates 4-5 (cut at 6).
      expect(trainer.position).toEqual({ epoch: 1, stepInEpoch: 2 });
      expect(calls.map(([hook, n]) => `${hook}${n ?? ''}`)).toEqual(['trainBegin', 'epochBegin0', 'batchEnd2', 'batchEnd3', 'epochEnd0', 'epochBegin1', 'batchEnd1', 'trainEnd']);
      expect(calls.at(-1)![2]).toEqual({ epoch: 1, step: 2 });

      calls.length = 0;
      const rest = await trainer.fit();
      expect(trainer.stopReason).toBeUndefined();
      expect(rest.map((e) => e.epoch)).toEqual([2, 3]);
      expect(calls[0]).toEqual(['trainBegin', undefined, { epoch: 1, step: 2 }]);
      expect(calls[1]).toEqual(['epochBegin', 1, { step: 2 }]);
      expect(bytes(trainer.params()).equals(bytes(expected))).toBe(true);

      // The epoch's logs are its record's; the segments' logs add up to it.
      const history = trainer.history;
      const epoch3 = calls.filter(([hook, n]) => hook === 'epochEnd' && n === 2)[0]![2];
      expect(epoch3).toEqual(epochLogs(history.at(-1)!));
      expect(Object.keys(epoch3).sort()).toEqual(['loss', 'meanAbsoluteError', 'val_loss', 'val_meanAbsoluteError']);
      const segments = calls.slice(calls.findIndex(([hook, n]) => hook === 'epochBegin' && n === 2)).filter(([hook]) => hook === 'batchEnd');
      expect(segments.map(([, n]) => n)).toEqual([0, 3]); // updates 8 and 9-11
      expect(segments.reduce((n, [, , logs]) => n + logs.steps!, 0)).toBe(4);
      const samples = segments.reduce((n, [, , logs]) => n + logs.size!, 0);
      expect(samples).toBe(40);
      const loss = segments.reduce((n, [, , logs]) => n + logs.loss! * logs.size!, 0) / samples;
      expect(Math.abs(loss - history.at(-1)!.loss)).toBeLessThanOrEqual(1e-6 * Math.abs(history.at(-1)!.loss));
    } finally {
      await trainer.close();
    }
  });

  it('early stopping stops, restores the best weights, and continues exactly from its checkpoints', async () => {
    // Only the first epoch can improve (by more than minDelta): patience 2 stops after epoch 3.
    const earlyStopping = { monitor: 'loss', patience: 2, minDelta: 1e9, restoreBestWeights: true };
    const es = (dir: string) => config(dir, { training: { epochs: 6, earlyStopping }, checkpoint: { everySteps: 0, everyEpoch: true } });

    const reference = await Trainer.create(config(tmp('es-ref'), { training: { epochs: 6 } }));
    let afterEpoch1: Float32Array;
    try {
      await reference.fit(1);
      afterEpoch1 = reference.params();
    } finally {
      await reference.close();
    }

    const dir = tmp('es');
    const trainer = await Trainer.create(es(dir), { checkpoints: true });
    let written: string[];
    try {
      expect((await trainer.fit()).map((e) => e.epoch)).toEqual([1, 2, 3]);
      expect(trainer.stopReason).toMatch(/^early stopping: loss did not improve for 2 epochs after epoch 1 \(/);
      expect(bytes(trainer.params()).equals(bytes(afterEpoch1))).toBe(true);
      written = [...trainer.checkpointsWritten];
    } finally {
      await trainer.close();
    }
    const files = readdirSync(join(dir, 'checkpoints')).filter((f) => f.endsWith('.rtckpt'));
    expect(files).toEqual(['ckpt-e0001-s000004.rtckpt', 'ckpt-e0002-s000008.rtckpt', 'ckpt-e0003-s000012.rtckpt']);
    // The last one was written again once the best weights were back.
    const last = await readCheckpointFile(written.at(-1)!);
    expect(bytes(last.params).equals(bytes(afterEpoch1))).toBe(true);
    expect(last.callbacks?.[0]?.state).toMatchObject({ monitor: 'loss', bestEpoch: 1, wait: 2, stoppedEpoch: 3, restored: true });

    // Resumed after epoch 2: its wait (1) and best weights come back, so it stops after epoch 3
    // again (a fresh early stopping would count epoch 3 as an improvement and train on).
    const middle = join(dir, 'checkpoints', 'ckpt-e0002-s000008.rtckpt');
    const resumed = await Trainer.create(es(tmp('es-resumed')), { checkpoints: true, resume: { file: middle, state: await readCheckpointFile(middle) } });
    try {
      expect((await resumed.fit()).map((e) => e.epoch)).toEqual([3]);
      expect(resumed.stopReason).toMatch(/^early stopping: loss did not improve for 2 epochs after epoch 1/);
      expect(bytes(resumed.params()).equals(bytes(afterEpoch1))).toBe(true);
    } finally {
      await resumed.close();
    }

    // The same resume in a world of two processes (here two trainers of one process): only rank 0
    // reads the checkpoint, rank 1 takes early stopping's state from it, and both stop together.
    const port = await freePort();
    const spec = (rank: number): WorldSpec => ({ contract: 'flags', rank, worldSize: 2, localRank: rank, localWorldSize: 2, masterAddr: '127.0.0.1', masterPort: port, runId: 'test', restartCount: 0, describe: 'test world' });
    const ranks = await Promise.all([
      Trainer.create(es(tmp('es-world0')), { world: { spec: spec(0), token: 't' }, resume: { file: middle, state: await readCheckpointFile(middle) } }),
      Trainer.create(es(tmp('es-world1')), { world: { spec: spec(1), token: 't' } }),
    ]);
    try {
      const histories = await Promise.all(ranks.map((r) => r.fit()));
      expect(histories.map((h) => h.map((e) => e.epoch))).toEqual([[3], [3]]);
      for (const r of ranks) {
        expect(r.stopReason).toMatch(/^early stopping: loss did not improve for 2 epochs after epoch 1/);
        expect(bytes(r.params()).equals(bytes(afterEpoch1))).toBe(true);
      }
    } finally {
      await Promise.all(ranks.map((r) => r.close()));
    }

    // Resumed from the end: the run is over; nothing trains and nothing is written.
    const end = written.at(-1)!;
    const over = await Trainer.create(es(tmp('es-over')), { checkpoints: true, resume: { file: end, state: await readCheckpointFile(end) } });
    try {
      expect(await over.fit()).toEqual([]);
      expect(over.stopReason).toMatch(/^early stopping/);
      expect(bytes(over.params()).equals(bytes(afterEpoch1))).toBe(true);
      expect(over.checkpointsWritten).toEqual([]);
    } finally {
      await over.close();
    }
  });

  it('a monitor the run does not report is refused before training, naming the field', async () => {
    const cfg = config(tmp('es-bad'), { training: { validationSplit: 0, earlyStopping: { monitor: 'val_loss' } } });
    await expect(Trainer.create(cfg)).rejects.toThrow('training.earlyStopping.monitor: expected an epoch metric of this run (loss, meanAbsoluteError), found "val_loss"');
  });
});
