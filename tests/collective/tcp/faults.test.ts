/**
 * Faults between processes in the middle of an all-reduce (the victim holds back its call of
 * the step, the others wait inside theirs): a peer killed with SIGKILL fails
 * every survivor's pending call at once (well under the step timeout), naming it; a peer
 * stopped with SIGSTOP fails them after about the step timeout (no heartbeat), naming it; a
 * peer's abort() reaches every survivor with its reason. Nothing hangs; every process ends.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { killAll, startWorld, type Message } from './harness.js';

afterEach(killAll);

/** 4 MiB buffers: a call takes long enough that the victim is caught inside it. */
const LENGTH = 1 << 20;

describe('a peer process failing mid-all-reduce', () => {
  it('SIGKILL: every survivor rejects at once, naming the dead rank and the step', async () => {
    const size = 4;
    const victim = 2;
    const ranks = await startWorld(size, { scenario: 'loop', length: LENGTH, victim, victimStep: 3, stepTimeoutMs: 20_000 });
    const survivors = ranks.filter((r) => r.rank !== victim);
    // The victim holds back step 3's call (tcp-rank.mjs); every survivor is inside it, so step 2
    // is complete everywhere: a survivor still reading step 2's last bytes would name step 2.
    await Promise.all([ranks[victim]!.wait((m) => m.type === 'victim-ready', 20_000), ...survivors.map((r) => r.wait((m) => m.type === 'survivor-at-step', 20_000))]);
    const killedAt = Date.now();
    ranks[victim]!.child.kill('SIGKILL');
    const outcomes = await Promise.all(survivors.map((r) => r.outcome(10_000)));
    for (const outcome of outcomes) {
      expect(outcome.type).toBe('error');
      expect(outcome.name).toBe('PeerFailureError');
      expect(outcome.message).toMatch(/^rank 2 \(host 127\.0\.0\.1\) failed at step 3: connection closed/);
      // Promptly: a closed socket is seen at once (the step timeout is 20 s).
      expect((outcome.at as number) - killedAt).toBeLessThan(3_000);
    }
  });

  it('SIGSTOP: every survivor rejects after about the step timeout, naming the silent rank', async () => {
    const size = 3;
    const victim = 1;
    const stepTimeoutMs = 2_000;
    const ranks = await startWorld(size, { scenario: 'loop', length: LENGTH, victim, victimStep: 3, stepTimeoutMs });
    await ranks[victim]!.wait((m) => m.type === 'victim-ready', 20_000);
    const stoppedAt = Date.now();
    ranks[victim]!.child.kill('SIGSTOP');
    const survivors = ranks.filter((r) => r.rank !== victim);
    const outcomes = await Promise.all(survivors.map((r) => r.outcome(4 * stepTimeoutMs)));
    for (const outcome of outcomes) {
      expect(outcome.type).toBe('error');
      expect(outcome.message).toBe('rank 1 (host 127.0.0.1) failed at step 3: no heartbeat for 2000 ms');
      const after = (outcome.at as number) - stoppedAt;
      expect(after).toBeGreaterThanOrEqual(stepTimeoutMs - 1_000);
      // Heartbeats are checked every 250 ms; the rest is slack for a busy machine.
      expect(after).toBeLessThan(stepTimeoutMs + 3_000);
    }
  });

  it('rank 0 stopped: the others notice on their control connection and name rank 0', async () => {
    const stepTimeoutMs = 2_000;
    const ranks = await startWorld(3, { scenario: 'loop', length: LENGTH, victim: 0, victimStep: 2, stepTimeoutMs });
    await ranks[0]!.wait((m) => m.type === 'victim-ready', 20_000);
    ranks[0]!.child.kill('SIGSTOP');
    const outcomes = await Promise.all(ranks.slice(1).map((r) => r.outcome(4 * stepTimeoutMs)));
    for (const outcome of outcomes) expect(outcome.message).toBe('rank 0 (host 127.0.0.1) failed at step 2: no heartbeat for 2000 ms');
  });

  it('abort(): every other rank rejects with the reason, naming the aborting rank', async () => {
    const ranks = await startWorld(3, { scenario: 'abort', length: 1000, victim: 2, atStep: 4, reason: 'replica 0 threw: out of memory' });
    const outcomes: Message[] = await Promise.all(ranks.map((r) => r.outcome(10_000)));
    for (const outcome of outcomes) {
      expect(outcome.type).toBe('error');
      expect(outcome.message).toBe('rank 2 (host 127.0.0.1) failed at step 4: aborted: replica 0 threw: out of memory');
    }
  });
});
