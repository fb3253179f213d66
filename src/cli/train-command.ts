/** `ringtrain train <config>`: load the config, apply flags, train, report. */
import { existsSync, statSync } from 'node:fs';
import { readCheckpointFile } from '../checkpoint/format.js';
import { CheckpointStore } from '../checkpoint/store.js';
import { applyOverrides, loadRunConfig, type ConfigOverrides } from '../config/load.js';
import type { RunConfig } from '../config/schema.js';
import { UserError } from '../errors.js';
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

function checkOutputFolder(dir: string, field: string): void {
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UserError(`${field}: ${dir} is a file, not a folder`);
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
  checkOutputFolder(config.output.dir, overrides.out !== undefined ? '--out' : 'output.dir');
  const reporter = createReporter(chooseReportMode(json, process.stdout));
  const log = config.output.metricsLog ? new MetricsLog(config.output.dir, { append: resumeFrom !== undefined }) : undefined;
  if (resumeFrom) process.stderr.write(`resuming from ${resumeFrom.file} (epoch ${resumeFrom.state.position.epoch + 1}, step ${resumeFrom.state.position.stepInEpoch})\n`);
  // First SIGINT/SIGTERM: finish the step, checkpoint, exit 130/143. A second one: exit now
  // (checkpoints are written to a temporary file and renamed, so none is left half-written).
  const stop = new AbortController();
  let stopSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopSignal) process.exit(EXIT_CODES[signal]);
    stopSignal = signal;
    process.stderr.write(`\n${signal}: stopping after the current step${checkpoints ? ' and writing a checkpoint' : ''} (again to exit at once)\n`);
    stop.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    const summary = await train(config, {
      resume: resumeFrom,
      warmStart: warmStartFrom,
      checkpoints,
      signal: stop.signal,
      onEvent(event) {
        reporter.event(event);
        if (event.type === 'epoch') log?.write({ event: 'epoch', ...event, type: undefined });
      },
      // Notes go to stderr so that --json keeps stdout machine-readable.
      log: (line) => process.stderr.write(`${line}\n`),
    });
    reporter.summary(summary);
    log?.write(summary);
    if (summary.stopped) {
      const { epoch, stepInEpoch, checkpoint } = summary.stopped;
      process.stderr.write(
        checkpoint
          ? `stopped at epoch ${epoch + 1}, step ${stepInEpoch}; checkpoint ${checkpoint}\nresume with: ringtrain train ${configFile} --resume latest\n`
          : `stopped at epoch ${epoch + 1}, step ${stepInEpoch} (no checkpoint: --no-checkpoints)\n`,
      );
      process.exitCode = EXIT_CODES[stopSignal ?? 'SIGINT'];
    }
    return summary;
  } catch (error) {
    // Whatever failed, the checkpoints already written stay: say where to resume from.
    if (checkpoints) {
      try {
        const latest = new CheckpointStore(config.checkpoint.dir).resolve('latest');
        process.stderr.write(`the last good checkpoint is ${latest}; resume with: ringtrain train ${configFile} --resume latest\n`);
      } catch {
        // no checkpoint yet
      }
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    reporter.stop();
  }
}

const EXIT_CODES: Partial<Record<NodeJS.Signals, number>> & Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };
