/** `ringtrain train <config>`: load the config, apply flags, train, report. */
import { readCheckpointFile } from '../checkpoint/format.js';
import { CheckpointStore } from '../checkpoint/store.js';
import { applyOverrides, loadRunConfig, type ConfigOverrides } from '../config/load.js';
import type { RunConfig } from '../config/schema.js';
import { MetricsLog } from '../report/metrics-log.js';
import { chooseReportMode, createReporter } from '../report/reporter.js';
import { train, type TrainSummary } from '../train/run.js';

export interface TrainFlags extends ConfigOverrides {
  json?: boolean;
  /** "latest", "best", a checkpoint file name in the run's checkpoint folder, or a path. */
  resume?: string;
  warmStart?: string;
  /** commander's --no-checkpoints */
  checkpoints?: boolean;
  checkpointEvery?: number;
}

async function readCheckpoint(config: RunConfig, ref: string) {
  const file = new CheckpointStore(config.checkpoint.dir).resolve(ref);
  return { file, state: await readCheckpointFile(file) };
}

export async function trainCommand(configFile: string, flags: TrainFlags): Promise<TrainSummary> {
  const { json = false, resume, warmStart, checkpoints = true, checkpointEvery, ...overrides } = flags;
  let config = applyOverrides(await loadRunConfig(configFile), overrides);
  if (checkpointEvery !== undefined) config = { ...config, checkpoint: { ...config.checkpoint, everySteps: checkpointEvery } };
  // Read (and verify) the checkpoint before anything starts: a bad file fails in a moment.
  const resumeFrom = resume === undefined ? undefined : await readCheckpoint(config, resume);
  const warmStartFrom = warmStart === undefined ? undefined : await readCheckpoint(config, warmStart);
  const reporter = createReporter(chooseReportMode(json, process.stdout));
  const log = config.output.metricsLog ? new MetricsLog(config.output.dir, { append: resumeFrom !== undefined }) : undefined;
  if (resumeFrom) process.stderr.write(`resuming from ${resumeFrom.file} (epoch ${resumeFrom.state.position.epoch + 1}, step ${resumeFrom.state.position.stepInEpoch})\n`);
  try {
    const summary = await train(config, {
      resume: resumeFrom,
      warmStart: warmStartFrom,
      checkpoints,
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
