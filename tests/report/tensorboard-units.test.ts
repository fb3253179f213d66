/** The pieces of the TensorBoard writer and the sink registry that a short run does not reach. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { mergeEventOptions } from '../../src/report/sink.js';
import { EventFile } from '../../src/report/tensorboard/event-file.js';
import { histogramValue } from '../../src/report/tensorboard/summaries.js';
import { traceFileOf } from '../../src/report/trace.js';
import { FileWriteError } from '../../src/util/fs-errors.js';

describe('histograms', () => {
  it('equal values make one bucket; non-finite values are left out', () => {
    expect(histogramValue('w', [0.5, 0.5, Number.NaN, 0.5, Infinity]).histo).toEqual({ min: 0.5, max: 0.5, num: 3, sum: 1.5, sumSquares: 0.75, bucketLimit: [0.5], bucket: [3] });
  });

  it('values on a bucket limit count in the bucket below it, the min in the first', () => {
    // 30 buckets of width 1 from 0 to 30: 0 and 1 in bucket 0, 1.5 and 2 in bucket 1, 30 in bucket 29.
    const { bucketLimit, bucket } = histogramValue('w', [0, 1, 1.5, 2, 30]).histo as { bucketLimit: number[]; bucket: number[] };
    expect(bucketLimit).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(bucket.slice(0, 3)).toEqual([2, 2, 0]);
    expect(bucket[29]).toBe(1);
    expect(bucket.reduce((a, b) => a + b)).toBe(5);
  });
});

describe('report sinks', () => {
  it('step events come at the greatest common divisor of the intervals asked for', () => {
    expect(mergeEventOptions([{ stepsEvery: 50 }, {}, { stepsEvery: 20, trace: true }])).toEqual({ stepsEvery: 10, weights: false, trace: true });
    expect(mergeEventOptions([{ stepsEvery: 0 }, { weights: true }])).toEqual({ stepsEvery: 0, weights: true, trace: false });
  });

  it('rank k of a world writes its trace beside rank 0\'s', () => {
    expect(traceFileOf('out/trace.json', 0)).toBe('out/trace.json');
    expect(traceFileOf('out/trace.json', 3)).toBe('out/trace.rank3.json');
    expect(traceFileOf('trace', 1)).toBe('trace.rank1');
  });

  it('an event file that cannot be created is a FileWriteError naming the folder', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ringtrain-tb-'));
    writeFileSync(join(dir, 'tensorboard'), 'not a folder');
    const where = join(dir, 'tensorboard', 'train');
    expect(() => new EventFile(where)).toThrow(FileWriteError);
    expect(() => new EventFile(where)).toThrow(where);
  });
});
