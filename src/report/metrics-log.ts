/** The run's metrics log: one JSON object per line (every epoch, then the summary); a new run starts it afresh, a resumed one appends. */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class MetricsLog {
  readonly file: string;

  constructor(dir: string, options: { append?: boolean } = {}) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'metrics.jsonl');
    // A resumed run carries on the log of the run it continues.
    if (!options.append) writeFileSync(this.file, '');
  }

  write(record: object): void {
    appendFileSync(this.file, `${JSON.stringify(record)}\n`);
  }
}
