/**
 * Bounds on the sizes a config may ask for, checked before anything is read or allocated, so
 * that a typo (an extra three zeros) ends in a one-line error instead of a machine out of
 * memory or a run that never finishes. Each bound says why it is what it is.
 */
import os from 'node:os';
// No import of format.ts or schema.ts here: schema.ts reads these bounds when it loads. The
// symbolic model build and the memory estimate are in src/model/inspect-layers.ts.

// ---------------------------------------------------------------------------------------------
// The JSON document
// ---------------------------------------------------------------------------------------------

/** Nesting levels below the document (model.layers[0].padding[0][1] is 5). */
export const MAX_DEPTH = 16;
/** Characters of any string: paths are at most 4096 bytes on Linux (PATH_MAX); every other string is a short name. */
export const MAX_STRING_LENGTH = 4096;
/** Items of any array (the longest a real config has is model.layers). */
export const MAX_ARRAY_LENGTH = 1024;
/** Keys of any object (the largest a real config has are the layers' arguments). */
export const MAX_OBJECT_KEYS = 256;

export interface DocumentProblem {
  path: PropertyKey[];
  expected: string;
  /** A description of what was found, or the value itself (a string, shown shortened). */
  found: string | { value: unknown };
}

/**
 * The first place where the parsed document is deeper, longer or wider than any config needs
 * (walked before the schema, which would otherwise spend time on a million-item array). The
 * walk stops at MAX_DEPTH, so it never recurses deeper than that.
 */
export function checkDocumentLimits(json: unknown): DocumentProblem | undefined {
  const walk = (value: unknown, path: PropertyKey[]): DocumentProblem | undefined => {
    if (typeof value === 'string') {
      if (value.length > MAX_STRING_LENGTH) {
        return { path, expected: `a string of at most ${MAX_STRING_LENGTH} characters`, found: { value } };
      }
      return undefined;
    }
    if (value === null || typeof value !== 'object') return undefined;
    if (path.length >= MAX_DEPTH) {
      return { path, expected: `a value nested at most ${MAX_DEPTH} levels deep`, found: `${Array.isArray(value) ? 'an array' : 'an object'} nested deeper` };
    }
    if (Array.isArray(value)) {
      if (value.length > MAX_ARRAY_LENGTH) {
        return { path, expected: `an array of at most ${MAX_ARRAY_LENGTH} items`, found: `${value.length} items` };
      }
      for (let i = 0; i < value.length; i++) {
        const problem = walk(value[i], [...path, i]);
        if (problem) return problem;
      }
      return undefined;
    }
    const keys = Object.keys(value);
    if (keys.length > MAX_OBJECT_KEYS) {
      return { path, expected: `an object of at most ${MAX_OBJECT_KEYS} fields`, found: `${keys.length} fields` };
    }
    for (const key of keys) {
      if (key.length > MAX_STRING_LENGTH) {
        return { path, expected: `field names of at most ${MAX_STRING_LENGTH} characters`, found: `one of ${key.length}` };
      }
      const problem = walk((value as Record<string, unknown>)[key], [...path, key]);
      if (problem) return problem;
    }
    return undefined;
  };
  return walk(json, []);
}

// ---------------------------------------------------------------------------------------------
// Replicas
// ---------------------------------------------------------------------------------------------

/** Replicas per core beyond which more only time-share the cores. */
export const WORKERS_PER_CORE = 4;
/** Whatever the machine: 256 replicas of xor took 7.1 GB (about 28 MB each) and never finished an epoch. */
export const MAX_WORKERS_ANY_MACHINE = 256;

// ---------------------------------------------------------------------------------------------
// This machine
// ---------------------------------------------------------------------------------------------

/**
 * TEST-ONLY: environment variables that make the checks below see a fixed machine, so that the
 * fuzz and limits suites give the same outcomes on every machine. They are read here and nowhere
 * else, and change only the bounds of config checks (never how many threads a run starts). Not
 * meant for users: a run configured past its machine's bounds is refused for a reason.
 */
export const TEST_CORES_ENV = 'RINGTRAIN_TEST_CORES';
export const TEST_TOTALMEM_ENV = 'RINGTRAIN_TEST_TOTALMEM';

function testOverride(name: string): number | undefined {
  const text = process.env[name];
  if (text === undefined || text === '') return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) && value >= 1 ? value : undefined;
}

/** The cores the config checks count with: os.availableParallelism() (or RINGTRAIN_TEST_CORES in tests). */
export function machineCores(): number {
  return testOverride(TEST_CORES_ENV) ?? os.availableParallelism();
}

/** The memory the config checks count with: os.totalmem() (or RINGTRAIN_TEST_TOTALMEM, bytes, in tests). */
export function machineMemory(): number {
  return testOverride(TEST_TOTALMEM_ENV) ?? os.totalmem();
}

/**
 * The most replicas (threads) one process may start on this machine: WORKERS_PER_CORE per core
 * (os.availableParallelism()), at most MAX_WORKERS_ANY_MACHINE. Each replica is a thread with its
 * own TensorFlow.js and model copy (about 28 MB before the model's weights), and a synchronous step
 * waits for the slowest: on 2 cores, 256 replicas of xor used 7.1 GB and never finished an epoch.
 * `cores` defaults to this machine's (machineCores()).
 */
export function maxWorkers(cores: number = machineCores()): number {
  return Math.max(1, Math.min(MAX_WORKERS_ANY_MACHINE, WORKERS_PER_CORE * cores));
}

export function workersBoundReason(cores: number = machineCores()): string {
  return `at most ${WORKERS_PER_CORE} replicas per core and this machine has ${cores}: more only share the cores, each is a thread with its own TensorFlow.js and model copy (about 28 MB), and every step waits for the slowest`;
}

// ---------------------------------------------------------------------------------------------
// Training sizes
// ---------------------------------------------------------------------------------------------

/** Epochs: a million epochs of one step each is already days of run; more is a typo. */
export const MAX_EPOCHS = 1_000_000;
/** Global batch size: 2^20 samples; the largest dataset here (mnist) has 60,000. */
export const MAX_BATCH_SIZE = 1 << 20;
/** Synthetic samples (data.samples): 10 million points already take 80 MB per split. */
export const MAX_SYNTHETIC_SAMPLES = 10_000_000;
/** Timers: Node fires a setTimeout longer than 2^31 - 1 ms (24.8 days) at once, which would declare every step stuck. */
export const MAX_TIMEOUT_MS = 2 ** 31 - 1;
/** model.layers: more than any model built from a list of layers. */
export const MAX_LAYERS = 1024;
/** model.inputShape dimensions (a sample of rank 5 makes tensors of rank 6, tfjs' limit for many ops). */
export const MAX_INPUT_RANK = 5;
/** The share of the machine's memory (os.totalmem()) a run's estimated model memory may take. */
export const MEMORY_SHARE = 0.5;

// ---------------------------------------------------------------------------------------------
// Sizes in messages
// ---------------------------------------------------------------------------------------------

export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return 'more than 10^300 bytes';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB', 'EB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  const shown = unit === 0 ? String(Math.round(value)) : value < 10 ? value.toFixed(1) : String(Math.round(value));
  return value >= 1000 ? `${bytes.toExponential(1)} bytes` : `${shown} ${units[unit]}`;
}

export function formatCount(n: number): string {
  return n < 1e15 ? Math.round(n).toLocaleString('en-US') : n.toExponential(2);
}
