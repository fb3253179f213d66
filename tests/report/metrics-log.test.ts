import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MetricsLog } from '../../src/report/metrics-log.js';
import type { EpochEvent, ProgressEvent, StartEvent } from '../../src/train/events.js';
import { zeroPhaseTimes } from '../../src/train/replica-protocol.js';

const start: StartEvent = { type: 'start', name: 'tiny', workers: 2, processes: 1, worldReplicas: 2, backend: 'wasm', epochs: 2, stepsPerEpoch: 4, trainSamples: 16, validationSamples: 0, parameters: 3 };
const progress = (step: number): ProgressEvent => ({ type: 'progress', epoch: 1, step, steps: 4, samples: step * 4, loss: 1 / step, metrics: { accuracy: step / 8 }, samplesPerSec: 100 });
const epoch: EpochEvent = { type: 'epoch', epoch: 1, epochs: 2, steps: 4, samples: 16, seconds: 0.5, samplesPerSec: 32, loss: 0.25, metrics: { accuracy: 0.5 }, phaseTimes: zeroPhaseTimes(), replicaPhaseTimes: [zeroPhaseTimes(), zeroPhaseTimes()], skippedSteps: 0 };

function lines(log: MetricsLog): Record<string, unknown>[] {
  return readFileSync(log.file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('MetricsLog records', () => {
  it('writes start, progress (not the epoch\'s last step) and epoch records, `event` first and no `type`', () => {
    const log = new MetricsLog(mkdtempSync(path.join(tmpdir(), 'ringtrain-log-')), { progressEveryMs: 0 });
    for (const e of [start, progress(1), progress(2), progress(4), epoch]) log.event(e);
    const records = lines(log);
    expect(records.map((r) => [r.event, r.step ?? r.epoch ?? null])).toEqual([['start', null], ['progress', 1], ['progress', 2], ['epoch', 1]]);
    expect(Object.keys(records[0]!)[0]).toBe('event');
    expect(records.every((r) => !('type' in r))).toBe(true);
    expect(records[0]).toMatchObject({ name: 'tiny', stepsPerEpoch: 4, worldReplicas: 2 });
    expect(new Date(records[0]!.startedAt as string).getTime()).toBeGreaterThan(Date.parse('2020-01-01'));
    expect(records[1]).toEqual({ event: 'progress', epoch: 1, step: 1, steps: 4, samples: 4, loss: 1, metrics: { accuracy: 0.125 }, samplesPerSec: 100 });
    expect(records[3]!.replicaPhaseTimes).toEqual([zeroPhaseTimes(), zeroPhaseTimes()]);
  });

  it('writes a progress record at most once per interval', () => {
    const log = new MetricsLog(mkdtempSync(path.join(tmpdir(), 'ringtrain-log-')), { progressEveryMs: 60_000 });
    for (const step of [1, 2, 3]) log.event(progress(step));
    log.event(epoch);
    expect(lines(log).map((r) => `${r.event as string}:${(r.step ?? r.epoch) as number}`)).toEqual(['progress:1', 'epoch:1']);
  });
});
