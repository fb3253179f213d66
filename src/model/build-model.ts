/**
 * Builds the tf.LayersModel a run config describes: a Keras-style list of tfjs-layers layers,
 * or a TensorFlow.js model.json topology. Initial weights come from the run seed (see
 * `withSeededRandom`), so every thread that builds the model with the same seed gets the same
 * weights, and the coordinator's copy is the one that counts.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors.js';
import { layerName } from './layer-name.js';
import { layerFactory, withNestedLayer } from './layers/index.js';
import { resolveRegularizerArgs } from './regularizer-args.js';
import { mulberry32 } from '../util/random.js';
import { READ_LIMITS, readRegularFile } from '../util/read-regular-file.js';

export interface LayerSpec {
  type: string;
  [arg: string]: unknown;
}

export type ModelSpec = { inputShape: number[]; layers: LayerSpec[] } | { topology: string };

export async function buildModel(spec: ModelSpec, seed: number): Promise<tf.LayersModel> {
  if ('topology' in spec) {
    const json = await readTopology(spec.topology);
    return withSeededRandom(seed, () => tf.models.modelFromJSON(json));
  }
  return withSeededRandom(seed, () => buildSequential(spec));
}

function buildSequential(spec: { inputShape: number[]; layers: LayerSpec[] }): tf.Sequential {
  // A fixed model name: tfjs would number it after the models built before in this process
  // (the config check builds one, so does reading a checkpoint's config), and the topology,
  // which the processes of a world compare at the rendezvous, would differ between them.
  const model = tf.sequential({ name: 'sequential' });
  spec.layers.forEach((layerSpec, index) => {
    const { type, ...args } = layerSpec;
    const factory = layerFactory(type);
    if (factory === undefined) {
      throw new ConfigError(`model.layers[${index}].type`, `unknown layer type "${type}"`);
    }
    const layerArgs: Record<string, unknown> = { name: layerName(type, index), ...args };
    if (index === 0 && layerArgs.inputShape === undefined && layerArgs.batchInputShape === undefined) {
      layerArgs.inputShape = spec.inputShape;
    }
    try {
      model.add(factory(withNestedLayer(resolveRegularizerArgs(layerArgs))));
    } catch (error) {
      throw new ConfigError(`model.layers[${index}]`, `cannot build ${type} layer: ${(error as Error).message}`, { cause: error });
    }
  });
  return model;
}

async function readTopology(file: string): Promise<tf.serialization.ConfigDict> {
  let text: string;
  try {
    text = (await readRegularFile(file, { what: 'a TensorFlow.js model.json', maxBytes: READ_LIMITS.modelJson })).toString('utf8');
  } catch (error) {
    const code = ((error as Error).cause as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'ENOENT') throw new ConfigError('model.topology', `cannot read ${file}: file not found`);
    throw new ConfigError('model.topology', (error as Error).message);
  }
  let json: { modelTopology?: object };
  try {
    json = JSON.parse(text) as { modelTopology?: object };
  } catch (error) {
    throw new ConfigError('model.topology', `${file} is not valid JSON: ${(error as Error).message}`);
  }
  // A model.json holds the topology under modelTopology; a bare topology is accepted too.
  return (json.modelTopology ?? json) as tf.serialization.ConfigDict;
}

/**
 * TF.js initialisers without an explicit seed draw their seed from Math.random; running the
 * build with Math.random replaced by a seeded generator makes initial weights depend on the
 * run seed only.
 */
export async function withSeededRandom<T>(seed: number, build: () => T | Promise<T>): Promise<T> {
  const original = Math.random;
  Math.random = mulberry32(seed);
  try {
    return await build();
  } finally {
    Math.random = original;
  }
}

/** withSeededRandom for synchronous work (a training step). */
export function withSeededRandomSync<T>(seed: number, work: () => T): T {
  const original = Math.random;
  Math.random = mulberry32(seed);
  try {
    return work();
  } finally {
    Math.random = original;
  }
}

