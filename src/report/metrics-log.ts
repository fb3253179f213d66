/**
 * The run's metrics log: one JSON object per line, `event` naming its kind: `start` (the run's
 * shape and when it began), `progress` (the epoch's running loss and metrics, at most once per
 * `progressEveryMs`, so that readers such as the dashboard see a run move within an epoch),
 * `epoch`, `recovery`, then the `summary`. A new run starts it afresh, a resumed one appends.
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrainingEvent } from '../train/events.js';
import { makeFolder, writingFile } from '../util/fs-errors.js';
import type { ReportSinkType } from './sink.js';

/** A progress record a second at most: live curves within an epoch, a few kB a minute. */
export const DEFAULT_PROGRESS_EVERY_MS = 1000;

export class MetricsLog {
  readonly file: string;
  private readonly progressEveryMs: number;
  private lastProgressAt = -Infinity;

  /** Throws a FileWriteError (a UserError naming the file and the OS error) when the folder or the file cannot be written. */
  constructor(dir: string, options: { append?: boolean; progressEveryMs?: number } = {}) {
    this.file = join(dir, 'metrics.jsonl');
    this.progressEveryMs = options.progressEveryMs ?? DEFAULT_PROGRESS_EVERY_MS;
    writingFile(dir, 'create the output folder', () => makeFolder(dir));
    // A resumed run carries on the log of the run it continues.
    if (!options.append) writingFile(this.file, 'start the metrics log', () => writeFileSync(this.file, ''));
  }

  /** Logs what a reader of the run needs of a training event (progress records thinned out in time). */
  event(event: TrainingEvent): void {
    const { type, ...fields } = event;
    switch (event.type) {
      case 'start':
        this.write({ event: type, ...fields, startedAt: new Date().toISOString() });
        break;
      case 'progress': {
        // The epoch's last step is the epoch record that follows.
        const now = performance.now();
        if (event.step >= event.steps || now - this.lastProgressAt < this.progressEveryMs) break;
        this.lastProgressAt = now;
        this.write({ event: type, ...fields });
        break;
      }
      case 'epoch':
      case 'recovery':
        this.write({ event: type, ...fields });
        break;
    }
  }

  write(record: object): void {
    writingFile(this.file, 'append to the metrics log', () => appendFileSync(this.file, `${JSON.stringify(record)}\n`));
  }
}

/** `<output.dir>/metrics.jsonl` of rank 0, unless output.metricsLog is false: the records above, then the summary. */
export const metricsLogSink: ReportSinkType = {
  open({ config, rank, resumed }) {
    if (rank !== 0 || !config.output.metricsLog) return undefined;
    const log = new MetricsLog(config.output.dir, { append: resumed });
    return {
      event: (event) => log.event(event),
      summary: (summary) => log.write(summary),
    };
  },
};
