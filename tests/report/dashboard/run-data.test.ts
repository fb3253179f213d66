import { appendFileSync, mkdirSync, mkdtempSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeCheckpoint } from '../../../src/checkpoint/format.js';
import { RunReader } from '../../../src/report/dashboard/run-data.js';
import { makeState } from '../../checkpoint/fixtures.js';

const line = (record: object) => `${JSON.stringify(record)}\n`;
const start = (name: string) => line({ event: 'start', name, workers: 2, processes: 1, worldReplicas: 2, backend: 'wasm', epochs: 3, stepsPerEpoch: 4, parameters: 13, startedAt: '2026-01-02T03:04:05.000Z' });
const progress = (epoch: number, step: number, loss: number, lr?: number) => line({ event: 'progress', epoch, step, steps: 4, samples: step * 8, loss, metrics: { accuracy: 1 - loss }, samplesPerSec: 50, ...(lr === undefined ? {} : { lr }) });
const epoch = (n: number, loss: number) =>
  line({ event: 'epoch', epoch: n, epochs: 3, steps: 4, samples: 32, seconds: 2, samplesPerSec: 16, loss, metrics: { accuracy: 1 - loss }, validation: { loss: loss + 0.1, metrics: { accuracy: 0.9 - loss } }, phaseTimes: { compute: 0.4, barrier: 0.1 }, replicaPhaseTimes: [{ compute: 0.5, barrier: 0.05 }, { compute: 0.3, barrier: 0.15 }], skippedSteps: 0 });

function runFolder(root: string, rel: string, text: string): string {
  const dir = path.join(root, rel);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'metrics.jsonl'), text);
  return dir;
}

describe('RunReader', () => {
  it('finds run folders up to 3 levels down, following no link', () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ringtrain-runs-'));
    const outside = mkdtempSync(path.join(tmpdir(), 'ringtrain-outside-'));
    runFolder(root, 'a', start('a'));
    runFolder(root, 'group/b', start('b'));
    runFolder(root, 'x/y/z/too-deep', start('deep'));
    runFolder(root, 'a/checkpoints/not-a-run', start('inside checkpoints'));
    mkdirSync(path.join(root, 'empty'));
    const secret = runFolder(outside, 'secret', start('secret'));
    symlinkSync(secret, path.join(root, 'link-to-run'));
    mkdirSync(path.join(root, 'linked-log'));
    symlinkSync(path.join(secret, 'metrics.jsonl'), path.join(root, 'linked-log', 'metrics.jsonl'));
    expect(new RunReader(root).listRuns().map((r) => r.id)).toEqual(['a', 'group/b']);
    runFolder(root, '.', start('root'));
    expect(new RunReader(root).listRuns().map((r) => r.id)).toEqual(['.', 'a', 'group/b']);
  });

  it('turns the log into curves by global step, epochs with val_ values, phase times and status', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ringtrain-runs-'));
    const dir = runFolder(root, 'r', start('r') + progress(1, 1, 0.9, 0.1) + progress(1, 3, 0.7, 0.1) + epoch(1, 0.6) + progress(2, 2, 0.5, 0.05));
    const reader = new RunReader(root);
    const run = await reader.read(dir, 'r');
    expect(run).toMatchObject({ id: 'r', name: 'r', status: 'running', stepsPerEpoch: 4, epochsPlanned: 3, replicas: 2, backend: 'wasm', parameters: 13, startedAt: '2026-01-02T03:04:05.000Z' });
    expect(run.progress.map((p) => [p.step, p.epoch, p.values.loss, p.values.lr])).toEqual([
      [1, 0.25, 0.9, 0.1],
      [3, 0.75, 0.7, 0.1],
      [6, 1.5, 0.5, 0.05],
    ]);
    expect(run.progress[0]!.values).toEqual({ loss: 0.9, accuracy: 1 - 0.9, lr: 0.1, samplesPerSec: 50 });
    expect(run.epochs).toHaveLength(1);
    expect(run.epochs[0]).toMatchObject({ epoch: 1, step: 4, steps: 4, seconds: 2, samplesPerSec: 16, values: { loss: 0.6, accuracy: 1 - 0.6, val_loss: 0.6 + 0.1, val_accuracy: 0.9 - 0.6 } });
    expect(run.epochs[0]!.replicaPhaseTimes).toEqual([{ compute: 0.5, barrier: 0.05 }, { compute: 0.3, barrier: 0.15 }]);

    // A resumed run goes back to its checkpoint (end of epoch 1): later points are dropped.
    appendFileSync(path.join(dir, 'metrics.jsonl'), start('r') + progress(2, 1, 0.55) + epoch(2, 0.4) + line({ event: 'summary', name: 'r', epochs: 2, wallSeconds: 3, samplesPerSec: 20 }));
    const resumed = await reader.read(dir, 'r');
    expect(resumed.progress.map((p) => [p.step, p.values.loss])).toEqual([
      [1, 0.9],
      [3, 0.7],
      [5, 0.55],
    ]);
    expect(resumed.epochs.map((e) => [e.epoch, e.values.loss])).toEqual([
      [1, 0.6],
      [2, 0.4],
    ]);
    expect(resumed.status).toBe('finished');
    expect(resumed.summary).toMatchObject({ wallSeconds: 3 });
  });

  it('reads a growing log where it ended, keeps a half-written line for later, notes damaged lines, and starts over on a new log', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ringtrain-runs-'));
    const dir = runFolder(root, 'g', start('g') + epoch(1, 0.5));
    const log = path.join(dir, 'metrics.jsonl');
    const reader = new RunReader(root);
    expect((await reader.read(dir, 'g')).epochs).toHaveLength(1);
    const half = epoch(2, 0.4);
    appendFileSync(log, half.slice(0, 20));
    expect((await reader.read(dir, 'g')).epochs).toHaveLength(1);
    appendFileSync(log, half.slice(20) + 'not json\n[1,2]\n');
    const grown = await reader.read(dir, 'g');
    expect(grown.epochs.map((e) => e.values.loss)).toEqual([0.5, 0.4]);
    expect(grown.notes).toEqual(['2 line(s) of metrics.jsonl are not JSON objects and were skipped']);
    // An old log that stopped changing long ago, with no summary: interrupted.
    utimesSync(log, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    expect((await reader.read(dir, 'g')).status).toBe('interrupted');
    writeFileSync(log, start('second') + epoch(1, 0.3));
    const fresh = await reader.read(dir, 'g');
    expect(fresh.name).toBe('second');
    expect(fresh.epochs.map((e) => e.values.loss)).toEqual([0.3]);
    expect(fresh.notes).toEqual([]);
    // A newer run's log that grew past the old one before it was read again begins otherwise: read afresh.
    writeFileSync(log, start('second').replace('03:04:05', '09:09:09') + epoch(1, 0.2) + epoch(2, 0.1) + epoch(3, 0.05));
    const third = await reader.read(dir, 'g');
    expect(third.startedAt).toBe('2026-01-02T09:09:09.000Z');
    expect(third.epochs.map((e) => e.values.loss)).toEqual([0.2, 0.1, 0.05]);
  });

  it('lists checkpoints with their position, time, the metrics they hold and the best one', async () => {
    const root = mkdtempSync(path.join(tmpdir(), 'ringtrain-runs-'));
    const dir = runFolder(root, 'c', start('c') + epoch(1, 0.6) + epoch(2, 0.4));
    mkdirSync(path.join(dir, 'checkpoints'));
    const early = { ...makeState({ epoch: 1, globalStep: 4 }), history: [{ type: 'epoch', epoch: 1, loss: 0.6, metrics: { accuracy: 0.4 } }] };
    const late = { ...makeState({ epoch: 2, globalStep: 8 }), history: [{ type: 'epoch', epoch: 1, loss: 0.6 }, { type: 'epoch', epoch: 2, loss: 0.4, metrics: { accuracy: 0.6 }, validation: { loss: 0.5, metrics: { accuracy: 0.55 } } }] };
    writeFileSync(path.join(dir, 'checkpoints', 'ckpt-e0001-s000004.rtckpt'), encodeCheckpoint(early));
    writeFileSync(path.join(dir, 'checkpoints', 'ckpt-e0002-s000008.rtckpt'), encodeCheckpoint(late));
    writeFileSync(path.join(dir, 'checkpoints', 'ckpt-e0003-s000012.rtckpt'), 'damaged');
    writeFileSync(path.join(dir, 'checkpoints', 'best'), 'ckpt-e0002-s000008.rtckpt\n{"name":"val_loss","mode":"min","value":0.5}\n');
    const run = await new RunReader(root).read(dir, 'c');
    expect(run.checkpoints.map((c) => [c.file, c.epoch, c.step, c.best, c.createdAt])).toEqual([
      ['ckpt-e0001-s000004.rtckpt', 1, 4, false, '2025-01-02T03:04:05.678Z'],
      ['ckpt-e0002-s000008.rtckpt', 2, 8, true, '2025-01-02T03:04:05.678Z'],
      ['ckpt-e0003-s000012.rtckpt', 3, 12, false, undefined],
    ]);
    expect(run.checkpoints[0]!.values).toEqual({ loss: 0.6, accuracy: 0.4 });
    expect(run.checkpoints[1]!.values).toEqual({ loss: 0.4, accuracy: 0.6, val_loss: 0.5, val_accuracy: 0.55 });
    expect(run.checkpoints[1]!.bytes).toBe(encodeCheckpoint(late).length);
    expect(run.checkpoints[2]!.error).toBe(`${path.join(dir, 'checkpoints', 'ckpt-e0003-s000012.rtckpt')}: not a ringtrain checkpoint (7 bytes, shorter than the header)`);
  });
});
