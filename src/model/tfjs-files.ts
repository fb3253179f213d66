/**
 * TensorFlow.js model files (model.json + weights.bin) read and written with plain fs, so
 * neither tfjs-node nor a browser is needed: `tf.loadLayersModel(tfjsFileHandler(path))` loads
 * what `saveTfjsFiles` wrote, and so does tfjs-node's `file://` handler.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { ConfigError, UserError } from '../errors.js';
import { makeFolder, writingFile } from '../util/fs-errors.js';
import { READ_LIMITS, readRegularFileSync } from '../util/read-regular-file.js';
import { VERSION } from '../version.js';

interface ModelJson {
  modelTopology?: object;
  weightsManifest?: { paths: string[]; weights: tf.io.WeightsManifestEntry[] }[];
}

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';

export async function saveTfjsFiles(model: tf.LayersModel, dir: string): Promise<string> {
  writingFile(dir, 'create the model folder', () => makeFolder(dir));
  const file = join(dir, MODEL_JSON);
  await model.save(
    tf.io.withSaveHandler(async (artifacts) => {
      const weights = tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0));
      const weightsFile = join(dir, WEIGHTS_BIN);
      writingFile(weightsFile, 'write the model weights', () => writeFileSync(weightsFile, new Uint8Array(weights)));
      const json = {
        format: 'layers-model',
        generatedBy: `ringtrain ${VERSION}`,
        convertedBy: null,
        modelTopology: artifacts.modelTopology,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      writingFile(file, 'write the model description', () => writeFileSync(file, JSON.stringify(json)));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    }),
  );
  return file;
}

/** A model.json, read as a regular file of at most READ_LIMITS.modelJson bytes (a missing one is an error too). */
export function readModelJson(modelJsonPath: string): Buffer {
  return readRegularFileSync(modelJsonPath, { what: 'a TensorFlow.js model.json', maxBytes: READ_LIMITS.modelJson });
}

/** True when `modelJsonPath` names weight files that exist beside it. */
export function hasWeightFiles(modelJsonPath: string): boolean {
  let json: ModelJson;
  try {
    json = JSON.parse(readModelJson(modelJsonPath).toString('utf8')) as ModelJson;
  } catch (error) {
    // Not a regular file, or too large: said here, before anything else reads it.
    if (error instanceof UserError && (error.cause as NodeJS.ErrnoException | undefined)?.code !== 'ENOENT') throw new ConfigError('model.topology', error.message);
    return false; // building the model reports the missing or malformed file
  }
  const paths = json.weightsManifest?.flatMap((group) => group.paths) ?? [];
  return paths.length > 0 && paths.every((p) => existsSync(join(dirname(modelJsonPath), p)));
}

/** An IO handler that loads a model.json and its weight files from disk. */
export function tfjsFileHandler(modelJsonPath: string): tf.io.IOHandler {
  return {
    async load() {
      const json = JSON.parse(readModelJson(modelJsonPath).toString('utf8')) as ModelJson;
      if (!json.modelTopology) throw new UserError(`${modelJsonPath}: no modelTopology: not a TensorFlow.js layers model`);
      const groups = json.weightsManifest ?? [];
      const buffers = groups.flatMap((group) =>
        group.paths.map((p) => {
          const bytes = readRegularFileSync(join(dirname(modelJsonPath), p), { what: `a weights file of ${modelJsonPath}`, maxBytes: READ_LIMITS.weights });
          return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
        }),
      );
      return {
        modelTopology: json.modelTopology,
        weightSpecs: groups.flatMap((group) => group.weights),
        weightData: tf.io.CompositeArrayBuffer.join(buffers),
      };
    },
  };
}
