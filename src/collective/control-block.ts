/**
 * The control block: one Int32Array over a SharedArrayBuffer that every thread of a run maps.
 * It holds the abort word and the words that collectives wait on. Every wait has a deadline and
 * watches the abort word, so a dead or stuck replica becomes an error, never a hang.
 */
import { TrainingAbortedError } from '../errors.js';

const ABORT = 0;
const ABORT_ORIGIN = 1;
const BARRIER_COUNT = 2;
const BARRIER_GENERATION = 3;
/** 1 + the global step at which some replica saw a non-finite gradient or loss. */
const NON_FINITE_STEP = 4;
/**
 * The process bridge (process-bridge.ts): rounds deposited by the replicas, rounds the main
 * thread finished, the length and step of the round, and the replicas' flags for it.
 */
export const BridgeWord = { DEPOSITED: 5, FINISHED: 6, LENGTH: 7, STEP: 8, FLAGS: 9 } as const;
const MAILBOX_BASE = 10;
/** Two words per mailbox: sequence number written, sequence number consumed. */
const WORDS_PER_MAILBOX = 2;

/**
 * Spin this long before sleeping: most waits in a step end within a fraction of a millisecond,
 * and waking a sleeping thread costs tens of microseconds more on a virtual machine.
 * Spinning only pays while every thread has a core of its own (see `spinMicros`).
 */
const DEFAULT_SPIN_MICROS = 200;
/** Sleep in slices so the abort word and the deadline are seen even without a notify. */
const SLEEP_SLICE_MS = 50;

export class WaitTimeoutError extends TrainingAbortedError {
  constructor(what: string, timeoutMs: number) {
    super(`timed out after ${timeoutMs} ms waiting for ${what}`);
    this.name = 'WaitTimeoutError';
  }
}

export class ControlBlock {
  readonly words: Int32Array;

  constructor(
    readonly buffer: SharedArrayBuffer,
    /** Deadline of each single wait, in milliseconds. */
    readonly timeoutMs: number,
    /** How long a wait polls before it sleeps; 0 when threads outnumber cores. */
    readonly spinMicros = DEFAULT_SPIN_MICROS,
  ) {
    this.words = new Int32Array(buffer);
  }

  static allocate(mailboxes: number): SharedArrayBuffer {
    return new SharedArrayBuffer((MAILBOX_BASE + WORDS_PER_MAILBOX * mailboxes) * 4);
  }

  get aborted(): boolean {
    return Atomics.load(this.words, ABORT) !== 0;
  }

  /** Rank that raised the abort (-1 for the coordinator), or undefined while running. */
  get abortOrigin(): number | undefined {
    return this.aborted ? Atomics.load(this.words, ABORT_ORIGIN) - 1 : undefined;
  }

  /** Raises the abort word once and wakes every waiter on every word. */
  abort(origin: number): void {
    if (Atomics.compareExchange(this.words, ABORT, 0, 1) === 0) {
      Atomics.store(this.words, ABORT_ORIGIN, origin + 1);
    }
    for (let i = 0; i < this.words.length; i++) Atomics.notify(this.words, i);
  }

  throwIfAborted(): void {
    if (this.aborted) throw new TrainingAbortedError(`aborted by ${describeOrigin(this.abortOrigin!)}`);
  }

  /** Blocks while words[index] < value (a counter that only grows); abort and deadline as waitWhileEqual. */
  waitUntilAtLeast(index: number, value: number, what: string): void {
    for (let seen = Atomics.load(this.words, index); seen < value; seen = Atomics.load(this.words, index)) {
      this.waitWhileEqual(index, seen, what);
    }
  }

  /** Told of every wait that blocked (performance.now() milliseconds), e.g. for a trace. */
  waitObserver: ((startMs: number, endMs: number) => void) | undefined;

  /** Blocks while words[index] === value; throws on abort or when the deadline passes. */
  waitWhileEqual(index: number, value: number, what: string): void {
    if (Atomics.load(this.words, index) !== value) return;
    if (!this.waitObserver) return this.block(index, value, what);
    const start = performance.now();
    this.block(index, value, what);
    this.waitObserver(start, performance.now());
  }

  private block(index: number, value: number, what: string): void {
    const words = this.words;
    if (this.spinMicros > 0) {
      const spinUntil = performance.now() + this.spinMicros / 1000;
      do {
        for (let i = 0; i < 256; i++) if (Atomics.load(words, index) !== value) return;
      } while (performance.now() < spinUntil);
    }
    const deadline = Date.now() + this.timeoutMs;
    for (;;) {
      this.throwIfAborted();
      if (Atomics.load(words, index) !== value) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new WaitTimeoutError(what, this.timeoutMs);
      Atomics.wait(words, index, value, Math.min(left, SLEEP_SLICE_MS));
    }
  }

  /** Records that a replica saw a non-finite value at `step` (a global step number). */
  markNonFinite(step: number): void {
    Atomics.store(this.words, NON_FINITE_STEP, step + 1);
  }

  /** Whether any replica marked `step`; read after a barrier that follows the marking. */
  isNonFinite(step: number): boolean {
    return Atomics.load(this.words, NON_FINITE_STEP) === step + 1;
  }

  mailboxWord(mailbox: number, word: 0 | 1): number {
    return MAILBOX_BASE + WORDS_PER_MAILBOX * mailbox + word;
  }

  /**
   * A sense-reversing barrier over `parties` threads. Deadline and abort as for every wait.
   */
  barrier(parties: number, what = 'barrier'): void {
    const words = this.words;
    const generation = Atomics.load(words, BARRIER_GENERATION);
    if (Atomics.add(words, BARRIER_COUNT, 1) === parties - 1) {
      Atomics.store(words, BARRIER_COUNT, 0);
      Atomics.add(words, BARRIER_GENERATION, 1);
      Atomics.notify(words, BARRIER_GENERATION);
      return;
    }
    this.waitWhileEqual(BARRIER_GENERATION, generation, `the other replicas at the ${what}`);
  }
}

function describeOrigin(origin: number): string {
  return origin < 0 ? 'the coordinator' : `replica ${origin}`;
}
