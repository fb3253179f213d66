/** `ringtrain export`: a checkpoint as TensorFlow.js model files, loadable with tf.loadLayersModel. */
import * as tf from '@tensorflow/tfjs';
import { silenceCpuBanner } from '../backend/select-backend.js';
import { saveTfjsFiles } from '../model/tfjs-files.js';
import type { CheckpointState } from './state.js';

export async function exportTfjs(state: CheckpointState, dir: string): Promise<string> {
  const previous = tf.getBackend();
  await tf.setBackend('cpu');
  silenceCpuBanner();
  try {
    const model = await tf.models.modelFromJSON(state.modelTopology as tf.serialization.ConfigDict);
    // The layout lists the trainable weights in the model's order.
    model.trainableWeights.forEach((weight, i) => {
      const entry = state.layout[i]!;
      weight.write(tf.tensor(state.params.slice(entry.offset, entry.offset + entry.size), entry.shape));
    });
    const file = await saveTfjsFiles(model, dir);
    model.dispose();
    return file;
  } finally {
    if (previous && previous !== 'cpu') await tf.setBackend(previous);
  }
}
