/** The run's metrics log: one JSON object per line (every epoch, then the summary); a new run starts it afresh. */
import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class MetricsLog {
  readonly file: string;

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'metrics.jsonl');
    writeFileSync(this.file, '');
  }

  write(record: object): void {
    appendFileSync(this.file, `${JSON.stringify(record)}\n`);
  }
}
