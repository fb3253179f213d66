/** `ringtrain dashboard` as a user runs it (the compiled dist/cli/main.js). */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { dashboardCommand } from '../../src/cli/dashboard-command.js';
import { UserError } from '../../src/errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const mainJs = join(root, 'dist/cli/main.js');

describe('ringtrain dashboard', () => {
  // SIGTERM stops it the same way (one handler for both); one process start is enough for the suite's time.
  it.each(['SIGINT'] as const)('prints its 127.0.0.1 address, serves the runs, and stops cleanly on %s', async (signal) => {
    const runs = mkdtempSync(join(tmpdir(), 'ringtrain-dash-cli-'));
    mkdirSync(join(runs, 'one'));
    writeFileSync(join(runs, 'one', 'metrics.jsonl'), `${JSON.stringify({ event: 'start', name: 'one', stepsPerEpoch: 1, epochs: 1 })}\n`);
    const child = spawn(process.execPath, [mainJs, 'dashboard', runs], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const deadline = Date.now() + 60_000;
    while (!/http:\/\/127\.0\.0\.1:\d+\//.test(stdout) && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
    const url = /http:\/\/127\.0\.0\.1:(\d+)\//.exec(stdout)?.[0];
    expect(url, stdout + stderr).toBeDefined();
    expect(stdout).toBe(`ringtrain dashboard of ${runs}: ${url}\n(Ctrl-C to stop)\n`);
    const list = (await (await fetch(`${url}api/runs`, { signal: AbortSignal.timeout(10_000) })).json()) as { id: string; name: string }[];
    expect(list.map((r) => [r.id, r.name])).toEqual([['one', 'one']]);
    child.kill(signal);
    expect(await exited).toBe(0);
    expect(stderr).toBe(`${signal}: dashboard stopped\n`);
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
