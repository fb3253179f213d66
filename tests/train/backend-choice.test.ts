/** Backend choice where tfjs-node is not installed (as on these machines). */
import { describe, expect, it } from 'vitest';
import { checkReplicasForBackend, resolveBackend, tensorflowAvailable } from '../../src/backend/select-backend.js';
import { parseRunConfig } from '../../src/config/load.js';
import { UserError } from '../../src/errors.js';
import { Trainer } from '../../src/train/trainer.js';

describe('backend choice', () => {
  it('auto picks wasm when tfjs-node is absent', async () => {
    expect(await tensorflowAvailable()).toBe(false);
    expect(await resolveBackend('auto')).toBe('wasm');
    expect(await resolveBackend('cpu')).toBe('cpu');
  });

  it('tfjs-node with more than one replica per process is refused with a clear message', () => {
    expect(() => checkReplicasForBackend('tensorflow', 2)).toThrow(
      'backend "tensorflow" (tfjs-node) supports one replica per process, but 2 workers were asked for',
    );
    expect(() => checkReplicasForBackend('tensorflow', 1)).not.toThrow();
    expect(() => checkReplicasForBackend('wasm', 8)).not.toThrow();
  });

  it('asking for the tensorflow backend where it is not installed is a user error, before any thread starts', async () => {
    const config = parseRunConfig({
      name: 'tf',
      model: { inputShape: [2], layers: [{ type: 'dense', units: 1 }] },
      data: 'xor',
      loss: 'mse',
      optimizer: 'sgd',
      training: { epochs: 1, batchSize: 4 },
      parallel: { workers: 1 },
      backend: 'tensorflow',
    });
    const error = await Trainer.create(config).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).toBe('backend "tensorflow" needs @tensorflow/tfjs-node, which is not installed or does not load here');
  });
});
