/** `ringtrain train <config>`: load the config, apply flags, train, report. */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readCheckpointFile } from '../checkpoint/format.js';
import { resolveCheckpointPath } from '../checkpoint/locate.js';
import { CheckpointStore, LATEST_POINTER } from '../checkpoint/store.js';
import { applyOverrides, loadRunConfig, type ConfigOverrides } from '../config/load.js';
import type { RunConfig } from '../config/schema.js';
import { DivergedError, UserError } from '../errors.js';
import { configError } from '../config/format.js';
import { SIGNAL_EXIT_CODES, takeOverSignals } from './early-signals.js';
import { chooseOutputFolder, describeOutputs } from './output-folder.js';
import { writeTorchElasticError } from '../launch/error-file.js';
import { launchLocal } from '../launch/local-launcher.js';
import { worldToken } from '../launch/token.js';
import { resolveWorld, type WorldFlags, type WorldSpec } from '../launch/world.js';
import { openReportSinks, type ReportSinks } from '../report/sink.js';
import { REPORT_SINKS } from '../report/sinks.js';
import { CheckpointWriteError } from '../train/checkpointing.js';
import { train, type TrainSummary } from '../train/run.js';
import { checkRegularFile, checkWritableFolder, READ_LIMITS } from '../util/read-regular-file.js';
import { StartupStoppedError, throwIfStopped, untilStopped, type StartupPhase } from '../train/startup.js';
import type { TrainerOptions } from '../train/trainer.js';
import { assertWritableFolder, FileWriteError } from '../util/fs-errors.js';

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
  /** Write the run's timeline (Chrome trace) to this file. */
  trace?: string;
}

/** A name (latest, best, a file) in the run's checkpoint folder, or a path: a file, a checkpoint or run folder, …/latest. */
async function readCheckpoint(config: RunConfig, ref: string) {
  const isPath = path.isAbsolute(ref) || ref.includes('/') || ref.includes(path.sep);
  const file = isPath ? resolveCheckpointPath(ref) : new CheckpointStore(config.checkpoint.dir).resolve(ref);
  checkRegularFile(file, { what: 'a checkpoint file', maxBytes: READ_LIMITS.checkpoint });
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

/** Runs `train` as N local processes (see launch/local-launcher.ts), with `extraArgs` added, and returns their exit code. */
export async function launchTrainProcesses(processes: number, extraArgs: string[] = []): Promise<number> {
  const argv = process.argv.slice(1).filter((arg, i, all) => !(arg === '--nproc-per-node' || all[i - 1] === '--nproc-per-node' || arg.startsWith('--nproc-per-node=')));
  return launchLocal({ processes, argv: [...argv, ...extraArgs] });
}

/** --nproc-per-node: the run folder, chosen once for all the processes it starts (see output-folder.ts). */
async function folderForProcesses(configFile: string, overrides: ConfigOverrides, resuming: boolean): Promise<string[]> {
  const config = applyOverrides(await loadRunConfig(configFile, { machineChecks: false }), overrides, configFile);
  const choice = chooseOutputFolder(config, { resuming, launched: false, flag: overrides.out !== undefined ? '--out' : 'output.dir' });
  if (choice.movedFrom === undefined) return [];
  process.stderr.write(`${choice.movedFrom} holds an earlier run: this run writes to ${choice.config.output.dir}\n`);
  return ['--out', choice.config.output.dir];
}

export async function trainCommand(configFile: string, flags: TrainFlags): Promise<TrainSummary | undefined> {
  const { json = false, resume, warmStart, checkpoints = true, checkpointEvery, trace, nprocPerNode, rank, worldSize, masterAddr, masterPort, ...overrides } = flags;
  const world = resolveWorld({ rank, worldSize, masterAddr, masterPort }, process.env);
  if (nprocPerNode !== undefined) {
    if (world.contract !== 'none') throw new UserError(`--nproc-per-node starts a world of its own, but this process already has one from ${world.describe}`);
    // The launcher forwards SIGINT/SIGTERM to its processes and waits for them: main.ts's
    // exit-at-once handlers would end it first and leave them training.
    const folder = await folderForProcesses(configFile, overrides, resume !== undefined);
    const giveBackSignals = takeOverSignals();
    try {
      process.exitCode = await launchTrainProcesses(nprocPerNode, folder);
    } finally {
      giveBackSignals();
    }
    return undefined;
  }
  try {
    return await trainInWorld(configFile, world, { json, resume, warmStart, checkpoints, checkpointEvery, trace, overrides });
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
  trace: string | undefined;
  overrides: ConfigOverrides;
}

async function trainInWorld(configFile: string, world: WorldSpec, choices: TrainChoices): Promise<TrainSummary | undefined> {
  const { json, warmStart, checkpointEvery, overrides } = choices;
  const leader = world.rank === 0;
  const say = (line: string) => process.stderr.write(leader ? `${line}\n` : `[rank ${world.rank}] ${line}\n`);
  // SIGINT/SIGTERM are ours from here on (until now main.ts's handlers exit at once: nothing
  // was started that needs closing). Before the first step: stop starting, close
  // what was started, exit 130/143 (nothing trained, nothing to checkpoint). Once training:
  // finish the step, checkpoint, exit 130/143. A second one: exit now (checkpoints are written
  // to a temporary file and renamed, so none is left half-written).
  const stop = new AbortController();
  let stopSignal: 'SIGINT' | 'SIGTERM' | undefined;
  let training = false;
  let checkpoints = false;
  const onSignal = (signal: 'SIGINT' | 'SIGTERM') => {
    if (stopSignal) process.exit(SIGNAL_EXIT_CODES[signal]);
    stopSignal = signal;
    say(
      training
        ? `${signal}: stopping after the current step${checkpoints ? ' and writing a checkpoint' : ''} (again to exit at once)`
        : `${signal}: stopping before training begins (again to exit at once)`,
    );
    stop.abort();
  };
  const giveBackSignals = takeOverSignals();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const phase = startupPhases(process.env, stop.signal, say);
  const begin = async (name: StartupPhase) => {
    await phase(name);
    throwIfStopped(stop.signal, name);
  };
  let sinks: ReportSinks | undefined;
  let config: RunConfig | undefined;
  try {
    await begin('config');
    // With --workers or --batch-size, the checks against this machine (worker bound, memory)
    // wait until the flags are applied (--workers 2 runs a config written for a bigger machine);
    // without, the file is checked whole at once (its messages give this machine's bounds).
    const machineFlags = overrides.workers !== undefined || overrides.batchSize !== undefined;
    config = applyOverrides(await untilStopped(loadRunConfig(configFile, { machineChecks: !machineFlags }), stop.signal, 'config'), overrides, configFile);
    if (checkpointEvery !== undefined) config = { ...config, checkpoint: { ...config.checkpoint, everySteps: checkpointEvery } };
    // Only a program can pass its data in code (TrainerOptions.data): a config file names its data.
    if (config.data === undefined) throw configError({ path: 'data', message: 'missing required field (expected an object such as {"source": "mnist"})' }, { file: configFile });
    // A new run into a folder holding a run moves to the next free <out>-N (rank 0 alone writes there).
    let movedFrom: string | undefined;
    if (leader) {
      const resuming = choices.resume !== undefined || world.restartCount > 0;
      ({ config, movedFrom } = chooseOutputFolder(config, { resuming, launched: world.contract !== 'none', flag: overrides.out !== undefined ? '--out' : 'output.dir' }));
    }
    // The folders to write in are checked once the config names them, before the checkpoint
    // and the data are read and anything is started.
    checkWritableFolder(config.output.dir, overrides.out !== undefined ? '--out' : 'output.dir');
    // Rank 0 alone writes checkpoints, logs and reports; it reads the checkpoint and the others
    // start from the state it broadcasts.
    checkpoints = choices.checkpoints && leader;
    if (checkpoints) checkWritableFolder(config.checkpoint.dir, 'checkpoint.dir');
    // The output folder must take files before the checkpoint and the data are read. The
    // checkpoint folder is made and probed by the trainer (Trainer.create), after the checkpoint
    // was read and before the data are loaded, as it removes leftovers of interrupted writes.
    if (leader && config.output.metricsLog) assertWritableFolder(config.output.dir, 'the output folder');
    await begin('checkpoint');
    // torchrun restarts a failed group with the same command: it must continue, not start over.
    const resume = resolveResume(config, choices.resume ?? (world.restartCount > 0 ? 'auto' : undefined));
    // Read (and verify) the checkpoint before anything starts: a bad file fails in a moment.
    const read = (ref: string) => untilStopped(readCheckpoint(config!, ref), stop.signal, 'checkpoint');
    const resumeFrom = resume === undefined || !leader ? undefined : await read(resume);
    const warmStartFrom = warmStart === undefined || !leader ? undefined : await read(warmStart);
    // The console, the metrics log, TensorBoard, the trace (src/report/sinks.ts): rank 0's, except the trace.
    const report = openReportSinks(REPORT_SINKS, { config, rank: world.rank, resumed: resumeFrom !== undefined, flags: { json, trace: choices.trace }, stdout: process.stdout, say });
    sinks = report;
    if (world.contract !== 'none' && leader) say(`world: ${world.describe}`);
    const summary = await train(config, {
      resume: resumeFrom,
      warmStart: warmStartFrom,
      checkpoints,
      signal: stop.signal,
      onStartupPhase: phase,
      world: world.worldSize > 1 ? { spec: world, token: worldToken(world, process.env) } : undefined,
      faults: injectedFaults(process.env),
      reportEvents: report.events,
      onEvent(event) {
        if (event.type === 'start') {
          training = true;
          if (leader) say(describeOutputs(config!, { checkpoints, movedFrom }));
          // Said once the checkpoint has passed every check (a refused one gets its error line alone).
          if (resumeFrom) say(`resuming from ${resumeFrom.file} (epoch ${resumeFrom.state.position.epoch + 1}, step ${resumeFrom.state.position.stepInEpoch})`);
        }
        report.event(event);
      },
      // Notes go to stderr so that --json keeps stdout machine-readable; other ranks keep
      // theirs to themselves and say only warnings (and errors, raised to main).
      log: leader ? say : undefined,
      warn: say,
    });
    await report.summary(summary);
    report.close();
    if (summary.stopped) {
      const { epoch, stepInEpoch, checkpoint } = summary.stopped;
      if (leader) {
        const at = `stopped at epoch ${epoch + 1}, step ${stepInEpoch}`;
        say(
          checkpoint
            ? `${at}; checkpoint ${checkpoint}\nresume with: ringtrain train ${configFile} --resume latest`
            : checkpoints
              ? `${at}, before any step of this run (no checkpoint written)`
              : `${at} (no checkpoint: --no-checkpoints)`,
        );
      }
      const code = SIGNAL_EXIT_CODES[stopSignal ?? 'SIGINT'];
      process.exitCode = code;
      exitSoon(code);
    }
    return summary;
  } catch (error) {
    if (error instanceof StartupStoppedError && stopSignal) {
      // Everything started so far was closed on the way out (see Trainer.create).
      say(`stopped while starting (${error.phase}), before training began: no checkpoint written`);
      const code = SIGNAL_EXIT_CODES[stopSignal];
      process.exitCode = code;
      exitSoon(code);
      return undefined;
    }
    // A failure once training began leaves the checkpoints already written: say where to resume
    // from (a failed checkpoint write names the last good one itself, and so does a divergence,
    // which would diverge again if resumed as is; a failed write of another file says it on the
    // same line). A run refused before training began (a refused --resume, the model pre-check,
    // a refused folder) gets its error line alone: resuming may be exactly what failed.
    if (training && checkpoints && config && !(error instanceof CheckpointWriteError) && !(error instanceof DivergedError)) {
      let latest: string | undefined;
      try {
        latest = new CheckpointStore(config.checkpoint.dir).resolve('latest');
      } catch {
        // no checkpoint yet
      }
      if (error instanceof FileWriteError) error.message += `; last good checkpoint: ${latest ?? 'none'}`;
      else if (latest) process.stderr.write(`the last good checkpoint is ${latest}; resume with: ringtrain train ${configFile} --resume latest\n`);
    }
    throw error;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    giveBackSignals();
    try {
      sinks?.close();
    } catch {
      // closing after an error: that error is the one to report
    }
  }
}

/**
 * After a stop request, the process exits with `code` once the run is closed; should anything
 * not yet closed keep it alive (a data download still running, say), it exits a moment later anyway.
 */
function exitSoon(code: number): void {
  setTimeout(() => process.exit(code), STOP_GRACE_MS).unref();
}

const STOP_GRACE_MS = 2_000;

/**
 * The start-up phase hook. Test-only: RINGTRAIN_TEST_HOLD_AT=<phase> (config, checkpoint, data,
 * rendezvous, replicas) says "test hold: <phase>" on stderr as that phase begins and waits there
 * until a stop is requested (at most 60 s), so tests can signal a run at a known phase.
 */
function startupPhases(env: NodeJS.ProcessEnv, signal: AbortSignal, say: (line: string) => void): (phase: StartupPhase) => Promise<void> {
  const holdAt = env.RINGTRAIN_TEST_HOLD_AT;
  return async (phase) => {
    if (phase !== holdAt || signal.aborted) return;
    say(`test hold: ${phase}`);
    await new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, 60_000);
      signal.addEventListener('abort', done, { once: true });
    });
  };
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

