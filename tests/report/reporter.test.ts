/**
 * The terminal progress bar shows the epoch's running loss and metrics as Keras does
 * ("loss: 0.5712 - accuracy: 0.8123"), rendered by cli-progress to a stream that says it is a TTY.
 */
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createReporter } from '../../src/report/reporter.js';
import type { ProgressEvent } from '../../src/train/events.js';

function fakeTty(): { stream: NodeJS.WriteStream; text: () => string } {
  let written = '';
  const stream = new Writable({
    write(chunk, _encoding, done) {
      written += String(chunk);
      done();
    },
  }) as unknown as NodeJS.WriteStream;
  Object.assign(stream, { isTTY: true, columns: 200 });
  // Without the escape sequences cli-progress moves the cursor with.
  return { stream, text: () => written.replace(/\x1B\[[0-9;?]*[A-Za-z]|\x1B[78]/g, '') };
}

const progress = (step: number, loss: number, accuracy: number): ProgressEvent => ({
  type: 'progress',
  epoch: 1,
  step,
  steps: 10,
  samples: step * 32,
  loss,
  metrics: { accuracy },
  samplesPerSec: 1234,
  lr: 0.001,
});

describe('the progress bar', () => {
  it('shows the running loss and metrics as Keras does', async () => {
    const tty = fakeTty();
    const reporter = createReporter('tty', tty.stream);
    reporter.event(progress(3, 0.571234, 0.81234));
    // The bar redraws on its own timer (cli-progress throttles updates).
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(tty.text()).toContain('Epoch 1 3/10 [');
    expect(tty.text()).toContain('] loss: 0.5712 - accuracy: 0.8123 - lr: 0.0010 - 1,234 samples/s - ETA');
    reporter.stop();
  });

  it('is not drawn off a terminal', () => {
    const tty = fakeTty();
    const reporter = createReporter('plain', tty.stream);
    reporter.event(progress(3, 0.5, 0.8));
    expect(tty.text()).toBe('');
  });
});
