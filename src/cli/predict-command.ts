/**
 * `ringtrain predict <checkpoint|run folder> <input>`: the model's predictions for a CSV file or
 * folder, a JSON array or images, as CSV (default) or JSON lines, on stdout or into --out FILE.
 * A classifier gives the predicted class (by name when the run's data named its classes) and the
 * probability of each class; other models give their outputs.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadCheckpoint, type LoadedCheckpoint } from '../checkpoint/locate.js';
import { UserError } from '../errors.js';
import { predictionInputs, predictWithCheckpoint } from '../train/checkpoint-model.js';
import { writingFile } from '../util/fs-errors.js';
import { workersOption } from './options.js';

export interface PredictFlags {
  format?: string;
  out?: string;
  workers?: number | 'auto';
}

const FORMATS = ['csv', 'jsonl'] as const;

/** Class names when the model is a classifier: the data's names, else the class ids. */
function classesOf(ckpt: LoadedCheckpoint, outputSize: number): string[] | undefined {
  const loss = ckpt.config.loss.name;
  const count = loss === 'binaryCrossentropy' && outputSize === 1 ? 2 : outputSize;
  if (loss === 'meanSquaredError' || (loss === 'binaryCrossentropy' && outputSize !== 1)) return undefined;
  const names = ckpt.dataInfo?.classNames;
  return names && names.length === count ? names : Array.from({ length: count }, (_, i) => String(i));
}

/** Each class's probability from one sample's outputs (softmax or sigmoid of logits when the loss takes logits). */
function probabilities(outputs: Float32Array, binary: boolean, fromLogits: boolean): number[] {
  if (binary) {
    const p = fromLogits ? 1 / (1 + Math.exp(-outputs[0]!)) : outputs[0]!;
    return [1 - p, p];
  }
  if (!fromLogits) return [...outputs];
  const max = Math.max(...outputs);
  const exps = [...outputs].map((v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

function csvCell(text: string): string {
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export async function predictCommand(ref: string, input: string, flags: PredictFlags): Promise<void> {
  const format = flags.format ?? 'csv';
  if (!(FORMATS as readonly string[]).includes(format)) throw new UserError(`--format: expected one of ${FORMATS.join(', ')}, found "${format}"`);
  const ckpt = await loadCheckpoint(ref);
  const inputs = await predictionInputs(ckpt, input);
  const say = (line: string) => process.stderr.write(`${line}\n`);
  const { outputs, outputSize } = await predictWithCheckpoint(ckpt, inputs.features, { ...(flags.workers === undefined ? {} : { workers: flags.workers }), warn: say });
  const classes = classesOf(ckpt, outputSize);
  const binary = classes !== undefined && outputSize === 1;
  const lines: string[] = [];
  if (format === 'csv') {
    lines.push(classes ? ['input', 'prediction', ...classes.map((c) => `p_${c}`)].map(csvCell).join(',') : ['input', ...(outputSize === 1 ? ['output'] : Array.from({ length: outputSize }, (_, i) => `output_${i}`))].join(','));
  }
  inputs.names.forEach((name, i) => {
    const out = outputs.subarray(i * outputSize, (i + 1) * outputSize);
    if (classes) {
      const p = probabilities(out, binary, ckpt.config.loss.fromLogits);
      const best = p.indexOf(Math.max(...p));
      lines.push(
        format === 'csv'
          ? [csvCell(name), csvCell(classes[best]!), ...p.map(String)].join(',')
          : JSON.stringify({ input: name, prediction: classes[best], probabilities: Object.fromEntries(classes.map((c, k) => [c, p[k]])) }),
      );
    } else {
      lines.push(format === 'csv' ? [csvCell(name), ...[...out].map(String)].join(',') : JSON.stringify({ input: name, outputs: [...out] }));
    }
  });
  const text = `${lines.join('\n')}\n`;
  if (flags.out === undefined) process.stdout.write(text);
  else {
    const file = flags.out;
    writingFile(file, 'write the predictions', () => writeFileSync(file, text));
    say(`${inputs.names.length} predictions written to ${file}`);
  }
}

export function registerPredict(program: Command): void {
  program
    .command('predict')
    .description('predictions of a checkpoint for a CSV file or folder, a JSON array of samples, or images')
    .argument('<checkpoint>', 'a checkpoint file, a checkpoint or run folder (its latest), or folder/latest|best')
    .argument('<input>', 'a .csv file or folder of them, a .json array of samples, or an image file or folder of images')
    .option('--format <format>', 'csv or jsonl', 'csv')
    .option('--out <file>', 'write the predictions to this file (default: stdout)')
    .option('--workers <n>', 'replicas: a number or "auto" (the machine\'s cores)', workersOption)
    .action(async (checkpoint: string, input: string, flags: PredictFlags) => {
      await predictCommand(checkpoint, input, flags);
    });
}
