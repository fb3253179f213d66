/**
 * Shows a run to a person or a program: a Keras-like progress bar per epoch on a terminal,
 * one plain line per epoch elsewhere (CI, pipes), or JSON lines with --json.
 */
import cliProgress from 'cli-progress';
import type { TrainingEvent } from '../train/events.js';
import type { TrainSummary } from '../train/run.js';
import { formatLearningRate, formatMetrics, formatNumber, formatRate } from './format.js';
import type { ReportSinkType } from './sink.js';

export type ReportMode = 'tty' | 'plain' | 'json';

export interface Reporter {
  event(event: TrainingEvent): void;
  summary(summary: TrainSummary): void;
  /** Stops a progress bar that an error interrupted. */
  stop(): void;
}

export function chooseReportMode(json: boolean, stream: NodeJS.WriteStream): ReportMode {
  if (json) return 'json';
  return stream.isTTY ? 'tty' : 'plain';
}

export function createReporter(mode: ReportMode, out: NodeJS.WritableStream = process.stdout): Reporter {
  const line = (text: string) => out.write(`${text}\n`);
  if (mode === 'json') {
    return {
      event(event) {
        if (event.type === 'epoch' || event.type === 'recovery') line(JSON.stringify({ event: event.type, ...withoutType(event) }));
      },
      summary: (summary) => line(JSON.stringify(summary)),
      stop() {},
    };
  }
  let bar: cliProgress.SingleBar | undefined;
  const stopBar = () => {
    bar?.stop();
    bar = undefined;
  };
  return {
    event(event) {
      switch (event.type) {
        case 'start':
          line(`${event.name}: ${event.trainSamples.toLocaleString('en-US')} training samples, ${event.validationSamples.toLocaleString('en-US')} validation, ${event.parameters.toLocaleString('en-US')} parameters, ${describeReplicas(event.workers, event.processes, event.worldReplicas)} on backend ${event.backend}`);
          break;
        case 'progress':
          if (mode !== 'tty') break;
          if (!bar) {
            bar = new cliProgress.SingleBar(
              { format: `Epoch ${event.epoch} {value}/{total} [{bar}] {metrics} - {rate} - ETA {eta}s`, barsize: 30, hideCursor: true, clearOnComplete: true, stream: out as NodeJS.WriteStream },
              cliProgress.Presets.legacy,
            );
            bar.start(event.steps, 0, { metrics: '', rate: '' });
          }
          // As Keras shows them: "loss: 0.5712 - accuracy: 0.8123", the epoch's running means, then the step's learning rate.
          bar.update(event.step, { metrics: `${formatMetrics(event.loss, event.metrics)}${formatLearningRate(event.lr)}`, rate: formatRate(event.samplesPerSec) });
          break;
        case 'recovery':
          stopBar();
          line(`replica failure in epoch ${event.failedDuring.epoch}, steps ${event.failedDuring.fromStep}-${event.failedDuring.toStep - 1}: ${event.error}; restarted ${event.replicas} replica(s) from epoch ${event.resumedAt.epoch}, step ${event.resumedAt.step} in ${event.seconds.toFixed(1)}s (recovery ${event.attempt} of ${event.of})`);
          break;
        case 'epoch': {
          stopBar();
          const validation = event.validation ? ` - ${formatMetrics(event.validation.loss, event.validation.metrics, 'val_')}` : '';
          const skipped = event.skippedSteps > 0 ? ` - ${event.skippedSteps} steps skipped (non-finite)` : '';
          line(`Epoch ${event.epoch}/${event.epochs} - ${event.steps} steps - ${event.seconds.toFixed(1)}s - ${formatRate(event.samplesPerSec)} - ${formatMetrics(event.loss, event.metrics)}${validation}${formatLearningRate(event.lr)}${skipped}`);
          break;
        }
      }
    },
    summary(summary) {
      if (summary.stoppedEarly) line(`Stopped after epoch ${summary.stoppedEarly.epoch}: ${summary.stoppedEarly.reason}`);
      if (summary.evaluation) {
        const { on, samples, loss, metrics } = summary.evaluation;
        line(`${on === 'test' ? 'Test' : 'Training-data'} evaluation on ${samples.toLocaleString('en-US')} samples: ${formatMetrics(loss, metrics)}`);
      }
      for (const p of summary.params ?? []) line(`  ${p.name} [${p.shape.join('x')}] = ${p.values.map(formatNumber).join(', ')}`);
      line(`Trained ${summary.epochs} epoch(s) in ${summary.wallSeconds.toFixed(1)}s at ${formatRate(summary.samplesPerSec)} with ${describeReplicas(summary.workers, summary.processes, summary.replicas)} on ${summary.backend}`);
    },
    stop: stopBar,
  };
}

/** The console of rank 0 (the other ranks keep quiet). */
export const consoleSink: ReportSinkType = {
  open({ rank, flags, stdout }) {
    if (rank !== 0) return undefined;
    const reporter = createReporter(chooseReportMode(flags.json, stdout), stdout);
    return { event: reporter.event, summary: reporter.summary, close: reporter.stop };
  },
};

function withoutType<T extends { type: string }>(event: T): Omit<T, 'type'> {
  const { type: _type, ...rest } = event;
  return rest;
}

/** "2 replica(s)" alone; "2 processes x 1 replica(s) (2 in all)" in a world of several. */
function describeReplicas(workers: number, processes: number, worldReplicas: number): string {
  if (processes <= 1) return `${workers} replica(s)`;
  return `${processes} processes, ${worldReplicas} replica(s) in all (${workers} in this one)`;
}
