/**
 * A replica's timeline, recorded only while tracing (--trace): spans of each step's phases, of
 * the collective operations inside them and of every wait that blocked. Spans go into a
 * Float64Array (kind, start, end: seconds on this thread's clock) that runSteps returns with its
 * result; the coordinator turns them into trace events (decodeReplicaSpans).
 *
 * The step loop's timing lines stay as they are: a recording PhaseTimes turns each
 * `times.x += now() - t` into a span that ends at the last clock reading, `now()`'s.
 */
import type { TraceSpan } from './events.js';
import type { PhaseTimes } from './replica-protocol.js';
import { zeroPhaseTimes } from './replica-protocol.js';

/** Names of the span kinds, by code. */
export const SPAN_NAMES = [
  'step',
  'gather',
  'copy in',
  'forward+backward',
  'copy out',
  'reduce-scatter',
  'update',
  'barrier',
  'reduce-scatter in process',
  'all-reduce across processes',
  'flag agreement',
  'wait',
] as const;

export const SpanKind = { STEP: 0, IN_PROCESS: 8, ACROSS_PROCESSES: 9, FLAG_AGREEMENT: 10, WAIT: 11 } as const;

const PHASE_KIND: Record<keyof PhaseTimes, number> = { gather: 1, copyIn: 2, compute: 3, copyOut: 4, reduceScatter: 5, update: 6, barrier: 7 };
/** The phase that ends a step (the span of the step closes with it). */
const LAST_PHASE: keyof PhaseTimes = 'barrier';

let lastReading = 0;

/** Seconds on this thread's clock; the step loop times its phases with it. */
export function now(): number {
  return (lastReading = performance.now() / 1000);
}

/** What runSteps returns while tracing: the spans and this thread's clock origin (Unix ms). */
export interface RecordedSpans {
  timeOrigin: number;
  data: Float64Array;
}

export class SpanRecorder {
  private data = new Float64Array(3 * 1024);
  private length = 0;
  private stepStart: number | undefined;

  record(kind: number, start: number, end: number): void {
    if (this.length + 3 > this.data.length) {
      const grown = new Float64Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.length++] = kind;
    this.data[this.length++] = start;
    this.data[this.length++] = end;
  }

  /** Runs `work` inside a span of `kind`. */
  around<T>(kind: number, work: () => T): T {
    const start = now();
    try {
      return work();
    } finally {
      this.record(kind, start, now());
    }
  }

  /** Makes `target[method]` record a span of `kind` around each call. */
  traceMethod<T extends object, K extends keyof T>(target: T, method: K, kind: number): void {
    const original = target[method] as unknown as (...args: unknown[]) => unknown;
    (target as Record<K, unknown>)[method] = (...args: unknown[]) => this.around(kind, () => original.apply(target, args));
  }

  /** Records a wait of the control block (performance.now() milliseconds). */
  readonly recordWait = (startMs: number, endMs: number): void => this.record(SpanKind.WAIT, startMs / 1000, endMs / 1000);

  /** Phase times that record a span for each amount added (see the header); starts a segment's spans afresh. */
  phaseTimes(): PhaseTimes {
    this.length = 0;
    this.stepStart = undefined;
    const sums = zeroPhaseTimes();
    const recording = {} as PhaseTimes;
    for (const key of Object.keys(sums) as (keyof PhaseTimes)[]) {
      Object.defineProperty(recording, key, {
        enumerable: true,
        get: () => sums[key],
        set: (value: number) => {
          const end = lastReading;
          const start = end - (value - sums[key]);
          sums[key] = value;
          this.stepStart ??= start;
          this.record(PHASE_KIND[key], start, end);
          if (key === LAST_PHASE) {
            this.record(SpanKind.STEP, this.stepStart, end);
            this.stepStart = undefined;
          }
        },
      });
    }
    return recording;
  }

  /** The spans recorded since the last take. */
  take(): RecordedSpans {
    const data = this.data.slice(0, this.length);
    this.length = 0;
    this.stepStart = undefined;
    return { timeOrigin: performance.timeOrigin, data };
  }
}

/**
 * Trace spans (Unix ms) of one replica's segment of steps; step spans are named by their global
 * step (from `firstGlobalStep`, counted from 0) and carry the epoch and step in the epoch.
 */
export function decodeReplicaSpans(recorded: RecordedSpans, at: { epoch: number; fromStep: number; firstGlobalStep: number }): TraceSpan[] {
  const { timeOrigin, data } = recorded;
  const spans: TraceSpan[] = [];
  let steps = 0;
  for (let i = 0; i < data.length; i += 3) {
    const kind = data[i]!;
    const span: TraceSpan = { name: SPAN_NAMES[kind]!, start: timeOrigin + data[i + 1]! * 1000, end: timeOrigin + data[i + 2]! * 1000 };
    if (kind === SpanKind.STEP) {
      span.name = `step ${at.firstGlobalStep + steps + 1}`;
      span.args = { epoch: at.epoch + 1, stepInEpoch: at.fromStep + steps + 1 };
      steps++;
    }
    spans.push(span);
  }
  return spans;
}
