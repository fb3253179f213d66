/**
 * Loads, validates and pre-checks config files as `ringtrain train FILE` does before anything
 * else (loadRunConfig, then applyOverrides with the command-line values), for the config fuzz
 * suite. It runs in a worker thread so that the suite can give each case a real deadline:
 * a synchronous loop in the checks is ended by terminating the thread.
 * Uses the compiled code (dist/, built by `npm test`'s pretest), like the CLI tests.
 */
import { parentPort } from 'node:worker_threads';

const { loadRunConfig, applyOverrides } = await import(new URL('../../dist/config/load.js', import.meta.url).href);
const { UserError } = await import(new URL('../../dist/errors.js', import.meta.url).href);
const { inspectLayers } = await import(new URL('../../dist/model/inspect-layers.js', import.meta.url).href);

parentPort.on('message', async ({ id, file, overrides }) => {
  const started = performance.now();
  try {
    const config = applyOverrides(await loadRunConfig(file), overrides);
    const ms = performance.now() - started;
    const topology = 'topology' in config.model;
    const inspection = topology ? undefined : inspectLayers(config.model.inputShape, config.model.layers);
    parentPort.postMessage({ id, outcome: 'accepted', source: config.data.source, topology, params: inspection?.params, ms });
  } catch (error) {
    const user = error instanceof UserError;
    parentPort.postMessage({
      id,
      outcome: user ? 'refused' : 'crashed',
      name: error?.name,
      message: String(error?.message ?? error),
      hint: error?.hint,
      path: error?.path,
      stack: user ? undefined : String(error?.stack ?? error),
      ms: performance.now() - started,
    });
  }
});
parentPort.postMessage({ ready: true });
