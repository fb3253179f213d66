import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeRunReport } from '../../../src/report/dashboard/report-file.js';
import type { RunData } from '../../../src/report/dashboard/run-data.js';
import { sumTimesPerReplica } from '../../../src/train/run-state.js';
import { zeroPhaseTimes } from '../../../src/train/replica-protocol.js';

const hostile = '</script><script>alert(1)</script><!--';

describe('report.html', () => {
  it('holds the run\'s data inside one inert JSON script, whatever the run is named, and every script it runs is allowed by its hash', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ringtrain-report-'));
    const records = [
      { event: 'start', name: hostile, stepsPerEpoch: 2, epochs: 2, worldReplicas: 1 },
      { event: 'epoch', epoch: 1, epochs: 2, steps: 2, samples: 4, seconds: 1, samplesPerSec: 4, loss: 0.75, metrics: { accuracy: 0.5 } },
      { event: 'epoch', epoch: 2, epochs: 2, steps: 2, samples: 4, seconds: 1, samplesPerSec: 4, loss: Number.NaN, metrics: { accuracy: 0.25 } },
      { event: 'summary', name: hostile, epochs: 2 },
    ];
    writeFileSync(path.join(dir, 'metrics.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const file = await writeRunReport(dir);
    expect(file).toBe(path.join(dir, 'report.html'));
    expect(readdirSync(dir).sort()).toEqual(['metrics.jsonl', 'report.html']);
    const html = readFileSync(file, 'utf8');
    // The name is text in the title and JSON in the data; it never closes a script element.
    expect(html.split('</script>')).toHaveLength(4);
    expect(html).toContain('<title>&#60;/script&#62;&#60;script&#62;alert(1)&#60;/script&#62;&#60;!--: ringtrain report</title>');
    const boot = /<script type="application\/json" id="rt-boot">([^<]*)<\/script>/.exec(html);
    expect(boot).not.toBeNull();
    const data = JSON.parse(boot![1]!) as { mode: string; runs: RunData[] };
    expect(data.mode).toBe('report');
    expect(data.runs).toHaveLength(1);
    expect(data.runs[0]!.name).toBe(hostile);
    expect(data.runs[0]!.status).toBe('finished');
    // JSON has no NaN: the log holds null, which is no value (a gap in the curve).
    expect(data.runs[0]!.epochs.map((e) => [e.epoch, e.step, e.values.loss, e.values.accuracy])).toEqual([
      [1, 2, 0.75, 0.5],
      [2, 4, undefined, 0.25],
    ]);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)![1]!;
    expect(csp).not.toContain('connect-src');
    const { createHash } = await import('node:crypto');
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => `'sha256-${createHash('sha256').update(m[1]!, 'utf8').digest('base64')}'`);
    expect(scripts).toHaveLength(2);
    for (const hash of scripts) expect(csp).toContain(hash);
  });

  it('says which file it could not write', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ringtrain-report-'));
    writeFileSync(path.join(dir, 'metrics.jsonl'), '');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(path.join(dir, 'report.html'));
    await expect(writeRunReport(dir)).rejects.toThrow(`${path.join(dir, 'report.html')}: cannot write the run report: EISDIR`);
    expect(readdirSync(dir).sort()).toEqual(['metrics.jsonl', 'report.html']);
  });
});

describe('sumTimesPerReplica', () => {
  it('sums each replica over the segments, also when a recovery left fewer replicas', () => {
    const t = (compute: number) => ({ ...zeroPhaseTimes(), compute });
    expect(sumTimesPerReplica([[t(1), t(2)], [t(10), t(20)], [t(100)]])).toEqual([t(111), t(22)]);
    expect(sumTimesPerReplica([])).toEqual([]);
  });
});
