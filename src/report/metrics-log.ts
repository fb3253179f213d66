/** The run's metrics log: one JSON object per line (every epoch, then the summary); a new run starts it afresh, a resumed one appends. */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeFolder, writingFile } from '../util/fs-errors.js';
import type { ReportSinkType } from './sink.js';

export class MetricsLog {
  readonly file: string;

  /** Throws a FileWriteError (a UserError naming the file and the OS error) when the folder or the file cannot be written. */
  constructor(dir: string, options: { append?: boolean } = {}) {
    this.file = join(dir, 'metrics.jsonl');
    writingFile(dir, 'create the output folder', () => makeFolder(dir));
    // A resumed run carries on the log of the run it continues.
    if (!options.append) writingFile(this.file, 'start the metrics log', () => writeFileSync(this.file, ''));
  }

  write(record: object): void {
    writingFile(this.file, 'append to the metrics log', () => appendFileSync(this.file, `${JSON.stringify(record)}\n`));
  }
}

/** `<output.dir>/metrics.jsonl` of rank 0, unless output.metricsLog is false: each epoch, then the summary. */
export const metricsLogSink: ReportSinkType = {
  open({ config, rank, resumed }) {
    if (rank !== 0 || !config.output.metricsLog) return undefined;
    const log = new MetricsLog(config.output.dir, { append: resumed });
    return {
      event(event) {
        if (event.type === 'epoch') log.write({ event: 'epoch', ...event, type: undefined });
      },
      summary: (summary) => log.write(summary),
    };
  },
};
