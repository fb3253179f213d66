/**
 * Helpers of the tcp suite: ranks as real child processes (tests/helpers/tcp-rank.mjs, running
 * the compiled dist/), the inputs they generate, and the sums expected in the ring's fixed order.
 * Everything on 127.0.0.1, with ports chosen by the OS.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { chunkRange } from '../../../src/collective/ring.js';
import { rendezvous, type ProcessGroup, type RendezvousOptions } from '../../../src/collective/tcp/group.js';
import { mixSeed, mulberry32 } from '../../../src/util/random.js';
import { track } from '../../helpers/processes.js';

const script = fileURLToPath(new URL('../../helpers/tcp-rank.mjs', import.meta.url));

export interface Message {
  type: string;
  [key: string]: unknown;
}

export interface RankProcess {
  rank: number;
  child: ChildProcess;
  /** Log lines the rank's group wrote (refused connections...). */
  logs: string[];
  /** Resolves with the first message matching `pred` (also one already received), rejects after `ms`. */
  wait(pred: (m: Message) => boolean, ms: number): Promise<Message>;
  /** The final report: {type: 'done', results} or {type: 'error', message, ...}. */
  outcome(ms: number): Promise<Message>;
}

export { freePort, killAll } from '../../helpers/processes.js';

export function startRank(job: Record<string, unknown> & { rank: number; size: number }): RankProcess {
  const child = fork(script, [JSON.stringify(job)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  track(child);
  const messages: Message[] = [];
  const logs: string[] = [];
  const waiters: { pred: (m: Message) => boolean; resolve: (m: Message) => void }[] = [];
  child.on('message', (m: Message) => {
    messages.push(m);
    if (m.type === 'log') logs.push(m.line as string);
    for (const waiter of [...waiters]) {
      if (waiter.pred(m)) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(m);
      }
    }
  });
  const wait = (pred: (m: Message) => boolean, ms: number) => {
    const found = messages.find(pred);
    if (found) return Promise.resolve(found);
    return new Promise<Message>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`rank ${job.rank}: no such message within ${ms} ms (got ${messages.map((m) => m.type).join(', ')})`)), ms);
      waiters.push({ pred, resolve: (m) => (clearTimeout(timer), resolve(m)) });
    });
  };
  return { rank: job.rank, child, logs, wait, outcome: (ms) => wait((m) => m.type === 'done' || m.type === 'error', ms) };
}

/** Starts rank 0 on an OS-chosen port, then the others pointed at it. */
export async function startWorld(size: number, job: Record<string, unknown>, perRank: (rank: number) => Record<string, unknown> = () => ({})): Promise<RankProcess[]> {
  const zero = startRank({ ...job, ...perRank(0), rank: 0, size, masterPort: 0 });
  const { port } = await zero.wait((m) => m.type === 'listening' || m.type === 'error', 20_000);
  if (port === undefined) throw new Error('rank 0 did not start listening');
  return [zero, ...Array.from({ length: size - 1 }, (_, i) => startRank({ ...job, ...perRank(i + 1), rank: i + 1, size, masterPort: port }))];
}

/** The input of `rank` for `length` floats, as tcp-rank.mjs makes it. */
export function inputOf(seed: number, rank: number, length: number): Float32Array {
  const random = mulberry32(mixSeed(seed, rank, length));
  const buf = new Float32Array(length);
  for (let i = 0; i < length; i++) buf[i] = (random() - 0.5) * 10 ** Math.floor(random() * 6 - 3);
  return buf;
}

/**
 * The all-reduce result in the ring's fixed order (../ring.ts): for element i of chunk c,
 * ((x[c+1] + x[c+2]) + ...) + x[c], ranks mod size, in float32, one addition after the other.
 */
export function expectedSum(inputs: Float32Array[], length: number): Float32Array {
  const n = inputs.length;
  const out = new Float32Array(length);
  for (let c = 0; c < n; c++) {
    const [from, to] = chunkRange(length, n, c);
    for (let i = from; i < to; i++) {
      let acc = inputs[(c + 1) % n]![i]!;
      for (let k = 2; k <= n; k++) acc = Math.fround(acc + inputs[(c + k) % n]![i]!);
      out[i] = acc;
    }
  }
  return out;
}

export function floatsOf(base64: string): Float32Array {
  const bytes = Buffer.from(base64, 'base64');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

/** The first index where a and b differ bitwise, or -1 (lengths must agree). */
export function firstBitwiseDifference(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

/** Options of rank `rank` of an in-process world on 127.0.0.1. */
export function optionsOf(rank: number, size: number, masterPort: number, extra: Partial<RendezvousOptions> = {}): RendezvousOptions {
  return {
    rank,
    size,
    masterAddr: '127.0.0.1',
    masterPort,
    token: 'in-process-token',
    fingerprint: { batchSize: 32, model: 'mlp' },
    info: { rank },
    timeoutMs: 10_000,
    stepTimeoutMs: 10_000,
    log: () => undefined,
    ...extra,
  };
}

/**
 * Rendezvous of `size` ranks inside this process (each its own group and sockets): rank 0 on an
 * OS-chosen port first. Settles like Promise.allSettled, in rank order.
 */
export async function formInProcess(size: number, extra: (rank: number) => Partial<RendezvousOptions> = () => ({})): Promise<PromiseSettledResult<ProcessGroup>[]> {
  let listening!: (port: number) => void;
  const port = new Promise<number>((resolve) => (listening = resolve));
  const zero = rendezvous(optionsOf(0, size, 0, { onListening: listening, ...extra(0) }));
  zero.catch(() => listening(0));
  const masterPort = await port;
  const others = Array.from({ length: size - 1 }, (_, i) => rendezvous(optionsOf(i + 1, size, masterPort, extra(i + 1))));
  return Promise.allSettled([zero, ...others]);
}

export function fulfilled(results: PromiseSettledResult<ProcessGroup>[]): ProcessGroup[] {
  return results.map((r) => {
    if (r.status === 'rejected') throw r.reason;
    return r.value;
  });
}
