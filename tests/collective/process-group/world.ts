/**
 * Worlds of real processes for the process-group tests: each rank is a child process running
 * tests/helpers/pg-allreduce.mjs against the compiled transport (dist/collective/tcp), on
 * loopback, with a port from freePort(). This module also holds the test's side of the
 * arithmetic: the inputs every rank generates and the sequential float32 sums in the ring's order.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { chunkRange } from '../../../src/collective/ring.js';
import { mulberry32 } from '../../../src/util/random.js';
import { root, start, type Started } from '../../helpers/processes.js';

export const rankScript = join(root, 'tests/helpers/pg-allreduce.mjs');
export const intruderScript = join(root, 'tests/helpers/pg-intruder.mjs');

/** Floats in one data segment (SEGMENT_BYTES = 1 MiB of float32). */
export const SEGMENT_FLOATS = 262144;

export interface RankJob {
  rank: number;
  size: number;
  port: number;
  scenario: 'collectives' | 'hostile' | 'rounds';
  rounds?: number;
  seed?: number;
  lengths?: number[];
  repeats?: number;
  broadcastLengths?: number[];
  timeoutMs?: number;
  stepTimeoutMs?: number;
  fingerprint?: Record<string, string | number>;
  length?: number;
  atStep?: number;
  bad?: number;
  how?: 'huge' | 'wrong-step';
}

export function startRank(job: RankJob): Started {
  return start(process.execPath, [rankScript, JSON.stringify(job)]);
}

export function startWorld(size: number, job: (rank: number) => RankJob): Started[] {
  return Array.from({ length: size }, (_, rank) => startRank(job(rank)));
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Event = { event: string } & Record<string, any>;

/** The JSON lines a rank printed. */
export function eventsOf(run: Started): Event[] {
  return run
    .stdout()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Event);
}

export function resultOf(run: Started): Event {
  const result = eventsOf(run).find((e) => e.event === 'result');
  expect(result, `no result; stderr: ${run.stderr()}`).toBeDefined();
  return result!;
}

/** The lines the rank's group logged (options.log). */
export function logsOf(run: Started): string[] {
  return eventsOf(run)
    .filter((e) => e.event === 'log')
    .map((e) => e.line as string);
}

/** The rank's failure as printed: exactly one line on stderr. */
export function oneLineError(run: Started): string {
  const text = run.stderr();
  expect(text.endsWith('\n') && text.indexOf('\n') === text.length - 1, `not one line: ${JSON.stringify(text)}`).toBe(true);
  return text.trim();
}

/** Rank r's input, as pg-allreduce.mjs generates it. */
export function inputOf(seed: number, r: number, length: number): Float32Array {
  const random = mulberry32((seed * 7919 + r * 104729 + length) >>> 0);
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = (random() - 0.5) * 2 ** Math.floor(random() * 24 - 12);
  return x;
}

/**
 * The all-reduce the ring promises, computed sequentially: chunk c (chunkRange) starts at rank
 * c+1's values, adds rank c+2's, ..., and rank c's last, rounding to float32 after every addition.
 */
export function ringOrderSum(inputs: Float32Array[]): Float32Array {
  const size = inputs.length;
  const length = inputs[0]!.length;
  const out = new Float32Array(length);
  for (let c = 0; c < size; c++) {
    const [from, to] = chunkRange(length, size, c);
    for (let i = from; i < to; i++) {
      let acc = inputs[(c + 1) % size]![i]!;
      for (let k = 2; k <= size; k++) acc = Math.fround(acc + inputs[(c + k) % size]![i]!);
      out[i] = acc;
    }
  }
  return out;
}

export function expectedSum(seed: number, size: number, length: number): Float32Array {
  return ringOrderSum(Array.from({ length: size }, (_, r) => inputOf(seed, r, length)));
}

const bytesOf = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

export function sha256(a: Float32Array): string {
  return createHash('sha256').update(bytesOf(a)).digest('hex');
}

/** Fails naming the first element whose bits differ, or passes when every bit agrees. */
export function expectBitwise(actual: Float32Array, expected: Float32Array, what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) expect.fail(`${what}: element ${i} is ${actual[i]} (0x${a[i]!.toString(16)}), expected ${expected[i]} (0x${e[i]!.toString(16)})`);
  }
}

export function fromBase64(text: string): Float32Array {
  const bytes = Buffer.from(text, 'base64');
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return new Float32Array(copy.buffer);
}

/** What pg-allreduce.mjs's rank `root` broadcasts. */
export function broadcastPattern(rootRank: number, length: number): Float32Array {
  const x = new Float32Array(length);
  for (let i = 0; i < length; i++) x[i] = Math.sin(i * 0.001 + rootRank) * (i % 97);
  return x;
}

/** Resident set size now and at its peak, in bytes, of a live process (Linux /proc). */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}

/** A chunk of the ring for `length` floats in a world of `size` is longer than one segment. */
export function chunkExceedsSegment(length: number, size: number): boolean {
  const [from, to] = chunkRange(length, size, 0);
  return to - from > SEGMENT_FLOATS;
}
