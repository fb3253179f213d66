/**
 * Backpressure on checkpoint writes (src/train/checkpointing.ts): at most one write in flight
 * and one state waiting; a newer state replaces a waiting periodic one (skipped); an epoch-end
 * or final checkpoint is never skipped and the trainer waits for the write in flight instead;
 * a write that hangs ends the waits at its deadline with a CheckpointWriteError naming the file.
 *
 * Deterministic: the stores here hold each write until the test lets it go, so the test, not
 * the speed of the disk or the machine's load, decides which states are waiting when. The
 * states held are counted by watching captures and releases (`released`), not by the queue's
 * own counter. (Before the queue was bounded every state was queued and written: a checkpoint
 * every step of a 200k-parameter model grew the process by hundreds of MB.)
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CheckpointStore, checkpointFileName, type CheckpointWriteOptions } from '../../src/checkpoint/store.js';
import type { CheckpointState } from '../../src/checkpoint/state.js';
import { parseRunConfig } from '../../src/config/load.js';
import { createSharedDataset } from '../../src/data/dataset.js';
import { CheckpointSchedule, CheckpointWriteError } from '../../src/train/checkpointing.js';
import { Trainer } from '../../src/train/trainer.js';
import { mulberry32 } from '../../src/util/random.js';
import { makeState } from '../checkpoint/fixtures.js';

afterEach(() => {
  vi.restoreAllMocks();
});

function runConfig(dir: string, extra: { samples?: number; checkpoint?: object; parallel?: object } = {}) {
  return parseRunConfig({
    name: 'queue',
    model: { inputShape: [784], layers: [{ type: 'dense', units: 16, activation: 'relu' }, { type: 'dense', units: 10, activation: 'softmax' }] },
    data: 'embedded-mnist',
    loss: 'sparseCategoricalCrossentropy',
    optimizer: 'adam',
    training: { epochs: 2, batchSize: 16, validationSplit: 0 },
    parallel: { workers: 1, maxRecoveries: 0, ...extra.parallel },
    output: { dir, metricsLog: false },
    checkpoint: { dir: join(dir, 'checkpoints'), everySteps: 1, everySeconds: 0, keepLast: 2, ...extra.checkpoint },
  });
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
}
function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
}

/** Lets pending promise callbacks and I/O callbacks run, a few turns of the event loop. */
async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise<void>((r) => setImmediate(r));
}

/** A real store whose writes start only when the test lets them (`writes[i].go()`). */
class GatedStore extends CheckpointStore {
  readonly writes: { step: number; go: () => void; done: Promise<string> }[] = [];

  override write(state: CheckpointState, options?: CheckpointWriteOptions): Promise<string> {
    const gate = deferred();
    const done = gate.promise.then(() => super.write(state, options));
    this.writes.push({ step: state.position.globalStep, go: gate.resolve, done });
    return done;
  }
}

/** The schedule, watched: what was captured and released, in order, and how many were held at most. */
class WatchedSchedule extends CheckpointSchedule {
  readonly events: string[] = [];
  private held = new Set<CheckpointState>();
  maxHeld = 0;

  capture(step: number): () => CheckpointState {
    return () => {
      const state = makeState({ units: 2, epoch: Math.floor(step / 10), globalStep: step });
      this.events.push(`capture ${step}`);
      this.held.add(state);
      this.maxHeld = Math.max(this.maxHeld, this.held.size);
      return state;
    };
  }

  protected override released(state: CheckpointState): void {
    expect(this.held.delete(state), 'a state released twice, or never captured').toBe(true);
    this.events.push(`release ${state.position.globalStep}`);
  }

  get holding(): number {
    return this.held.size;
  }
}

/** Whether `promise` has settled, after letting pending callbacks run. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await turns();
  return done;
}

describe('checkpoint queue policy', () => {
  it('periodic states waiting are replaced by newer ones; epoch-end and final ones are written and waited for; at most 2 held', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-queue-'));
    const config = runConfig(dir);
    const store = new GatedStore(config.checkpoint.dir, { keepLast: 10 });
    const schedule = new WatchedSchedule(config, store);

    await schedule.write(schedule.capture(1)); // in flight (held by the test)
    await schedule.write(schedule.capture(2)); // waits
    await schedule.write(schedule.capture(3)); // replaces 2
    await schedule.write(schedule.capture(4), undefined, true); // epoch end: replaces 3, never replaced itself
    expect(store.writes.map((w) => w.step)).toEqual([1]);
    expect(schedule.stats).toMatchObject({ written: 0, skipped: 2 });
    // A replaced state is let go before the newer one is captured.
    expect(schedule.events).toEqual(['capture 1', 'capture 2', 'release 2', 'capture 3', 'release 3', 'capture 4']);

    // The next periodic state must wait (the epoch-end one waiting may not be replaced), for as long as write 1 takes.
    const fifth = schedule.write(schedule.capture(5));
    expect(await settled(fifth)).toBe(false);
    expect(schedule.events.at(-1)).toBe('capture 4'); // 5 not captured yet
    store.writes[0]!.go();
    await store.writes[0]!.done;
    await fifth;
    expect(schedule.events).toContain('release 1');
    expect(store.writes.map((w) => w.step)).toEqual([1, 4]); // 4 started once 1 was done; 5 waits
    expect(schedule.holding).toBe(2);

    // The final checkpoint replaces the waiting periodic one, and flush waits for every write.
    await schedule.write(schedule.capture(6), undefined, true);
    const flushed = schedule.flush();
    expect(await settled(flushed)).toBe(false);
    store.writes[1]!.go();
    await store.writes[1]!.done;
    await turns();
    expect(store.writes.map((w) => w.step)).toEqual([1, 4, 6]);
    expect(await settled(flushed)).toBe(false); // 6 is still held
    store.writes[2]!.go();
    await flushed;

    expect(schedule.stats).toEqual({ written: 3, skipped: 3, failed: 0, maxStatesAlive: 2 });
    expect(schedule.written).toEqual([1, 4, 6].map((s) => join(store.dir, checkpointFileName({ epoch: Math.floor(s / 10), globalStep: s }))));
    expect(schedule.maxHeld).toBe(2);
    expect(schedule.holding).toBe(0); // every state was let go
    expect(readFileSync(join(store.dir, 'latest'), 'utf8')).toBe(`${checkpointFileName({ epoch: 0, globalStep: 6 })}\n`);
    expect((await store.read('latest')).position.globalStep).toBe(6);
  });

  it('a write that never finishes ends the waits at its deadline with an error naming the file', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-queue-'));
    const config = runConfig(dir);
    class HangingStore extends CheckpointStore {
      override write(): Promise<string> {
        return new Promise<string>(() => undefined); // an fsync on a dead NFS mount
      }
    }
    const store = new HangingStore(config.checkpoint.dir);
    const schedule = new WatchedSchedule(config, store, undefined, { writeTimeoutMs: 200 });
    const file = join(store.dir, checkpointFileName({ epoch: 0, globalStep: 1 }));
    const message = `checkpoint write of ${file} did not finish within 0.2 s (the disk or mount hangs?); training stopped; last good checkpoint: none written by this run`;

    await schedule.write(schedule.capture(1));
    await schedule.write(schedule.capture(2), undefined, true); // an epoch end waits behind the hung write
    const started = performance.now();
    // The next state must wait for the hung write: the wait ends at the deadline, with the error.
    const third = schedule.write(schedule.capture(3));
    await expect(third).rejects.toThrow(CheckpointWriteError);
    await expect(third).rejects.toThrow(message);
    expect(performance.now() - started).toBeLessThan(30_000); // 0.2 s, not for ever
    const error = (await third.catch((e: unknown) => e)) as CheckpointWriteError;
    expect(error.file).toBe(file);
    expect(error.lastGood).toBeUndefined();
    expect(error.message).not.toContain('\n');
    // flush (end of fit, a stop, after recovery) ends too, and so does every later step boundary.
    await expect(schedule.flush()).rejects.toThrow(message);
    expect(() => schedule.throwIfFailed()).toThrow(message);
    expect(schedule.events).toEqual(['capture 1', 'capture 2', 'release 2']); // the waiting one dropped; 3 never captured
  }, 20_000);

  it('flush alone also ends at the deadline (a periodic write hung, nothing waiting)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-queue-'));
    const config = runConfig(dir, { checkpoint: { onWriteError: 'warn' } });
    const store = new GatedStore(config.checkpoint.dir);
    const schedule = new WatchedSchedule(config, store, undefined, { writeTimeoutMs: 100 });
    await schedule.write(schedule.capture(1));
    // "warn" does not help: nothing could be written behind a hung write.
    await expect(schedule.flush()).rejects.toThrow(/^checkpoint write of \S+ckpt-e0000-s000001\.rtckpt did not finish within 0\.1 s/);
  }, 20_000);

  it('the default deadline is max(parallel.stepTimeoutMs, 60 s)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-queue-'));
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      for (const [stepTimeoutMs, deadline] of [
        [1_000, 60_000],
        [90_000, 90_000],
      ] as const) {
        const config = runConfig(dir, { parallel: { stepTimeoutMs } });
        const schedule = new WatchedSchedule(config, new GatedStore(config.checkpoint.dir));
        await schedule.write(schedule.capture(1));
        await turns(2);
        vi.advanceTimersByTime(deadline - 1);
        expect(() => schedule.throwIfFailed()).not.toThrow();
        vi.advanceTimersByTime(1);
        expect(() => schedule.throwIfFailed()).toThrow(`did not finish within ${deadline / 1000} s`);
      }
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('the trainer and the queue', () => {
  const SAMPLES = 320;
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

  it('checkpoint every step: epoch ends all written, fit() waits for the final write, at most 2 states held, latest is the last step', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-queue-'));
    // Epoch ends are kept (never replaced by a newer state) only when asked for: everyEpoch.
    const config = runConfig(dir, { checkpoint: { everyEpoch: true } });
    const total = 2 * STEPS;
    // Writes go through, except the final one, held until the test lets it go.
    const finalGate = deferred();
    const asked: number[] = [];
    const realWrite = CheckpointStore.prototype.write;
    vi.spyOn(CheckpointStore.prototype, 'write').mockImplementation(function (this: CheckpointStore, state, options) {
      const step = state.position.globalStep;
      asked.push(step);
      return step === total ? finalGate.promise.then(() => realWrite.call(this, state, options)) : realWrite.call(this, state, options);
    });
    // Held states: captured and not yet released by the queue (recovery is off: every capture is a checkpoint's).
    let held = 0;
    let maxHeld = 0;
    let releases = 0;
    vi.spyOn(CheckpointSchedule.prototype as unknown as { released(state: CheckpointState): void }, 'released').mockImplementation(() => {
      held--;
      releases++;
    });
    const trainer = await Trainer.create(config, { data, checkpoints: true });
    const realCapture = trainer.captureState.bind(trainer);
    let captures = 0;
    vi.spyOn(trainer, 'captureState').mockImplementation(() => {
      captures++;
      maxHeld = Math.max(maxHeld, ++held);
      return realCapture();
    });
    try {
      const rss = process.memoryUsage().rss;
      const fit = trainer.fit();
      await vi.waitFor(() => expect(asked).toContain(total), { timeout: 100_000, interval: 20 });
      expect(await settled(fit)).toBe(false); // fit() is waiting for the final checkpoint
      finalGate.resolve();
      await fit;
      const stats = trainer.checkpointStats;
      console.log(
        `checkpoint every step, ${total} steps: ${stats.written} written, ${stats.skipped} skipped, at most ${maxHeld} states held, ` +
          `RSS ${((process.memoryUsage().rss - rss) / 2 ** 20).toFixed(0)} MB more (logged only: it depends on the GC)`,
      );
      expect(captures).toBe(total); // one per step (every step is due)
      expect(stats.written + stats.skipped).toBe(total);
      expect(stats.failed).toBe(0);
      expect(asked).toHaveLength(stats.written);
      expect(asked).toContain(STEPS); // the first epoch's end was not skipped
      expect(asked.at(-1)).toBe(total);
      expect(maxHeld).toBeLessThanOrEqual(2);
      expect(held).toBe(0);
      expect(releases).toBe(total);
      expect(readFileSync(join(config.checkpoint.dir, 'latest'), 'utf8').trim()).toBe(checkpointFileName({ epoch: 2, globalStep: total }));
    } finally {
      await trainer.close();
    }
  });
});
