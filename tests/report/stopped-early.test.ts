/** The run summary says when a callback (early stopping) ended training, before the evaluation. */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createReporter } from '../../src/report/reporter.js';
import type { TrainSummary } from '../../src/train/run.js';

const summary: TrainSummary = {
  event: 'summary',
  name: 'es',
  workers: 1,
  processes: 1,
  replicas: 1,
  backend: 'cpu',
  epochs: 10,
  parameters: 2,
  samplesPerSec: 500,
  wallSeconds: 2,
  final: { loss: 1, metrics: {} },
  evaluation: { on: 'train', samples: 100, loss: 1.25, metrics: {} },
  stoppedEarly: { epoch: 10, reason: 'early stopping: loss did not improve for 2 epochs after epoch 8 (1.05)' },
};

function output(mode: 'plain' | 'json'): string {
  const out = new PassThrough();
  let text = '';
  out.on('data', (chunk: Buffer) => (text += chunk.toString()));
  createReporter(mode, out).summary(summary);
  return text;
}

describe('a summary of a run stopped early', () => {
  it('says so in words, and in the JSON line', () => {
    expect(output('plain').split('\n')[0]).toBe('Stopped after epoch 10: early stopping: loss did not improve for 2 epochs after epoch 8 (1.05)');
    expect(output('plain').split('\n')[1]).toMatch(/^Training-data evaluation on 100 samples: loss: 1\.25/);
    expect(JSON.parse(output('json'))).toMatchObject({ stoppedEarly: { epoch: 10, reason: summary.stoppedEarly!.reason } });
  });
});
