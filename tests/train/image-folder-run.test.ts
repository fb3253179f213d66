/**
 * An image-folder run through the library: the checkpoint keeps the class names (inspect shows
 * them), and evaluating the checkpoint on the folder, read again, gives the trained model's figures.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import { describeCheckpoint, formatCheckpoint } from '../../src/checkpoint/inspect.js';
import { loadCheckpoint } from '../../src/checkpoint/locate.js';
import { parseRunConfig } from '../../src/config/load.js';
import { evaluateCheckpoint, evaluationData } from '../../src/train/checkpoint-model.js';
import { Trainer } from '../../src/train/trainer.js';

const dir = mkdtempSync(join(tmpdir(), 'ringtrain-images-run-'));

function png(level: number, size: number): Buffer {
  const image = new PNG({ width: size, height: size });
  for (let i = 0; i < size * size; i++) image.data.set([level, level, level, 255], i * 4);
  return PNG.sync.write(image);
}

describe('an image-folder run', () => {
  it('keeps its class names in the checkpoint, and the checkpoint evaluates as the trained model did', async () => {
    const images = join(dir, 'images');
    for (const [name, levels] of [['bright', [200, 220, 240, 250]], ['dark', [10, 20, 30, 40]]] as const) {
      mkdirSync(join(images, name), { recursive: true });
      levels.forEach((level, i) => writeFileSync(join(images, name, `${i}.png`), png(level, 8)));
    }
    const out = join(dir, 'run');
    const config = parseRunConfig({
      name: 'shades',
      model: { inputShape: [4, 4, 1], layers: [{ type: 'flatten' }, { type: 'dense', units: 2, activation: 'softmax' }] },
      data: { source: 'image-folder', dir: images, imageSize: [4, 4], channels: 1 },
      loss: 'sparseCategoricalCrossentropy',
      metrics: ['accuracy'],
      optimizer: { name: 'adam', learningRate: 0.1 },
      training: { epochs: 3, batchSize: 4 },
      parallel: { workers: 1 },
      output: { dir: out },
    });
    const trainer = await Trainer.create(config, { checkpoints: true });
    let trained;
    try {
      await trainer.fit();
      trained = await trainer.evaluate('train');
    } finally {
      await trainer.close();
    }
    const ckpt = await loadCheckpoint(out);
    expect(ckpt.dataInfo).toEqual({ classNames: ['bright', 'dark'], imageSize: [4, 4], channels: 1 });
    expect(formatCheckpoint(describeCheckpoint(ckpt, ckpt.file))).toContain('  classes    2: bright, dark\n');
    const data = await evaluationData(ckpt, images);
    const again = await evaluateCheckpoint(ckpt, data, { workers: 1 });
    expect(again.samples).toBe(8);
    // The same 8 images in another order: the same mean loss (to float rounding) and accuracy.
    expect(again.loss).toBeCloseTo(trained.loss, 5);
    expect(again.metrics.accuracy).toBe(trained.metrics.accuracy);
  }, 300_000);
});
