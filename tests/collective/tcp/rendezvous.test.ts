/**
 * Rendezvous: a fingerprint mismatch fails every rank with one line naming the field, both
 * values and both ranks; an absent rank 0 or absent ranks fail at the deadline naming the
 * address or the ranks; the token is checked in both directions; ranks that knock before rank 0
 * listens still form the group. Groups run in this process.
 */
import { createServer, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { rendezvous } from '../../../src/collective/tcp/group.js';
import { expectedSum, firstBitwiseDifference, formInProcess, freePort, fulfilled, inputOf, optionsOf } from './harness.js';

function messages(results: PromiseSettledResult<unknown>[]): string[] {
  return results.map((r) => (r.status === 'rejected' ? String((r.reason as Error).message) : 'formed'));
}

describe('TCP rendezvous', () => {
  it('forms the group: hosts and infos in rank order on every rank', async () => {
    const groups = fulfilled(await formInProcess(3, (rank) => ({ info: { rank, replicas: rank + 1 } })));
    try {
      for (const group of groups) {
        expect(group.hosts).toEqual(['127.0.0.1', '127.0.0.1', '127.0.0.1']);
        expect(group.infos).toEqual([0, 1, 2].map((rank) => ({ rank, replicas: rank + 1 })));
      }
    } finally {
      await Promise.all(groups.map((g) => g.close()));
    }
  });

  it('ranks that start before rank 0 listens, on a fixed port, form the group and all-reduce right, 12 times in a row', async () => {
    for (let round = 0; round < 12; round++) {
      const port = await freePort();
      // Ranks 1-3 knock first (and retry); rank 0 comes up a moment later.
      const early = [1, 2, 3].map((rank) => rendezvous(optionsOf(rank, 4, port)));
      await new Promise((resolve) => setTimeout(resolve, 50 + 10 * round));
      const groups = fulfilled(await Promise.allSettled([rendezvous(optionsOf(0, 4, port)), ...early]));
      try {
        const inputs = groups.map((g) => inputOf(round, g.rank, 4099));
        const expected = expectedSum(inputs, 4099);
        const bufs = inputs.map((x) => x.slice());
        await Promise.all(groups.map((g, i) => g.allReduce(bufs[i]!, round)));
        for (const buf of bufs) expect(firstBitwiseDifference(buf, expected)).toBe(-1);
      } finally {
        await Promise.all(groups.map((g) => g.close()));
      }
    }
  });

  it('a fingerprint mismatch fails rendezvous on every rank with one line naming the field, the values and the ranks', async () => {
    const results = await formInProcess(3, (rank) => ({ fingerprint: { batchSize: rank === 2 ? 64 : 32, model: 'mlp' } }));
    const expected = 'rendezvous: fingerprint field "batchSize" differs: rank 0 has 32, rank 2 has 64';
    expect(messages(results)).toEqual([expected, expected, expected]);
    for (const r of results) expect((r as PromiseRejectedResult).reason.name).toBe('RendezvousError');
  });

  it('a field only one rank has, and a string field, are named too', async () => {
    const missing = await formInProcess(2, (rank) => ({ fingerprint: rank === 0 ? { batchSize: 32 } : { batchSize: 32, optimizer: 'adam' } }));
    expect(messages(missing)[1]).toBe('rendezvous: fingerprint field "optimizer" differs: rank 0 has no such field, rank 1 has "adam"');
  });

  it('without rank 0, another rank fails at the deadline naming the address', async () => {
    const port = await freePort();
    const started = Date.now();
    await expect(rendezvous(optionsOf(1, 2, port, { timeoutMs: 500 }))).rejects.toThrow(
      new RegExp(`^rendezvous: could not reach rank 0 at 127\\.0\\.0\\.1:${port} within 500 ms`),
    );
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('rank 0 fails at the deadline naming the ranks that did not join, and tells those that did', async () => {
    let listening!: (port: number) => void;
    const port = new Promise<number>((resolve) => (listening = resolve));
    const zero = rendezvous(optionsOf(0, 4, 0, { timeoutMs: 800, onListening: listening }));
    const one = rendezvous(optionsOf(1, 4, await port, { timeoutMs: 5_000 }));
    const results = await Promise.allSettled([zero, one]);
    expect(messages(results)).toEqual(['rendezvous: ranks 2, 3 did not join within 800 ms', 'rendezvous: ranks 2, 3 did not join within 800 ms']);
  });

  it('a rank with another token is refused by rank 0 (and logged); rank 0 still waits for the right one', async () => {
    const logs: string[] = [];
    let listening!: (port: number) => void;
    const port = new Promise<number>((resolve) => (listening = resolve));
    const zero = rendezvous(optionsOf(0, 2, 0, { onListening: listening, log: (line) => logs.push(line) }));
    const masterPort = await port;
    await expect(rendezvous(optionsOf(1, 2, masterPort, { token: 'another token', timeoutMs: 2_000 }))).rejects.toThrow(
      /^rendezvous: rank 0 at 127\.0\.0\.1:\d+ refused this process: connection closed during authentication/,
    );
    expect(logs.some((line) => /^refused connection from 127\.0\.0\.1:\d+: authentication failed \(wrong token\?\)$/.test(line))).toBe(true);
    const [group0, group1] = await Promise.all([zero, rendezvous(optionsOf(1, 2, masterPort))]);
    await Promise.all([group0.close(), group1.close()]);
  });

  it('the connecting side checks the listener: one that cannot prove the token is refused', async () => {
    // A fake rank 0 that speaks the greeting but answers with a proof made without the token.
    const server = createServer((socket: Socket) => {
      socket.on('error', () => undefined);
      socket.write(Buffer.concat([Buffer.from('ringtrn1', 'latin1'), Buffer.alloc(32, 1)]));
      socket.once('data', () => socket.write(Buffer.alloc(40, 2)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      await expect(rendezvous(optionsOf(1, 2, port, { timeoutMs: 2_000 }))).rejects.toThrow(
        `rendezvous: rank 0 at 127.0.0.1:${port} failed to prove it holds the token`,
      );
    } finally {
      server.close();
    }
  });

  it('bad options are refused before anything is opened', async () => {
    await expect(rendezvous(optionsOf(2, 2, 1234))).rejects.toThrow('rendezvous: rank 2 is not in 0..1');
    await expect(rendezvous(optionsOf(0, 2, 1234, { token: '' }))).rejects.toThrow(/the token is empty/);
  });
});
