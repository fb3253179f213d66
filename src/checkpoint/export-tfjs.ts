/** `ringtrain export`: a checkpoint as TensorFlow.js model files, loadable with tf.loadLayersModel. */
import * as tf from '@tensorflow/tfjs';
import { silenceCpuBanner } from '../backend/select-backend.js';
import { saveTfjsFiles } from '../model/tfjs-files.js';
import { CheckpointError } from './errors.js';
import type { CheckpointState } from './state.js';

/**
 * The non-trainable weights (BatchNormalization's moving statistics...) into the model: a
 * model that has some needs them from the checkpoint, or its predictions would silently differ
 * from the trained model's.
 */
function writeNonTrainable(model: tf.LayersModel, state: CheckpointState, file: string): void {
  const weights = model.nonTrainableWeights;
  if (weights.length === 0) return;
  const layout = state.nonTrainableLayout ?? [];
  const shapes = (list: readonly { shape: readonly (number | null)[] }[]) => list.map((w) => `[${w.shape.join(',')}]`).join(' ');
  if (!state.nonTrainable || shapes(weights) !== shapes(layout)) {
    const found = state.nonTrainable ? shapes(layout) : 'none (written by a ringtrain that did not save them)';
    throw new CheckpointError(file, 'contents', `invalid contents: nonTrainableLayout: expected the non-trainable weights of modelTopology ${shapes(weights)}, found ${found}`);
  }
  const values = state.nonTrainable;
  weights.forEach((weight, i) => {
    const entry = layout[i]!;
    weight.write(tf.tensor(values.slice(entry.offset, entry.offset + entry.size), entry.shape));
  });
}

/** `file` names the checkpoint in errors (a topology that builds no model, weights that do not fit it). */
export async function exportTfjs(state: CheckpointState, dir: string, file = 'the checkpoint'): Promise<string> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  silenceCpuBanner();
  try {
    let model: tf.LayersModel;
    try {
      model = await tf.models.modelFromJSON(state.modelTopology as tf.serialization.ConfigDict);
    } catch (error) {
      const why = String((error as Error)?.message ?? error).split('\n')[0];
      throw new CheckpointError(file, 'contents', `invalid contents: modelTopology: expected a TensorFlow.js model topology, found one that does not build (${why})`, { cause: error });
    }
    try {
      // The layout lists the trainable weights in the model's order.
      const shapes = (list: readonly { shape: readonly (number | null)[] }[]) => list.map((w) => `[${w.shape.join(',')}]`).join(' ');
      if (shapes(model.trainableWeights) !== shapes(state.layout)) {
        throw new CheckpointError(
          file,
          'contents',
          `invalid contents: layout: expected the weights of modelTopology ${shapes(model.trainableWeights) || '(none)'}, found ${shapes(state.layout)}`,
        );
      }
      model.trainableWeights.forEach((weight, i) => {
        const entry = state.layout[i]!;
        weight.write(tf.tensor(state.params.slice(entry.offset, entry.offset + entry.size), entry.shape));
      });
      writeNonTrainable(model, state, file);
      return await saveTfjsFiles(model, dir);
    } finally {
      model.dispose();
    }
  } finally {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  }
}
