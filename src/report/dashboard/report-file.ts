/**
 * report.html: a finished run's page (the dashboard's, with the run's data inside), readable
 * offline. Written into the run folder at the end of every run (by rank 0), through a temporary
 * file and a rename, so a reader never sees half of it.
 */
import { renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writingFile } from '../../util/fs-errors.js';
import type { ReportSinkType } from '../sink.js';
import { renderPage } from './page.js';
import { RunReader } from './run-data.js';

export const REPORT_FILE = 'report.html';

/** Writes `<dir>/report.html` from the run's metrics log and checkpoints; returns its path. Throws a FileWriteError naming the file. */
export async function writeRunReport(dir: string): Promise<string> {
  const run = await new RunReader(dir).read(dir, '.');
  const { html } = renderPage(`${run.name}: ringtrain report`, { mode: 'report', runs: [run], generatedAt: new Date().toISOString() });
  const file = path.join(dir, REPORT_FILE);
  const temporary = path.join(dir, `.${REPORT_FILE}.${process.pid}.tmp`);
  writingFile(file, 'write the run report', () => {
    try {
      writeFileSync(temporary, html);
      renameSync(temporary, file);
    } catch (error) {
      try {
        unlinkSync(temporary);
      } catch {
        // not created
      }
      throw error;
    }
  });
  return file;
}

/**
 * report.html as a report sink: rank 0 writes it once the metrics log holds the summary (so it
 * comes after metricsLogSink in sinks.ts). A failure to write it costs the run nothing: a warning.
 */
export const runReportSink: ReportSinkType = {
  open({ config, rank, say }) {
    if (rank !== 0 || !config.output.metricsLog) return undefined;
    return {
      event: () => {},
      summary: () => writeRunReport(config.output.dir).then(
        () => undefined,
        (error: unknown) => say(`warning: ${(error as Error).message}`),
      ),
    };
  },
};
