/**
 * Rendezvous failures between real processes, each ending every process with one line: a
 * fingerprint that differs (the field, both values and both ranks, on every rank), rank 0 not
 * there (the address and the deadline), and ranks that never come (rank 0 names them). And a
 * world of 4 formed many times in a row: every time a rank may reach its neighbour's ring port
 * before that neighbour has the table (and so before it handles that port); the connection must
 * be answered, not left to the authentication deadline.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll } from '../../helpers/processes.js';
import { expectedSum, oneLineError, resultOf, sha256, startRank } from './world.js';

afterEach(killAll);

const TIMEOUT_MS = 1500;

describe('rendezvous of real processes', () => {
  it('a world of 4 forms 12 times in a row on one port, each time all-reducing right', async () => {
    const port = await freePort();
    const rounds = 12;
    const ranks = [0, 1, 2, 3].map((rank) => startRank({ rank, size: 4, port, scenario: 'rounds', rounds, seed: 99, length: 4099, timeoutMs: 20_000, stepTimeoutMs: 20_000 }));
    const codes = await Promise.all(ranks.map((r) => r.exited(60_000)));
    expect(codes, ranks.map((r) => r.stderr()).join('\n')).toEqual([0, 0, 0, 0]);
    const expected = Array.from({ length: rounds }, (_, round) => sha256(expectedSum(99 + round, 4, 4099)));
    for (const run of ranks) expect(resultOf(run).hashes).toEqual(expected);
  });

  it('a fingerprint that differs fails every rank with one line naming the field, both values and both ranks', async () => {
    const port = await freePort();
    const ranks = [0, 1, 2].map((rank) =>
      startRank({ rank, size: 3, port, scenario: 'collectives', lengths: [1], repeats: 1, broadcastLengths: [], fingerprint: { model: 'pg-test', batchSize: rank === 2 ? 64 : 32 } }),
    );
    const codes = await Promise.all(ranks.map((r) => r.exited(20_000)));
    expect(codes).toEqual([1, 1, 1]);
    for (const run of ranks) expect(oneLineError(run)).toBe('rendezvous: fingerprint field "batchSize" differs: rank 0 has 32, rank 2 has 64');
  });

  it(`rank 0 absent: rank 1 gives up after ${TIMEOUT_MS} ms naming rank 0's address`, async () => {
    const port = await freePort();
    const began = Date.now();
    const run = startRank({ rank: 1, size: 2, port, scenario: 'collectives', lengths: [1], repeats: 1, broadcastLengths: [], timeoutMs: TIMEOUT_MS });
    expect(await run.exited(15_000)).toBe(1);
    const elapsed = Date.now() - began;
    // (The connect loop may add the last error it saw, e.g. "(last error: ECONNREFUSED)".)
    expect(oneLineError(run)).toMatch(new RegExp(`^rendezvous: could not reach rank 0 at 127\\.0\\.0\\.1:${port} within ${TIMEOUT_MS} ms( \\(last error: \\w+\\))?$`));
    expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS);
    expect(elapsed).toBeLessThan(TIMEOUT_MS + 8_000);
  });

  it('ranks 2 and 3 of 4 never come: rank 0 names them after the deadline, and so does rank 1', async () => {
    const port = await freePort();
    // Rank 1 waits longer than rank 0, so what it prints is what rank 0 tells it.
    const ranks = [0, 1].map((rank) =>
      startRank({ rank, size: 4, port, scenario: 'collectives', lengths: [1], repeats: 1, broadcastLengths: [], timeoutMs: rank === 0 ? TIMEOUT_MS : 4 * TIMEOUT_MS }),
    );
    const codes = await Promise.all(ranks.map((r) => r.exited(15_000)));
    expect(codes).toEqual([1, 1]);
    // Rank 1 learns rank 0's reason (an abort during rendezvous): both print the same line.
    for (const run of ranks) expect(oneLineError(run)).toBe(`rendezvous: ranks 2, 3 did not join within ${TIMEOUT_MS} ms`);
  });
});
