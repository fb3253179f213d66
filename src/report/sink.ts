/**
 * Report sinks: everything that shows or records a run (the console, the metrics log, TensorBoard
 * event files, the trace) listens to the trainer's events through one interface. A new sink is
 * one file exporting a ReportSinkType plus one line in sinks.ts.
 */
import type { RunConfig } from '../config/schema.js';
import type { ReportEventOptions, TrainingEvent } from '../train/events.js';
import type { TrainSummary } from '../train/run.js';

/** What a sink is opened with. */
export interface ReportContext {
  config: RunConfig;
  /** This process's rank in its world (0 alone): rank 0 alone writes the run's files. */
  rank: number;
  /** The run continues a checkpoint (logs are appended to). */
  resumed: boolean;
  /** The train command's flags that concern reports. */
  flags: { json: boolean; trace?: string };
  stdout: NodeJS.WriteStream;
  /** Notes for the user (stderr). */
  say: (line: string) => void;
}

export interface ReportSink {
  event(event: TrainingEvent): void;
  /** The run's summary; a sink that reads what an earlier sink wrote (report.html) may take its time. */
  summary?(summary: TrainSummary): void | Promise<void>;
  /** Ends the sink's output (also after an error); called once. */
  close?(): void;
}

export interface ReportSinkType {
  /**
   * The extra events the trainer must emit for this sink. From the config and flags alone,
   * whatever the rank: every process of a world must cut the same segments of steps.
   */
  events?(config: RunConfig, flags: ReportContext['flags']): ReportEventOptions;
  /** The sink of this process, or none (e.g. on ranks other than 0). */
  open(context: ReportContext): ReportSink | undefined;
}

/** The open sinks of a run, seen as one. */
export interface ReportSinks {
  event(event: TrainingEvent): void;
  /** Each sink's summary in turn, in the order of the list. */
  summary(summary: TrainSummary): Promise<void>;
  close(): void;
  /** What the trainer is asked to emit for them. */
  readonly events: ReportEventOptions;
}

export function openReportSinks(types: readonly ReportSinkType[], context: ReportContext): ReportSinks {
  const events = mergeEventOptions(types.map((type) => type.events?.(context.config, context.flags) ?? {}));
  const sinks: ReportSink[] = [];
  try {
    for (const type of types) {
      const sink = type.open(context);
      if (sink) sinks.push(sink);
    }
  } catch (error) {
    for (const sink of sinks) sink.close?.();
    throw error;
  }
  let closed = false;
  return {
    events,
    event: (event) => sinks.forEach((sink) => sink.event(event)),
    async summary(summary) {
      for (const sink of sinks) await sink.summary?.(summary);
    },
    close() {
      if (closed) return;
      closed = true;
      let first: unknown;
      for (const sink of sinks) {
        try {
          sink.close?.();
        } catch (error) {
          first ??= error;
        }
      }
      if (first) throw first;
    },
  };
}

/** Steps events at the greatest common divisor of the intervals asked for: each sink gets its multiples. */
export function mergeEventOptions(all: readonly ReportEventOptions[]): ReportEventOptions {
  const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
  const every = all.map((o) => o.stepsEvery ?? 0).filter((n) => n > 0);
  return {
    stepsEvery: every.length > 0 ? every.reduce(gcd) : 0,
    weights: all.some((o) => o.weights === true),
    trace: all.some((o) => o.trace === true),
  };
}
