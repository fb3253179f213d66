/** `ringtrain train <config>`: load the config, apply flags, train, report. */
import { applyOverrides, loadRunConfig, type ConfigOverrides } from '../config/load.js';
import { MetricsLog } from '../report/metrics-log.js';
import { chooseReportMode, createReporter } from '../report/reporter.js';
import { train, type TrainSummary } from '../train/run.js';

export interface TrainFlags extends ConfigOverrides {
  json?: boolean;
}

export async function trainCommand(configFile: string, flags: TrainFlags): Promise<TrainSummary> {
  const { json = false, ...overrides } = flags;
  const config = applyOverrides(await loadRunConfig(configFile), overrides);
  const reporter = createReporter(chooseReportMode(json, process.stdout));
  const log = config.output.metricsLog ? new MetricsLog(config.output.dir) : undefined;
  try {
    const summary = await train(config, {
      onEvent(event) {
        reporter.event(event);
        if (event.type === 'epoch') log?.write({ event: 'epoch', ...event, type: undefined });
      },
      // Notes go to stderr so that --json keeps stdout machine-readable.
      log: (line) => process.stderr.write(`${line}\n`),
    });
    reporter.summary(summary);
    log?.write(summary);
    return summary;
  } finally {
    reporter.stop();
  }
}
