/** `ringtrain dashboard`: the command's own work (the folder checks, serving, stopping on a signal). */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it, vi } from 'vitest';
import { dashboardCommand } from '../../src/cli/dashboard-command.js';
import { UserError } from '../../src/errors.js';

const mainJs = fileURLToPath(import.meta.url);
const listenersBefore = process.listenerCount('SIGINT') + process.listenerCount('SIGTERM');

describe('ringtrain dashboard', () => {
  // In this process (starting the CLI costs seconds): the signals are emitted as events.
  it.each(['SIGINT', 'SIGTERM'] as const)('prints its 127.0.0.1 address, serves the runs, and stops cleanly on %s', async (signal) => {
    const runs = mkdtempSync(join(tmpdir(), 'ringtrain-dash-cli-'));
    mkdirSync(join(runs, 'one'));
    writeFileSync(join(runs, 'one', 'metrics.jsonl'), `${JSON.stringify({ event: 'start', name: 'one', stepsPerEpoch: 1, epochs: 1 })}\n`);
    const out: string[] = [];
    const err: string[] = [];
    const stdout = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => out.push(String(chunk)) > 0);
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => err.push(String(chunk)) > 0);
    try {
      const serving = dashboardCommand(runs, {});
      const deadline = Date.now() + 10_000;
      while (out.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      const url = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(out.join(''))?.[0];
      expect(out.join('')).toBe(`ringtrain dashboard of ${runs}: ${url}\n(Ctrl-C to stop)\n`);
      const list = (await (await fetch(`${url}api/runs`, { signal: AbortSignal.timeout(10_000) })).json()) as { id: string; name: string }[];
      expect(list.map((r) => [r.id, r.name])).toEqual([['one', 'one']]);
      process.emit(signal, signal); // as Node calls the handlers of a real signal
      await serving;
      expect(err.join('')).toBe(`${signal}: dashboard stopped\n`);
      // Closed: nothing listens there any more.
      await expect(fetch(`${url}api/runs`, { signal: AbortSignal.timeout(10_000) })).rejects.toThrow();
      expect(process.listenerCount('SIGINT') + process.listenerCount('SIGTERM')).toBe(listenersBefore);
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  });

  it('refuses a missing folder (with a hint), a file, and a port past 65535, naming them', async () => {
    const missing = join(tmpdir(), 'ringtrain-no-such-runs');
    const error = await dashboardCommand(missing, {}).then(() => undefined, (e: unknown) => e as UserError);
    expect(error).toBeInstanceOf(UserError);
    expect([error?.message, error?.hint]).toEqual([`${missing}: folder not found`, 'give the folder the runs write into (runs/ by default, or the --out of a run)']);
    await expect(dashboardCommand(mainJs, {})).rejects.toThrow(new UserError(`${mainJs}: is a file, expected a folder of runs`));
    await expect(dashboardCommand(tmpdir(), { port: 70000 })).rejects.toThrow('--port expects a port number from 0 to 65535, found 70000');
  });
});
