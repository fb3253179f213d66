/** The `ringtrain` command (started by main.ts). User errors print one line (and a hint) and exit with code 2. */
import { Command, CommanderError } from 'commander';
import { DivergedError, EXIT_DIVERGED, TrainingAbortedError, UserError } from '../errors.js';
import { oneLine } from '../util/one-line.js';
import { VERSION } from '../version.js';
import { exportCommand, inspectCommand } from './checkpoint-commands.js';
import { dashboardCommand } from './dashboard-command.js';
import { registerEvaluate } from './evaluate-command.js';
import { nonNegativeInteger, positiveInteger, workersOption } from './options.js';
import { registerPredict } from './predict-command.js';
import { trainCommand } from './train-command.js';

export function buildProgram(): Command {
  const program = new Command('ringtrain')
    .description('Synchronous data-parallel training of TensorFlow.js models on all CPU cores')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError(false);

  program
    .command('train')
    .description('train the run a config file describes')
    .argument('<config>', 'run config (JSON), e.g. configs/mnist-mlp.json')
    .option('--workers <n>', 'replicas: a number or "auto" (the machine\'s cores)', workersOption)
    .option('--epochs <n>', 'epochs to train', positiveInteger('--epochs'))
    .option('--batch-size <n>', 'global batch size', positiveInteger('--batch-size'))
    // Passed on as typed: the config check names the flag and the value found.
    .option('--seed <n>', 'seed of initial weights, shuffling and synthetic data')
    .option('--backend <name>', 'auto, wasm, cpu or tensorflow')
    .option('--data-dir <dir>', 'folder with the dataset files (no download)')
    .option('--out <dir>', 'output folder (metrics log)')
    .option('--json', 'one JSON object per line on stdout: each epoch, then the summary')
    .option('--resume <checkpoint>', 'continue a run: "latest", "best", "auto" (latest if any, else start fresh), a file in the run\'s checkpoint folder, or a path')
    .option('--warm-start <checkpoint>', 'start a new run from the weights of a checkpoint (a file, or a checkpoint or run folder)')
    .option('--checkpoint-every <steps>', 'also write a checkpoint every N global steps', nonNegativeInteger('--checkpoint-every'))
    .option('--no-checkpoints', 'write no checkpoints')
    .option('--trace <file>', 'write the run\'s timeline (Chrome trace: open it in ui.perfetto.dev); ranks other than 0 put .rank<k> before its extension')
    .option('--nproc-per-node <n>', 'start N processes on this machine (as torchrun --standalone) and train with all of them', positiveInteger('--nproc-per-node'))
    .option('--rank <n>', 'this process\'s rank in a world of several (else from torchrun, mpirun or Slurm variables)', nonNegativeInteger('--rank'))
    .option('--world-size <n>', 'processes in the world', positiveInteger('--world-size'))
    .option('--master-addr <host>', 'where rank 0 listens (default 127.0.0.1)')
    .option('--master-port <port>', 'the port rank 0 listens on (default 29500)', positiveInteger('--master-port'))
    .action(async (config: string, flags) => {
      await trainCommand(config, flags);
    });
  program
    .command('inspect')
    .description('show what a checkpoint holds (and verify it)')
    .argument('<checkpoint>', 'a checkpoint file, a checkpoint or run folder (its latest), or folder/latest|best')
    .option('--json', 'one JSON object')
    .action(async (checkpoint: string, flags: { json?: boolean }) => {
      await inspectCommand(checkpoint, flags);
    });

  program
    .command('export')
    .description('write a checkpoint as TensorFlow.js model files (model.json + weights.bin)')
    .argument('<checkpoint>', 'a checkpoint file, a checkpoint or run folder (its latest), or folder/latest|best')
    .argument('<dir>', 'output folder')
    .requiredOption('--format <format>', 'tfjs', 'tfjs')
    .action(async (checkpoint: string, dir: string, flags: { format: string }) => {
      await exportCommand(checkpoint, dir, flags);
    });
  program
    .command('dashboard')
    .description('serve a live web page of the runs under a folder, on 127.0.0.1')
    .argument('[dir]', 'folder of runs (searched 3 levels deep for metrics.jsonl)', 'runs')
    .option('--port <port>', 'port to listen on (default: a free one, printed)', nonNegativeInteger('--port'))
    .action(async (dir: string, flags: { port?: number }) => {
      await dashboardCommand(dir, flags);
    });
  registerEvaluate(program);
  registerPredict(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv);
    // A command may have set an exit code of its own (130 after SIGINT, for example).
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // commander has already printed its message (or the help/version text).
      return error.exitCode === 0 ? 0 : 2;
    }
    // The run diverged (non-finite loss or gradient): one line with where, and the last good checkpoint.
    if (error instanceof DivergedError) {
      process.stderr.write(`ringtrain: ${oneLine(error.message)}\n`);
      return EXIT_DIVERGED;
    }
    // Training stopped by a failure (a replica, or another process of the world, named with its
    // rank, host and step): one line, no stack, exit 1. torchrun's error file gets the stack.
    if (error instanceof TrainingAbortedError) {
      process.stderr.write(`ringtrain: ${oneLine(error.message)}\n`);
      return 1;
    }
    if (error instanceof UserError) {
      process.stderr.write(`ringtrain: ${oneLine(error.message)}\n`);
      if (error.hint) process.stderr.write(`hint: ${oneLine(error.hint)}\n`);
      return 2;
    }
    process.stderr.write(`ringtrain: internal error: ${(error as Error)?.stack ?? String(error)}\n`);
    return 1;
  }
}
