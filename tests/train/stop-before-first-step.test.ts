/**
 * A stop that comes after the trainer started but before its first step (a SIGINT just after
 * create() made its last check) ends fit() with nothing trained and nothing checkpointed: a
 * step-0 checkpoint would replace `latest` with the state the run started from.
 */
import { getEventListeners } from 'node:events';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseRunConfig } from '../../src/config/load.js';
import { Trainer } from '../../src/train/trainer.js';

function config(dir: string) {
  return parseRunConfig({
    name: 'stop-before-first-step',
    model: { inputShape: [1], layers: [{ type: 'dense', units: 1 }] },
    data: { source: 'linear', samples: 40 },
    loss: 'meanSquaredError',
    optimizer: { name: 'sgd', learningRate: 0.01 },
    training: { epochs: 2, batchSize: 10 },
    parallel: { workers: 1 },
    backend: 'cpu',
    output: { dir, metricsLog: false },
    checkpoint: { everySteps: 2 },
  });
}

const files = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

describe('a stop before the first step', () => {
  it('(the signal aborted right after create, or stop() before fit) writes no checkpoint; a fit that trains still writes its last one', async () => {
    const out = mkdtempSync(join(tmpdir(), 'ringtrain-stop-first-'));
    const cfg = config(out);
    const stop = new AbortController();
    const signalled = await Trainer.create(cfg, { checkpoints: true, signal: stop.signal });
    try {
      stop.abort();
      expect(await signalled.fit()).toEqual([]);
      expect(signalled.stopped).toBe(true);
      expect(signalled.checkpointsWritten).toEqual([]);
    } finally {
      await signalled.close();
    }
    expect(files(cfg.checkpoint.dir)).toEqual([]);

    const stopped = await Trainer.create(cfg, { checkpoints: true });
    try {
      stopped.stop();
      expect(await stopped.fit()).toEqual([]);
      expect(stopped.checkpointsWritten).toEqual([]);
    } finally {
      await stopped.close();
    }
    expect(files(cfg.checkpoint.dir)).toEqual([]);

    // Not stopped: the run trains and ends with a checkpoint of its last step; closed, the
    // trainer leaves no listener on the caller's signal.
    const kept = new AbortController();
    const trained = await Trainer.create(cfg, { checkpoints: true, signal: kept.signal });
    try {
      expect(getEventListeners(kept.signal, 'abort')).toHaveLength(1);
      expect(await trained.fit()).toHaveLength(2);
      expect(trained.checkpointsWritten.at(-1)).toMatch(/ckpt-e0002-s000008\.rtckpt$/);
    } finally {
      await trained.close();
    }
    expect(getEventListeners(kept.signal, 'abort')).toHaveLength(0);
  });
});
