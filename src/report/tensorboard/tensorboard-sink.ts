/**
 * TensorBoard event files of a run, laid out as Keras's TensorBoard callback lays them out:
 * `<output.dir>/tensorboard/train/` and `.../validation/`, one event file per writer.
 *
 * train/: `epoch_loss`, `epoch_<metric>`, `epoch_learning_rate`, `epoch_samples_per_second` and
 * `epoch_sync_share` (the share of the replicas' step time spent in the gradient reduce-scatter
 * and the barrier) at step = epoch - 1 (Keras counts epochs from 0); the same as `batch_*` every
 * `report.tensorboard.everySteps` global steps (the epoch's running values, at step = the global
 * step); with `histograms`, `<weight>/histogram` per epoch; and the run config as text (`config`).
 * validation/: `epoch_loss` and `epoch_<metric>` of the validation data.
 *
 * Rank 0 alone writes them in a world of several processes (the values are the world's).
 */
import { join } from 'node:path';
import { OPTIMIZER_DEFAULTS } from '../../optim/create-optimizer.js';
import type { RunConfig } from '../../config/schema.js';
import type { MetricValues, TrainingEvent } from '../../train/events.js';
import type { PhaseTimes } from '../../train/replica-protocol.js';
import type { ReportSinkType } from '../sink.js';
import { EventFile } from './event-file.js';
import { histogramValue, scalarValue, textValue, type SummaryValue } from './summaries.js';

export const tensorboardSink: ReportSinkType = {
  events(config) {
    const { enabled, everySteps, histograms } = config.report.tensorboard;
    return enabled ? { stepsEvery: everySteps, weights: histograms } : {};
  },
  open({ config, rank }) {
    if (!config.report.tensorboard.enabled || rank !== 0) return undefined;
    const dir = join(config.output.dir, 'tensorboard');
    const train = new EventFile(join(dir, 'train'));
    let validation: EventFile | undefined;
    const files = () => [train, validation].filter((f) => f !== undefined);
    try {
      train.write(0, [textValue('config', configText(config))]);
    } catch (error) {
      train.close();
      throw error;
    }
    const { everySteps } = config.report.tensorboard;
    return {
      event(event) {
        switch (event.type) {
          case 'steps':
            if (everySteps > 0 && event.globalStep % everySteps === 0) train.write(event.globalStep, scalars('batch', event, config));
            break;
          case 'epoch':
            train.write(event.epoch - 1, scalars('epoch', event, config));
            if (event.validation) {
              validation ??= new EventFile(join(dir, 'validation'));
              validation.write(event.epoch - 1, lossAndMetrics('epoch', event.validation.loss, event.validation.metrics));
            }
            break;
          case 'weights':
            train.write(event.epoch - 1, event.weights.map((w) => histogramValue(`${w.name}/histogram`, w.values)));
            break;
        }
      },
      close() {
        for (const file of files()) file.close();
      },
    };
  },
};

function lossAndMetrics(prefix: string, loss: number, metrics: MetricValues): SummaryValue[] {
  return [scalarValue(`${prefix}_loss`, loss), ...Object.entries(metrics).map(([name, value]) => scalarValue(`${prefix}_${name}`, value))];
}

function scalars(prefix: string, event: Extract<TrainingEvent, { type: 'steps' | 'epoch' }>, config: RunConfig): SummaryValue[] {
  const values = lossAndMetrics(prefix, event.loss, event.metrics);
  values.push(scalarValue(`${prefix}_learning_rate`, learningRate(event, config)));
  values.push(scalarValue(`${prefix}_samples_per_second`, event.samplesPerSec));
  const share = syncShare(event.phaseTimes);
  if (share !== undefined) values.push(scalarValue(`${prefix}_sync_share`, share));
  return values;
}

/** The event's learning rate when it carries one (schedules), else the optimizer's. */
function learningRate(event: object, config: RunConfig): number {
  const carried = (event as { learningRate?: unknown }).learningRate;
  if (typeof carried === 'number') return carried;
  const configured = (config.optimizer as { learningRate?: unknown }).learningRate;
  return typeof configured === 'number' ? configured : OPTIMIZER_DEFAULTS[config.optimizer.name].learningRate;
}

/** Share of the step time in synchronisation: the gradient reduce-scatter and the barrier. */
export function syncShare(times: PhaseTimes): number | undefined {
  const total = Object.values(times).reduce((a, b) => a + b, 0);
  return total > 0 ? (times.reduceScatter + times.barrier) / total : undefined;
}

/** The config as the text plugin shows it (markdown: a code block). */
function configText(config: RunConfig): string {
  return `    ${JSON.stringify(config, null, 2).replace(/\n/g, '\n    ')}`;
}
