/** `ringtrain evaluate <checkpoint|run folder>`: loss and metrics on the run's test data or on data given, sharded over replicas. */
import type { Command } from 'commander';
import { loadCheckpoint } from '../checkpoint/locate.js';
import { formatMetrics } from '../report/format.js';
import { evaluateCheckpoint, evaluationData } from '../train/checkpoint-model.js';
import { workersOption } from './options.js';

export interface EvaluateFlags {
  dataDir?: string;
  json?: boolean;
  workers?: number | 'auto';
}

export async function evaluateCommand(ref: string, flags: EvaluateFlags): Promise<void> {
  const ckpt = await loadCheckpoint(ref);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const data = await evaluationData(ckpt, flags.dataDir, say);
  const evaluation = await evaluateCheckpoint(ckpt, data, { ...(flags.workers === undefined ? {} : { workers: flags.workers }), log: say, warn: say });
  const record = { event: 'evaluation', checkpoint: ckpt.file, data: data.name, ...evaluation };
  process.stdout.write(
    flags.json ? `${JSON.stringify(record)}\n` : `${ckpt.file} on ${data.name} (${evaluation.samples.toLocaleString('en-US')} samples): ${formatMetrics(evaluation.loss, evaluation.metrics)}\n`,
  );
}

export function registerEvaluate(program: Command): void {
  program
    .command('evaluate')
    .description("loss and metrics of a checkpoint on the run's test data, or on the data in --data-dir")
    .argument('<checkpoint>', 'a checkpoint file, a checkpoint or run folder (its latest), or folder/latest|best')
    .option('--data-dir <dir>', "labelled data read as the run read its own: the source's files, CSV file(s), or a folder of class subfolders")
    .option('--json', 'one JSON object: {event, checkpoint, data, samples, loss, metrics}')
    .option('--workers <n>', 'replicas: a number or "auto" (the machine\'s cores)', workersOption)
    .action(async (checkpoint: string, flags: EvaluateFlags) => {
      await evaluateCommand(checkpoint, flags);
    });
}
