/** `ringtrain train <config>`: load the config, apply flags, train, report. */
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { readCheckpointFile } from '../checkpoint/format.js';
import { CheckpointStore, LATEST_POINTER } from '../checkpoint/store.js';
import { applyOverrides, loadRunConfig, type ConfigOverrides } from '../config/load.js';
import type { RunConfig } from '../config/schema.js';
import { DivergedError, UserError } from '../errors.js';
import { writeTorchElasticError } from '../launch/error-file.js';
import { launchLocal } from '../launch/local-launcher.js';
import { worldToken } from '../launch/token.js';
import { resolveWorld, type WorldFlags, type WorldSpec } from '../launch/world.js';
import { MetricsLog } from '../report/metrics-log.js';
import { chooseReportMode, createReporter } from '../report/reporter.js';
import { train, type TrainSummary } from '../train/run.js';
import type { TrainerOptions } from '../train/trainer.js';

export interface TrainFlags extends ConfigOverrides, WorldFlags {
  json?: boolean;
  /** "latest", "best", "auto" (latest if there is one), a checkpoint file name in the run's checkpoint folder, or a path. */
  resume?: string;
  /** Start this many processes on this machine, each running the command without this flag. */
  nprocPerNode?: number;
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

/**
 * `--resume auto`: the latest checkpoint when there is one, else a fresh start. A `latest`
 * pointer that is there but damaged is an error (from reading it), never a fresh start that
 * would write over the run's checkpoints.
 */
function resolveResume(config: RunConfig, resume: string | undefined): string | undefined {
  if (resume !== 'auto') return resume;
  return existsSync(path.join(config.checkpoint.dir, LATEST_POINTER)) ? 'latest' : undefined;
}

/** Runs `train` as N local processes (see launch/local-launcher.ts) and returns their exit code. */
export async function launchTrainProcesses(processes: number): Promise<number> {
  const argv = process.argv.slice(1).filter((arg, i, all) => !(arg === '--nproc-per-node' || all[i - 1] === '--nproc-per-node' || arg.startsWith('--nproc-per-node=')));
  return launchLocal({ processes, argv });
}

export async function trainCommand(configFile: string, flags: TrainFlags): Promise<TrainSummary | undefined> {
  const { json = false, resume, warmStart, checkpoints = true, checkpointEvery, nprocPerNode, rank, worldSize, masterAddr, masterPort, ...overrides } = flags;
  const world = resolveWorld({ rank, worldSize, masterAddr, masterPort }, process.env);
  if (nprocPerNode !== undefined) {
    if (world.contract !== 'none') throw new UserError(`--nproc-per-node starts a world of its own, but this process already has one from ${world.describe}`);
    process.exitCode = await launchTrainProcesses(nprocPerNode);
    return undefined;
  }
  try {
    return await trainInWorld(configFile, world, { json, resume, warmStart, checkpoints, checkpointEvery, overrides });
  } catch (error) {
    if (world.errorFile) writeTorchElasticError(world.errorFile, error as Error);
    // Only rank 0 speaks; the others' warnings and errors say whose they are.
    if (world.rank !== 0 && error instanceof Error) error.message = `[rank ${world.rank}] ${error.message}`;
    throw error;
  }
}

interface TrainChoices {
  json: boolean;
  resume: string | undefined;
  warmStart: string | undefined;
  checkpoints: boolean;
  checkpointEvery: number | undefined;
  overrides: ConfigOverrides;
}

async function trainInWorld(configFile: string, world: WorldSpec, choices: TrainChoices): Promise<TrainSummary> {
  const { json, warmStart, checkpointEvery, overrides } = choices;
  const leader = world.rank === 0;
  const say = (line: string) => process.stderr.write(leader ? `${line}\n` : `[rank ${world.rank}] ${line}\n`);
  let config = applyOverrides(await loadRunConfig(configFile), overrides);
  if (checkpointEvery !== undefined) config = { ...config, checkpoint: { ...config.checkpoint, everySteps: checkpointEvery } };
  // torchrun restarts a failed group with the same command: it must continue, not start over.
  const resume = resolveResume(config, choices.resume ?? (world.restartCount > 0 ? 'auto' : undefined));
  // Rank 0 alone writes checkpoints, logs and reports; it reads the checkpoint and the others
  // start from the state it broadcasts.
  const checkpoints = choices.checkpoints && leader;
  // Read (and verify) the checkpoint before anything starts: a bad file fails in a moment.
  const resumeFrom = resume === undefined || !leader ? undefined : await readCheckpoint(config, resume);
  const warmStartFrom = warmStart === undefined || !leader ? undefined : await readCheckpoint(config, warmStart);
  checkOutputFolder(config.output.dir, overrides.out !== undefined ? '--out' : 'output.dir');
  const reporter = leader ? createReporter(chooseReportMode(json, process.stdout)) : silentReporter;
  const log = config.output.metricsLog && leader ? new MetricsLog(config.output.dir, { append: resumeFrom !== undefined }) : undefined;
  if (world.contract !== 'none' && leader) say(`world: ${world.describe}`);
  // First SIGINT/SIGTERM: finish the step, checkpoint, exit 130/143. A second one: exit now
  // (checkpoints are written to a temporary file and renamed, so none is left half-written).
  const stop = new AbortController();
  let stopSignal: NodeJS.Signals | undefined;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopSignal) process.exit(EXIT_CODES[signal]);
    stopSignal = signal;
    say(`${signal}: stopping after the current step${checkpoints ? ' and writing a checkpoint' : ''} (again to exit at once)`);
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
      world: world.worldSize > 1 ? { spec: world, token: worldToken(world, process.env) } : undefined,
      faults: injectedFaults(process.env),
      onEvent(event) {
        // Said once the checkpoint has passed every check (a refused one gets its error line alone).
        if (event.type === 'start' && resumeFrom) say(`resuming from ${resumeFrom.file} (epoch ${resumeFrom.state.position.epoch + 1}, step ${resumeFrom.state.position.stepInEpoch})`);
        reporter.event(event);
        if (event.type === 'epoch') log?.write({ event: 'epoch', ...event, type: undefined });
      },
      // Notes go to stderr so that --json keeps stdout machine-readable; other ranks keep
      // theirs to themselves and say only warnings (and errors, raised to main).
      log: leader ? say : undefined,
      warn: say,
    });
    reporter.summary(summary);
    log?.write(summary);
    if (summary.stopped) {
      const { epoch, stepInEpoch, checkpoint } = summary.stopped;
      if (leader) {
        say(
          checkpoint
            ? `stopped at epoch ${epoch + 1}, step ${stepInEpoch}; checkpoint ${checkpoint}\nresume with: ringtrain train ${configFile} --resume latest`
            : `stopped at epoch ${epoch + 1}, step ${stepInEpoch} (no checkpoint: --no-checkpoints)`,
        );
      }
      process.exitCode = EXIT_CODES[stopSignal ?? 'SIGINT'];
    }
    return summary;
  } catch (error) {
    // Whatever failed, the checkpoints already written stay: say where to resume from (a
    // divergence names its last good checkpoint itself, and resuming as is would diverge again).
    if (checkpoints && !(error instanceof DivergedError)) {
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

/**
 * Test-only: RINGTRAIN_INJECT_FAULT='{"rank":0,"throwAtStep":5}' makes a replica of this process
 * fail (TrainerOptions.faults), so the tests can make one process of a world throw.
 */
function injectedFaults(env: NodeJS.ProcessEnv): TrainerOptions['faults'] {
  const text = env.RINGTRAIN_INJECT_FAULT;
  if (!text) return undefined;
  try {
    return JSON.parse(text) as TrainerOptions['faults'];
  } catch {
    throw new UserError(`RINGTRAIN_INJECT_FAULT: expected JSON such as {"rank":0,"throwAtStep":5}, found ${JSON.stringify(text)}`);
  }
}

const silentReporter = { event() {}, summary() {}, stop() {} };

const EXIT_CODES: Partial<Record<NodeJS.Signals, number>> & Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };
