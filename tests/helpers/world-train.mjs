// One process of a world for the multi-process tests: trains one epoch of a generated dataset
// with the given replicas per process and prints its final parameters (base64 float32) and its
// epoch record as one JSON line. Usage: node world-train.mjs '<json job>'
import { parseRunConfig } from '../../dist/config/load.js';
import { createSharedDataset } from '../../dist/data/dataset.js';
import { Trainer } from '../../dist/train/trainer.js';
import { mulberry32 } from '../../dist/util/random.js';

const job = JSON.parse(process.argv[2]);
const { config: configJson, samples, shape, workers, rank, worldSize, port, dataSeed } = job;

function generatedImages(count, featureShape, classes, seed) {
  const random = mulberry32(seed);
  const perSample = featureShape.reduce((a, b) => a * b, 1);
  const features = new Uint8Array(count * perSample).map(() => Math.floor(random() * 256));
  const labels = Float32Array.from({ length: count }, () => Math.floor(random() * classes));
  return createSharedDataset({ name: 'generated', featureShape, labelShape: [], features, labels, featureScale: 1 / 255 });
}

const config = parseRunConfig({ ...configJson, parallel: { ...configJson.parallel, workers } });
const spec = {
  contract: 'flags', rank, worldSize, localRank: rank, localWorldSize: worldSize,
  masterAddr: '127.0.0.1', masterPort: port, runId: 'test', restartCount: 0, describe: 'test world',
};
const trainer = await Trainer.create(config, {
  data: { train: generatedImages(samples, shape, 10, dataSeed) },
  world: worldSize > 1 ? { spec, token: 'test-token' } : undefined,
});
try {
  const [epoch] = await trainer.fit(1);
  const params = trainer.params();
  const nonTrainable = trainer.captureState().nonTrainable ?? new Float32Array(0);
  const base64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
  process.stdout.write(`${JSON.stringify({ rank, params: base64(params), nonTrainable: base64(nonTrainable), loss: epoch.loss, samples: epoch.samples, steps: epoch.steps })}\n`);
} finally {
  await trainer.close();
}
