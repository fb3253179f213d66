/**
 * Zod issues → `path: expected X, found Y` messages.
 *
 * The schemas (schema.ts) set each zod message to the *expected* part only ("an integer >= 1");
 * this module adds the JSON path, what was found, and "did you mean" suggestions. Issues whose
 * schema sets no message get one from `describeExpected`, passed to zod as the per-parse error map.
 *
 * Message shapes:
 *   training.batchSize: expected an integer >= 1, found 0
 *   optimizer.name: expected one of sgd, adam, adamw, rmsprop, found "adma" (did you mean "adam"?)
 *   training.epochs: missing required field (expected an integer >= 1)
 *   training.batchSzie: unknown field (did you mean "batchSize"?)
 *   optimizer.beta1: not an option of optimizer sgd (sgd takes learningRate, momentum, nesterov)
 */
import type { z } from 'zod';
import { ConfigError } from '../errors.js';
import { knownFieldsAt, suggestField } from './schema.js';
import { closestMatch } from './suggest.js';

type Issue = z.core.$ZodIssue;
type RawIssue = z.core.$ZodRawIssue;

/** One problem of a config, ready to print. */
export interface ConfigProblem {
  /** JSON path like `model.layers[1].type` ('' for the whole document), or a CLI flag. */
  path: string;
  /** The text after `path: `. */
  message: string;
}

/** `training.batchSize`, `model.layers[1].type`, `data["odd key"]`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else if (typeof segment === 'string' && /^[A-Za-z_$][\w$]*$/.test(segment)) out += out === '' ? segment : `.${segment}`;
    else out += `[${JSON.stringify(String(segment))}]`;
  }
  return out;
}

/** How a found value is shown: JSON for short values, a description for long ones. */
export function formatValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (typeof value === 'number') return String(value); // NaN and Infinity too (JSON would say null)
  if (typeof value === 'bigint' || typeof value === 'symbol' || typeof value === 'function') return String(value);
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch {
    json = undefined;
  }
  if (json !== undefined && json.length <= 60) return json;
  if (typeof value === 'string') return `${JSON.stringify(value.slice(0, 40))}... (${value.length} characters)`;
  if (Array.isArray(value)) return `an array of ${value.length} items`;
  return 'an object';
}

const TYPE_NAMES: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  array: 'an array',
  null: 'null',
};

/**
 * The "expected" text for issues whose schema gave none (zod's per-parse error map).
 * Returns undefined for codes that `formatIssue` words itself.
 */
export function describeExpected(issue: RawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return TYPE_NAMES[issue.expected] ?? `a value of type ${issue.expected}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `${formatValue(issue.values[0])}`
        : `one of ${issue.values.map((v) => (typeof v === 'string' ? v : String(v))).join(', ')}`;
    case 'too_small': {
      const bound = Number(issue.minimum);
      if (issue.origin === 'array') return `an array of at least ${bound} item${bound === 1 ? '' : 's'}`;
      if (issue.origin === 'string') return bound === 1 ? 'a non-empty string' : `a string of at least ${bound} characters`;
      return `a number ${issue.inclusive ? '>=' : '>'} ${bound}`;
    }
    case 'too_big': {
      const bound = Number(issue.maximum);
      if (issue.origin === 'array') return `an array of at most ${bound} items`;
      if (issue.origin === 'string') return `a string of at most ${bound} characters`;
      return `a number ${issue.inclusive ? '<=' : '<'} ${bound}`;
    }
    case 'not_multiple_of':
      return `a multiple of ${issue.divisor}`;
    case 'invalid_format':
      return `a string in ${issue.format} format`;
    default:
      return undefined;
  }
}

/**
 * Where the issue should be reported. A shorthand such as `"optimizer": "adma"` is validated as
 * `{ "name": "adma" }`, so zod says `optimizer.name`; the user wrote a plain value at
 * `optimizer`, so the path is cut where the document holds a non-object.
 */
function visiblePath(path: readonly PropertyKey[], root: unknown): PropertyKey[] {
  let node = root;
  for (let i = 0; i < path.length; i++) {
    if (node === null || typeof node !== 'object') return path.slice(0, i);
    node = (node as Record<PropertyKey, unknown>)[path[i] as string];
  }
  return [...path];
}

function suggestion(found: unknown, candidates: readonly unknown[] | undefined): string {
  if (typeof found !== 'string' || candidates === undefined) return '';
  const match = closestMatch(
    found,
    candidates.filter((c): c is string => typeof c === 'string'),
  );
  return match === undefined ? '' : ` (did you mean ${JSON.stringify(match)}?)`;
}

function expectedFound(expected: string, found: unknown, hint = ''): string {
  if (found === undefined) return `missing required field (expected ${expected})`;
  return `expected ${expected}, found ${formatValue(found)}${hint}`;
}

/** The problems one zod issue stands for (an unknown-keys issue yields one per key). */
export function formatIssue(issue: Issue, root: unknown): ConfigProblem[] {
  const path = visiblePath(issue.path, root);
  const at = formatPath(path);
  const found = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownFieldsAt(formatPath(path.filter((s) => typeof s !== 'number')), found);
      return issue.keys.map((key) => {
        const match = suggestField(key, known);
        const help =
          match !== undefined
            ? ` (did you mean ${JSON.stringify(match)}?)`
            : known.length > 0
              ? ` (known fields: ${known.join(', ')})`
              : '';
        return { path: formatPath([...path, key]), message: `unknown field${help}` };
      });
    }
    case 'invalid_value':
      return [{ path: at, message: expectedFound(issue.message, found, suggestion(found, issue.values)) }];
    case 'custom': {
      const params = issue.params as { full?: boolean; suggestion?: string } | undefined;
      if (params?.full) return [{ path: at, message: issue.message }];
      const hint = params?.suggestion !== undefined ? ` (did you mean ${JSON.stringify(params.suggestion)}?)` : '';
      return [{ path: at, message: expectedFound(issue.message, found, hint) }];
    }
    case 'invalid_type':
    case 'too_small':
    case 'too_big':
    case 'not_multiple_of':
    case 'invalid_format':
    case 'invalid_union':
      return [{ path: at, message: expectedFound(issue.message, found) }];
    default:
      return [{ path: at, message: issue.message }];
  }
}

/** Unknown fields first: a misspelt key also makes its real key "missing", and the typo is the cause. */
function byRelevance(a: Issue, b: Issue): number {
  return Number(b.code === 'unrecognized_keys') - Number(a.code === 'unrecognized_keys');
}

/** Every problem of a failed parse, most useful first. */
export function formatIssues(issues: readonly Issue[], root: unknown): ConfigProblem[] {
  return [...issues].sort(byRelevance).flatMap((issue) => formatIssue(issue, root));
}

export interface ToErrorOptions {
  /** Prefix for the message, e.g. the config file name. */
  file?: string;
  /** Reports a problem under another name, e.g. a CLI flag instead of a JSON path. */
  rename?: (path: string) => string | undefined;
}

/** A ConfigError for a single problem, optionally prefixed by the config file's name. */
export function configError(problem: ConfigProblem, options: { file?: string; hint?: string } = {}): ConfigError {
  const error = new ConfigError(problem.path, problem.message, options.hint === undefined ? undefined : { hint: options.hint });
  if (options.file !== undefined) error.message = `${options.file}: ${error.message}`;
  return error;
}

/**
 * The ConfigError for a failed parse: its message is the first problem (one line, as the CLI
 * prints it); any further problems are listed in its `hint`.
 */
export function toConfigError(issues: readonly Issue[], root: unknown, options: ToErrorOptions = {}): ConfigError {
  const problems = formatIssues(issues, root).map((p) => ({ path: options.rename?.(p.path) ?? p.path, message: p.message }));
  const [first, ...rest] = problems;
  if (first === undefined) return configError({ path: '', message: 'invalid config' }, options);
  const hint =
    rest.length === 0
      ? undefined
      : `${rest.length} more problem${rest.length === 1 ? '' : 's'}: ${rest.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`;
  return configError(first, { ...(options.file === undefined ? {} : { file: options.file }), ...(hint === undefined ? {} : { hint }) });
}
