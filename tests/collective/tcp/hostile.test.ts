/**
 * Hostile and broken peers: strangers without the token are refused, closed and logged while
 * the honest ranks form their group; a frame claiming 4 GiB is refused on its header, without
 * allocating it, and ends the group cleanly on every rank; a frame of the wrong step or the
 * wrong operation is a desynchronisation error, never summed.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { authenticateOutgoing, Purpose } from '../../../src/collective/tcp/auth.js';
import { encodeHeader, Op, RENDEZVOUS_STEP } from '../../../src/collective/tcp/frame.js';
import { rendezvous, type ProcessGroup } from '../../../src/collective/tcp/group.js';
import { expectedSum, firstBitwiseDifference, inputOf, killAll, optionsOf, startWorld } from './harness.js';

afterEach(killAll);

async function rawSocket(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  socket.on('error', () => undefined);
  await new Promise((resolve) => socket.once('connect', resolve));
  return socket;
}

/** Whether the other end closes `socket` within `ms` (reading, and dropping, what comes). */
function closed(socket: Socket, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve(true);
    socket.resume();
    const timer = setTimeout(() => resolve(false), ms);
    socket.once('close', () => (clearTimeout(timer), resolve(true)));
  });
}

/** Rank 0 of an in-process world on an OS-chosen port, logging into `logs`. */
async function startRankZero(size: number, logs: string[], timeoutMs = 10_000): Promise<{ zero: Promise<ProcessGroup>; port: number }> {
  let listening!: (port: number) => void;
  const port = new Promise<number>((resolve) => (listening = resolve));
  const zero = rendezvous(optionsOf(0, size, 0, { onListening: listening, log: (line) => logs.push(line), timeoutMs }));
  zero.catch(() => undefined);
  return { zero, port: await port };
}

describe('strangers at the rendezvous port', () => {
  it('garbage, a wrong HMAC, an unknown rank and a wrong ring claim are refused, closed and logged; the honest ranks form the group and all-reduce', async () => {
    const logs: string[] = [];
    const { zero, port } = await startRankZero(3, logs);
    // A stranger that never speaks must not hold anyone up.
    const silent = await rawSocket(port);

    const garbage = await rawSocket(port);
    garbage.write(Buffer.alloc(80, 0x5a));
    expect(await closed(garbage, 3_000)).toBe(true);

    const wrongToken = await rawSocket(port);
    await expect(
      authenticateOutgoing(wrongToken, { token: 'not the token', rank: 1, purpose: Purpose.CONTROL, expectRank: 0, deadline: Date.now() + 3_000, describe: 'rank 0' }),
    ).rejects.toThrow(/refused this process/);
    expect(await closed(wrongToken, 3_000)).toBe(true);

    const unknownRank = await rawSocket(port);
    await expect(
      authenticateOutgoing(unknownRank, { token: 'in-process-token', rank: 5, purpose: Purpose.CONTROL, expectRank: 0, deadline: Date.now() + 3_000, describe: 'rank 0' }),
    ).rejects.toThrow(/refused this process/);

    const wrongRing = await rawSocket(port);
    await expect(
      authenticateOutgoing(wrongRing, { token: 'in-process-token', rank: 2, purpose: Purpose.DATA, expectRank: 0, deadline: Date.now() + 3_000, describe: 'rank 0' }),
    ).rejects.toThrow(/refused this process/);

    const refused = logs.filter((line) => /^refused connection from 127\.0\.0\.1:\d+: /.test(line));
    expect(refused.map((line) => line.replace(/^refused connection from 127\.0\.0\.1:\d+: /, ''))).toEqual([
      'not a ringtrain peer (bad greeting)',
      'authentication failed (wrong token?)',
      'rank 5 (control connection) refused: no rank 5 in a world of 3',
      'rank 2 (ring connection) refused: only rank 1 receives ring data from rank 0',
    ]);

    const groups = await Promise.all([zero, rendezvous(optionsOf(1, 3, port)), rendezvous(optionsOf(2, 3, port))]);
    try {
      const inputs = [0, 1, 2].map((rank) => inputOf(5, rank, 777));
      const bufs = inputs.map((x) => x.slice());
      await Promise.all(groups.map((group, rank) => group.allReduce(bufs[rank]!, 0)));
      const expected = expectedSum(inputs, 777);
      for (const buf of bufs) expect(firstBitwiseDifference(buf, expected)).toBe(-1);
    } finally {
      silent.destroy();
      await Promise.all(groups.map((g) => g.close()));
    }
  });
});

describe('oversized frames', () => {
  it('a hello claiming 4 GiB from an authenticated peer is refused on its header: rendezvous fails cleanly on every rank, nothing of that size allocated', async () => {
    const logs: string[] = [];
    const { zero, port } = await startRankZero(3, logs);
    const two = rendezvous(optionsOf(2, 3, port));
    two.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const rssBefore = process.memoryUsage().rss;
    const liar = await rawSocket(port);
    await authenticateOutgoing(liar, { token: 'in-process-token', rank: 1, purpose: Purpose.CONTROL, expectRank: 0, deadline: Date.now() + 3_000, describe: 'rank 0' });
    liar.write(encodeHeader(Op.HELLO, RENDEZVOUS_STEP, 0xffffffff));
    const expected = 'rendezvous: refused a frame of 4294967295 bytes (hello) from rank 1 (host 127.0.0.1): the limit is 1048576 bytes';
    await expect(zero).rejects.toThrow(expected);
    await expect(two).rejects.toThrow(expected);
    expect(await closed(liar, 3_000)).toBe(true);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(256 << 20);
  });

  it('a frame claiming 4 GiB in the middle of training ends the group on every process with a clear message, no crash, no hang', async () => {
    const started = Date.now();
    const ranks = await startWorld(3, { scenario: 'hostile', how: 'huge-frame', victim: 1, atStep: 2, length: 1000, stepTimeoutMs: 20_000 });
    const outcomes = await Promise.all(ranks.map((r) => r.outcome(15_000)));
    const refusal = 'refused a frame of 4294967295 bytes (all-reduce data) from rank 1 (host 127.0.0.1): the limit is 1048576 bytes';
    // Rank 2 may see the header while it still finishes step 1: it reports the step it is at.
    const relayed = new RegExp(`^rank 2 \\(host 127\\.0\\.0\\.1\\) failed at step [12]: ${refusal.replace(/[()]/g, '\\$&')}$`);
    expect(outcomes[0]!.message).toMatch(relayed);
    expect(outcomes[1]!.message).toMatch(relayed);
    expect(outcomes[2]!.message).toBe(refusal);
    for (const outcome of outcomes) {
      expect(outcome.type).toBe('error');
      expect(outcome.rss as number).toBeLessThan(1 << 30);
    }
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});

describe('desynchronised ranks', () => {
  it('a rank all-reducing for the wrong step is a desynchronisation error on its neighbours, never summed', async () => {
    const ranks = await startWorld(3, { scenario: 'hostile', how: 'wrong-step', victim: 1, atStep: 2, length: 1000 });
    const outcomes = await Promise.all(ranks.map((r) => r.outcome(15_000)));
    const desync = /desynchronised: expected all-reduce data for step ([23]) from rank ([01]), got all-reduce data for step ([23])$/;
    for (const outcome of outcomes) {
      expect(outcome.type).toBe('error');
      expect(outcome.message).toMatch(desync);
    }
    // The rank after the victim sees the victim's frames for step 3 where it expects step 2.
    const seen = outcomes.map((o) => String(o.message));
    expect(seen.some((m) => m.endsWith('desynchronised: expected all-reduce data for step 2 from rank 1, got all-reduce data for step 3') || m.endsWith('desynchronised: expected all-reduce data for step 3 from rank 0, got all-reduce data for step 2'))).toBe(true);
  });

  it('a rank broadcasting where the others all-reduce is a desynchronisation error naming both operations', async () => {
    const ranks = await startWorld(3, { scenario: 'hostile', how: 'wrong-op', victim: 1, atStep: 2, length: 1000 });
    const outcomes = await Promise.all(ranks.map((r) => r.outcome(15_000)));
    const desync = 'desynchronised: expected all-reduce data for step 2 from rank 1, got broadcast data for step 2';
    expect(outcomes[2]!.message).toBe(desync);
    expect(outcomes[0]!.message).toBe(`rank 2 (host 127.0.0.1) failed at step 2: ${desync}`);
    expect(outcomes[1]!.message).toBe(`rank 2 (host 127.0.0.1) failed at step 2: ${desync}`);
  });
});
