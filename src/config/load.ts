/**
 * Reading, validating and overriding run configs. Every failure is a ConfigError whose message
 * names where the problem is (JSON path, CLI flag, or file:line:column) and what was expected
 * and found; see format.ts for the message shapes.
 */
import os from 'node:os';
import path from 'node:path';
import type { z } from 'zod';
import { withDataDir } from '../data/load-data.js';
import { ConfigError } from '../errors.js';
import { FileRefusedError, READ_LIMITS, readRegularFile } from '../util/read-regular-file.js';
import { errorCode } from '../util/fs-errors.js';
import { configError, describeExpected, formatPath, formatValue, toConfigError } from './format.js';
import { findJsonSyntaxError } from './json.js';
import { checkDocumentLimits, maxWorkers, workersBoundReason } from './limits.js';
import {
  backendSchema,
  batchSizeSchema,
  dataDirSchema,
  epochsSchema,
  outputDirSchema,
  runConfigSchema,
  seedSchema,
  workersSchema,
  type RunConfig,
  type RunConfigContext,
} from './schema.js';

export type { RunConfig } from './schema.js';

const PARSE_OPTIONS = {
  reportInput: true,
  error: (issue: z.core.$ZodRawIssue) => describeExpected(issue),
} as const;

/**
 * Validates and normalizes a parsed JSON value.
 * @param options.baseDir folder a relative `model.topology` is resolved against.
 * @param options.defaultName name used when the config has no `name`.
 * @throws ConfigError naming the first problem (`training.batchSize: expected an integer >= 1, found 0`);
 *   further problems, if any, are listed in its `hint`.
 */
export function parseRunConfig(json: unknown, options: RunConfigContext = {}): RunConfig {
  checkSizes(json);
  const result = runConfigSchema(options).safeParse(json, PARSE_OPTIONS);
  if (!result.success) throw toConfigError(result.error.issues, json);
  return result.data;
}

/** The document's depth, string lengths, list lengths and widths (limits.ts), before the schema walks it. */
function checkSizes(json: unknown, file?: string): void {
  const problem = checkDocumentLimits(json);
  if (problem === undefined) return;
  const found = typeof problem.found === 'string' ? problem.found : formatValue(problem.found.value);
  throw configError({ path: formatPath(problem.path), message: `expected ${problem.expected}, found ${found}` }, file === undefined ? {} : { file });
}

/**
 * Reads and validates a run-config file. The name defaults to the file's base name (without
 * extension) and a relative `model.topology` is resolved against the file's folder.
 * Every error message starts with the file name (`configs/x.json: training.epochs: ...`);
 * malformed JSON is reported as `configs/x.json:3:5: malformed JSON: expected ..., found ...`.
 */
export async function loadRunConfig(file: string, options: Pick<RunConfigContext, 'machineChecks'> = {}): Promise<RunConfig> {
  let text: string;
  try {
    // A regular file of at most READ_LIMITS.config bytes: never /dev/zero, a FIFO or /proc.
    text = (await readRegularFile(file, { what: 'a config file', maxBytes: READ_LIMITS.config })).toString('utf8');
  } catch (error) {
    const code = errorCode((error as Error).cause ?? error);
    const reason =
      code === 'ENOENT'
        ? 'config file not found'
        : code === 'EISDIR'
          ? 'is a directory, not a config file'
          : error instanceof FileRefusedError
            ? error.reason
            : `cannot read the config file (${code ?? String(error)})`;
    throw configError({ path: '', message: reason }, { file });
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);

  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    const problem = findJsonSyntaxError(text);
    const where = problem === undefined ? file : `${file}:${problem.line}:${problem.column}`;
    const why = problem?.message ?? (error instanceof Error ? error.message : String(error));
    throw new ConfigError('', `${where}: malformed JSON: ${why}`, { cause: error });
  }

  checkSizes(json, file);
  const defaultName = path.basename(file, path.extname(file));
  const baseDir = path.dirname(path.resolve(file));
  const result = runConfigSchema({ baseDir, defaultName, machineChecks: options.machineChecks }).safeParse(json, PARSE_OPTIONS);
  if (!result.success) throw toConfigError(result.error.issues, json, { file });
  return result.data;
}

/** Command-line overrides of a config. Numbers may also come as decimal strings, as typed on a command line. */
export interface ConfigOverrides {
  workers?: number | 'auto' | string;
  epochs?: number | string;
  batchSize?: number | string;
  seed?: number | string;
  backend?: string;
  dataDir?: string;
  out?: string;
}

interface OverrideRule {
  flag: string;
  /** JSON path of the field it sets. */
  path: string;
  schema: z.ZodType;
  numeric: boolean;
  set(config: RunConfig, value: never): RunConfig;
}

const OVERRIDES: Record<keyof ConfigOverrides, OverrideRule> = {
  workers: {
    flag: '--workers',
    path: 'parallel.workers',
    schema: workersSchema,
    numeric: true,
    set: (c, workers: number | 'auto') => ({ ...c, parallel: { ...c.parallel, workers } }),
  },
  epochs: {
    flag: '--epochs',
    path: 'training.epochs',
    schema: epochsSchema,
    numeric: true,
    set: (c, epochs: number) => ({ ...c, training: { ...c.training, epochs } }),
  },
  batchSize: {
    flag: '--batch-size',
    path: 'training.batchSize',
    schema: batchSizeSchema,
    numeric: true,
    set: (c, batchSize: number) => ({ ...c, training: { ...c.training, batchSize } }),
  },
  seed: {
    flag: '--seed',
    path: 'training.seed',
    schema: seedSchema,
    numeric: true,
    set: (c, seed: number) => ({ ...c, training: { ...c.training, seed } }),
  },
  backend: {
    flag: '--backend',
    path: 'backend',
    schema: backendSchema,
    numeric: false,
    set: (c, backend: RunConfig['backend']) => ({ ...c, backend }),
  },
  dataDir: {
    flag: '--data-dir',
    path: 'data.dir',
    schema: dataDirSchema,
    numeric: false,
    set: (c, dir: string) => (c.data === undefined ? c : { ...c, data: withDataDir(c.data, dir) }),
  },
  out: {
    flag: '--out',
    path: 'output.dir',
    schema: outputDirSchema,
    numeric: false,
    // Checkpoints that live in the output folder by default move with it.
    set: (c, dir: string) => ({
      ...c,
      output: { ...c.output, dir },
      checkpoint: c.checkpoint.dir === path.join(c.output.dir, 'checkpoints') ? { ...c.checkpoint, dir: path.join(dir, 'checkpoints') } : c.checkpoint,
    }),
  },
};

/**
 * Returns `config` with the given command-line overrides applied, re-validated; `config` itself
 * is not modified. Undefined values are ignored, and so are keys that are not overrides (a CLI
 * may pass its whole flag object). Errors name the flag: `--batch-size: expected an integer >= 1, found 0`;
 * a problem of the config itself is prefixed with `file` when given. The result is checked
 * against this machine (loadRunConfig with machineChecks false leaves that to this call, so
 * that `--workers 2` can run a config written for a bigger machine).
 */
export function applyOverrides(config: RunConfig, overrides: ConfigOverrides, file?: string): RunConfig {
  let next = config;
  const flagOf = new Map<string, string>();
  for (const key of Object.keys(OVERRIDES) as (keyof ConfigOverrides)[]) {
    let value: unknown = overrides[key];
    if (value === undefined) continue;
    const rule = OVERRIDES[key];
    if (rule.numeric && typeof value === 'string' && /^\s*-?\d+(\.\d+)?\s*$/.test(value)) value = Number(value);
    const result = rule.schema.safeParse(value, PARSE_OPTIONS);
    if (!result.success) throw toConfigError(result.error.issues, value, { rename: () => rule.flag });
    next = rule.set(next, result.data as never);
    flagOf.set(rule.path, rule.flag);
  }
  // The whole config again, for checks across fields; a problem in an overridden field names its flag.
  const result = runConfigSchema().safeParse(next, PARSE_OPTIONS);
  if (!result.success) {
    const error = toConfigError(result.error.issues, next, { rename: (p) => flagOf.get(p) });
    // A problem in the file itself (not in a flag) names the file, as loadRunConfig does.
    if (file !== undefined && !error.path.startsWith('--')) error.message = `${file}: ${error.message}`;
    throw error;
  }
  return result.data;
}

/**
 * Replica threads of this process. "auto" shares the machine's cores among the
 * `processesOnHost` processes a launcher started on it (LOCAL_WORLD_SIZE), at least one each.
 */
export function resolveWorkers(workers: number | 'auto', processesOnHost = 1): number {
  const max = maxWorkers();
  if (workers === 'auto') return Math.max(1, Math.min(max, Math.floor(os.availableParallelism() / processesOnHost)));
  if (!Number.isInteger(workers) || workers < 1 || workers > max) {
    const why = Number.isInteger(workers) && workers > max ? ` (${workersBoundReason()})` : '';
    throw new ConfigError('parallel.workers', `expected an integer from 1 to ${max} or "auto", found ${formatValue(workers)}${why}`);
  }
  return workers;
}
