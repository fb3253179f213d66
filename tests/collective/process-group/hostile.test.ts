/**
 * Hostile input against real rank processes on loopback: strangers at rank 0's rendezvous port
 * (an HTTP request, a handshake with a wrong token, frame headers claiming 4 GiB) are refused,
 * closed and logged, rank 0 keeps its memory, and the honest ranks then form the group and
 * all-reduce right; an authenticated peer whose hello claims 4 GiB ends the rendezvous with the
 * bound named; an authenticated rank that announces a 4 GiB data frame mid all-reduce, or
 * sends data for the next step, ends the group on every rank with one line (the bound, or the
 * desynchronisation), without a crash or a hang.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, start } from '../../helpers/processes.js';
import {
  eventsOf, expectBitwise, expectedSum, fromBase64, intruderScript, logsOf, memoryOf, oneLineError, resultOf, startRank, startWorld,
} from './world.js';

afterEach(killAll);

const SEED = 7;
const REFUSED = /^refused connection from 127\.0\.0\.1:\d+: /;
const refusals = (run: ReturnType<typeof startRank>) => logsOf(run).filter((l) => REFUSED.test(l)).map((l) => l.replace(REFUSED, ''));
const MiB = 1 << 20;

async function intrude(port: number, mode: string, extra: Record<string, unknown> = {}): Promise<{ mode: string; closedByPeer: boolean; ms: number; written: number; error?: string }> {
  const run = start(process.execPath, [intruderScript, JSON.stringify({ port, mode, ...extra })]);
  expect(await run.exited(30_000), run.stderr()).toBe(0);
  return JSON.parse(run.stdout().trim());
}

/** Rank 0 of a world of `size`, waiting for the others (deadline 30 s). */
function startRankZero(size: number, port: number) {
  return startRank({ rank: 0, size, port, scenario: 'collectives', seed: SEED, lengths: [1000], repeats: 1, broadcastLengths: [], timeoutMs: 30_000 });
}

/** The honest ranks 1..size-1 join; every rank must all-reduce 1000 floats right. */
async function honestRanksFinish(zero: ReturnType<typeof startRank>, size: number, port: number): Promise<void> {
  const others = Array.from({ length: size - 1 }, (_, i) =>
    startRank({ rank: i + 1, size, port, scenario: 'collectives', seed: SEED, lengths: [1000], repeats: 1, broadcastLengths: [], timeoutMs: 30_000 }),
  );
  const all = [zero, ...others];
  const codes = await Promise.all(all.map((r) => r.exited(30_000)));
  expect(codes, all.map((r) => r.stderr()).join('\n')).toEqual(all.map(() => 0));
  const expected = expectedSum(SEED, size, 1000);
  for (const run of all) expectBitwise(fromBase64(resultOf(run).allReduce[0].base64), expected, `rank ${resultOf(run).rank}`);
}

describe('strangers and a bad peer at the rendezvous port', () => {
  it('an HTTP request and a handshake with a wrong token are refused, closed and logged; the honest ranks then form the group and all-reduce right', async () => {
    const port = await freePort();
    const zero = startRankZero(3, port);
    const [garbage, wrongToken] = await Promise.all([intrude(port, 'garbage'), intrude(port, 'wrong-token', { token: 'not-the-token' })]);
    expect(garbage.closedByPeer).toBe(true);
    expect(garbage.ms).toBeLessThan(3_000);
    expect(wrongToken.closedByPeer).toBe(true);
    expect(wrongToken.ms).toBeLessThan(3_000);
    expect(wrongToken.error).toMatch(/^rank 0 refused this process: /);
    // Both refusals logged by rank 0, one line each, naming the stranger's address and why.
    await expect.poll(() => refusals(zero).length, { timeout: 5_000 }).toBe(2);
    expect(refusals(zero).sort()).toEqual(['authentication failed (wrong token?)', 'not a ringtrain peer (bad greeting)']);
    await honestRanksFinish(zero, 3, port);
  });

  it('frame headers claiming 0xFFFFFFF0 bytes (ring data, hello) followed by 256 MiB from strangers are refused at the handshake, never read as frames: rank 0 stays small and forms the group', async () => {
    const port = await freePort();
    const zero = startRankZero(2, port);
    const [data, hello] = await Promise.all([intrude(port, 'huge-data', { junkBytes: 256 * MiB }), intrude(port, 'huge-hello', { junkBytes: 256 * MiB })]);
    for (const attempt of [data, hello]) {
      expect(attempt.closedByPeer, JSON.stringify(attempt)).toBe(true);
      expect(attempt.ms).toBeLessThan(3_000);
    }
    // Authentication comes first, in fixed-size messages: the headers are never parsed as frames.
    await expect.poll(() => refusals(zero).length, { timeout: 5_000 }).toBe(2);
    expect(refusals(zero)).toEqual(['not a ringtrain peer (bad greeting)', 'not a ringtrain peer (bad greeting)']);
    // Peak resident memory of rank 0 after both: nowhere near what was claimed or poured.
    const { rss, peak } = memoryOf(zero.child.pid!);
    expect(peak, `rss ${rss}, peak ${peak}`).toBeLessThan(150 * MiB);
    await honestRanksFinish(zero, 2, port);
  });

  it('an authenticated peer (the run token, as rank 1) whose hello header claims 0xFFFFFFF0 bytes: rank 0 ends the rendezvous with one line naming the bound, without allocating it', async () => {
    const port = await freePort();
    const zero = startRankZero(2, port);
    const attempt = await intrude(port, 'auth-huge-hello', { token: 'pg-test-token', junkBytes: 256 * MiB });
    expect(attempt.closedByPeer, JSON.stringify(attempt)).toBe(true);
    expect(attempt.ms).toBeLessThan(3_000);
    expect(await zero.exited(10_000)).toBe(1);
    expect(oneLineError(zero)).toBe('rendezvous: refused a frame of 4294967280 bytes (hello) from rank 1 (host 127.0.0.1): the limit is 1048576 bytes');
    const failure = eventsOf(zero).find((e) => e.event === 'error')!;
    expect(failure.peakRss).toBeLessThan(150 * MiB);
  });
});

describe('an authenticated rank that breaks the protocol mid all-reduce (world of 3, rank 2 misbehaves at step 3)', () => {
  const start3 = (how: 'huge' | 'wrong-step', port: number) =>
    startWorld(3, (rank) => ({ rank, size: 3, port, scenario: 'hostile', seed: SEED, length: 100003, atStep: 3, bad: 2, how, timeoutMs: 20_000, stepTimeoutMs: 10_000 }));

  /** Every rank exits 1 with one line; the honest ranks agreed on steps 0..2. */
  async function allFail(ranks: ReturnType<typeof startRank>[]): Promise<string[]> {
    const began = Date.now();
    const codes = await Promise.all(ranks.map((r) => r.exited(30_000)));
    expect(codes, ranks.map((r) => r.stderr()).join('\n')).toEqual([1, 1, 1]);
    // Well inside the step timeout of 10 s: the failure is detected, not waited out.
    expect(Date.now() - began).toBeLessThan(9_000);
    const steps = ranks.map((r) => eventsOf(r).filter((e) => e.event === 'step').map((e) => e.hash as string));
    for (const run of steps) expect(run.slice(0, 3)).toEqual(steps[0]!.slice(0, 3));
    return ranks.map(oneLineError);
  }

  it('a data header claiming 0xFFFFFFF0 bytes: rank 0 (its receiver) refuses it naming the bound, every rank fails with one line; nothing of that size is allocated', async () => {
    const ranks = start3('huge', await freePort());
    const [zero, one, two] = await allFail(ranks);
    const refusal = 'refused a frame of 4294967280 bytes (all-reduce data) from rank 2 (host 127.0.0.1): the limit is 1048576 bytes';
    expect(zero).toBe(refusal);
    // Rank 0 found the violation, so the others fail naming rank 0, with its reason.
    expect(one).toBe(`rank 0 (host 127.0.0.1) failed at step 3: ${refusal}`);
    expect(two).toBe(`rank 0 (host 127.0.0.1) failed at step 3: ${refusal}`);
    const failure = eventsOf(ranks[0]!).find((e) => e.event === 'error')!;
    expect(failure.peakRss - failure.rssReady).toBeLessThan(100 * MiB);
  });

  it('a data segment for step 4 during step 3: rank 0 fails "desynchronised: expected all-reduce data for step 3 from rank 2, got ... for step 4", every rank with one line', async () => {
    const ranks = start3('wrong-step', await freePort());
    const [zero, one, two] = await allFail(ranks);
    const desync = 'desynchronised: expected all-reduce data for step 3 from rank 2, got all-reduce data for step 4';
    expect(zero).toBe(desync);
    expect(one).toBe(`rank 0 (host 127.0.0.1) failed at step 3: ${desync}`);
    expect(two).toBe(`rank 0 (host 127.0.0.1) failed at step 3: ${desync}`);
  });
});
