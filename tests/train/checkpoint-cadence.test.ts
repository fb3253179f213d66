/**
 * When checkpoints are due (src/train/checkpointing.ts), on a clock the test moves: by default
 * at the first step boundary 60 s after the last one (or the start of fit()), every
 * `everySteps` updates when asked, never twice for one step, and never without a store.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointStore } from '../../src/checkpoint/store.js';
import { parseRunConfig } from '../../src/config/load.js';
import { CheckpointSchedule } from '../../src/train/checkpointing.js';
import { makeState } from '../checkpoint/fixtures.js';

function config(checkpoint: object = {}) {
  return parseRunConfig({
    name: 'cadence',
    model: { inputShape: [1], layers: [{ type: 'dense', units: 1 }] },
    data: 'linear',
    loss: 'mse',
    optimizer: 'sgd',
    training: { epochs: 1, batchSize: 10 },
    output: { dir: mkdtempSync(join(tmpdir(), 'ringtrain-cadence-')) },
    checkpoint,
  });
}

describe('checkpoint cadence', () => {
  it('by default: every 60 s of training since the last checkpoint, counted from the start of fit()', async () => {
    const cfg = config();
    expect(cfg.checkpoint).toMatchObject({ everySeconds: 60, everySteps: 0, everyEpoch: false });
    let now = 1_000;
    const schedule = new CheckpointSchedule(cfg, new CheckpointStore(cfg.checkpoint.dir), undefined, { now: () => now });
    now += 120_000; // start-up: not training time
    schedule.startClock();
    now += 59_999;
    expect(schedule.due(7)).toBe(false);
    now += 1;
    expect(schedule.due(7)).toBe(true);
    await schedule.write(() => makeState({ globalStep: 7 }));
    expect(schedule.due(8)).toBe(false); // the clock starts again at the write
    now += 60_000;
    expect(schedule.due(7)).toBe(false); // that step is written already
    expect(schedule.due(8)).toBe(true);
    await schedule.flush();
    expect(schedule.written).toHaveLength(1);
  });

  it('everySteps and everySeconds 0: by steps alone; without a store never', () => {
    const cfg = config({ everySteps: 5, everySeconds: 0 });
    let now = 0;
    const schedule = new CheckpointSchedule(cfg, new CheckpointStore(cfg.checkpoint.dir), undefined, { now: () => now });
    now += 1e9;
    expect([4, 5, 9, 10].map((u) => schedule.due(u))).toEqual([false, true, false, true]);
    expect(new CheckpointSchedule(cfg, undefined).due(10)).toBe(false);
  });

  it('everySteps: a multiple stepped over by a segment (gradient accumulation ends segments on updates) is due at the segment end, once', async () => {
    const cfg = config({ everySteps: 5, everySeconds: 0 });
    const schedule = new CheckpointSchedule(cfg, new CheckpointStore(cfg.checkpoint.dir));
    // Segments of 3 batches (k = 3): 3, 6 (past 5), 9, 12 (past 10), 15 (on it).
    expect(schedule.due(3)).toBe(false);
    expect(schedule.due(6)).toBe(true);
    await schedule.write(() => makeState({ globalStep: 6 }));
    expect(schedule.due(9)).toBe(false);
    expect(schedule.due(12)).toBe(true);
    await schedule.write(() => makeState({ globalStep: 12 }));
    expect(schedule.due(15)).toBe(true);
    await schedule.flush();
  });

  it('epoch-end checkpoints: off by default, on with a monitor (its best is chosen among them) or when asked', () => {
    expect(config().checkpoint.everyEpoch).toBe(false);
    expect(config({ monitor: 'loss' }).checkpoint.everyEpoch).toBe(true);
    expect(config({ monitor: 'loss', everyEpoch: false }).checkpoint.everyEpoch).toBe(false);
    expect(config({ everyEpoch: true }).checkpoint.everyEpoch).toBe(true);
    expect(() => config({ everySeconds: -1 })).toThrow('checkpoint.everySeconds: expected a number of seconds >= 0 (0: no time-based checkpoints), found -1');
  });
});
