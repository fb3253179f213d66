/**
 * `--trace FILE`: the run's timeline in the Trace Event Format (JSON Array Format) that
 * ui.perfetto.dev and chrome://tracing open, as Horovod's timeline writes it. One process per
 * rank (pid = rank), and in it one track for the coordinator, one for the checkpoint writes that
 * run beside training, and one per replica (tid 2 + its world rank) with the spans of every step:
 * gather, copy in, forward+backward, copy out, reduce-scatter (the in-process ring, the
 * all-reduce across processes, each wait that blocked), update (flag agreement), barrier.
 *
 * Each process of a world writes its own file: FILE for rank 0, FILE with `.rank<k>` before its
 * extension for rank k. Timestamps are Unix time in microseconds, so the files of one world line
 * up when their `traceEvents` are put together. Events are written as they come, and the array is
 * closed at the end: a killed run leaves a file the viewers still open (the closing `]` is optional
 * in this format).
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import type { TraceSpan } from '../train/events.js';
import { writingFile } from '../util/fs-errors.js';
import type { ReportSinkType } from './sink.js';

const COORDINATOR_TID = 0;
const CHECKPOINT_WRITES_TID = 1;
const REPLICA_TID_BASE = 2;

/** One complete event ("ph": "X") of the format; ts and dur in microseconds. */
export interface CompleteEvent {
  name: string;
  cat: string;
  ph: 'X';
  ts: number;
  dur: number;
  pid: number;
  tid: number;
  args?: Record<string, string | number>;
}

/** The file of `rank`: FILE itself for rank 0, FILE with `.rank<k>` before the extension otherwise. */
export function traceFileOf(file: string, rank: number): string {
  if (rank === 0) return file;
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}.rank${rank}${ext}`;
}

export const traceSink: ReportSinkType = {
  events: (_config, flags) => (flags.trace ? { trace: true } : {}),
  open({ flags, rank, say }) {
    if (!flags.trace) return undefined;
    const writer = new TraceWriter(traceFileOf(flags.trace, rank), rank);
    return {
      event(event) {
        if (event.type === 'trace') {
          const tid = event.replica !== undefined ? REPLICA_TID_BASE + event.replica : event.lane ? CHECKPOINT_WRITES_TID : COORDINATOR_TID;
          if (event.replica !== undefined) writer.nameTrack(tid, `replica ${event.replica}`);
          else if (event.lane) writer.nameTrack(tid, event.lane);
          writer.spans(tid, event.replica !== undefined ? 'replica' : 'coordinator', event.spans);
        } else if (event.type === 'recovery') {
          // The clock of the trainer's spans (Date.now() may be slewed apart from it).
          const end = performance.timeOrigin + performance.now();
          writer.spans(COORDINATOR_TID, 'coordinator', [{ name: 'recovery', start: end - event.seconds * 1000, end, args: { attempt: event.attempt, error: event.error } }]);
        }
      },
      close() {
        writer.close();
        if (rank === 0) say(`trace written to ${writer.file} (open it in ui.perfetto.dev or chrome://tracing)`);
      },
    };
  },
};

export class TraceWriter {
  private fd: number | undefined;
  private first = true;
  private readonly named = new Set<number>();

  constructor(
    readonly file: string,
    private readonly pid: number,
  ) {
    this.fd = writingFile(file, 'create the trace file', () => openSync(file, 'w'));
    this.write('[\n');
    this.metadata('process_name', undefined, { name: `rank ${pid} (${hostname()}, pid ${process.pid})` });
    this.nameTrack(COORDINATOR_TID, 'coordinator');
  }

  /** Names a track (once) and keeps the tracks in tid order. */
  nameTrack(tid: number, name: string): void {
    if (this.named.has(tid)) return;
    this.named.add(tid);
    this.metadata('thread_name', tid, { name });
    this.metadata('thread_sort_index', tid, { sort_index: tid });
  }

  spans(tid: number, cat: string, spans: readonly TraceSpan[]): void {
    const events = spans.map((span): CompleteEvent => {
      const ts = span.start * 1000;
      const event: CompleteEvent = { name: span.name, cat, ph: 'X', ts, dur: span.end * 1000 - ts, pid: this.pid, tid };
      if (span.args) event.args = span.args;
      return event;
    });
    this.events(events);
  }

  close(): void {
    if (this.fd === undefined) return;
    this.write('\n]\n');
    const fd = this.fd;
    this.fd = undefined;
    writingFile(this.file, 'close the trace file', () => closeSync(fd));
  }

  private metadata(name: string, tid: number | undefined, args: Record<string, string | number>): void {
    this.events([{ name, ph: 'M', pid: this.pid, ...(tid === undefined ? {} : { tid }), args }]);
  }

  private events(events: readonly object[]): void {
    if (events.length === 0) return;
    const text = events.map((e) => JSON.stringify(e)).join(',\n');
    this.write(this.first ? text : `,\n${text}`);
    this.first = false;
  }

  private write(text: string): void {
    const fd = this.fd;
    if (fd === undefined) return;
    const bytes = Buffer.from(text);
    writingFile(this.file, 'write to the trace file', () => {
      for (let done = 0; done < bytes.length; ) done += writeSync(fd, bytes, done, bytes.length - done);
    });
  }
}
