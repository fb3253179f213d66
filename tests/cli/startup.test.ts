/**
 * Reliability of a run's start (issue 12): a SIGINT/SIGTERM at any phase of start-up ends the run
 * with 130/143 and no checkpoint; a start that fails once the replica threads run (a replica
 * that fails to start, also after a checkpoint was restored into them) ends its threads so the
 * process exits by itself; a resume refused before training says so in one line; and files that
 * are not regular files (devices, FIFOs, /proc), too large, or output folders on /proc are
 * refused with one line and exit 2. Real CLI processes, each with a deadline.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort, killAll, startRingtrain } from '../helpers/processes.js';

afterEach(killAll);

const HOLD_MS = 60_000; // loading the modules takes seconds on a busy machine
const EXIT_MS = 15_000;
const temp = () => mkdtempSync(join(tmpdir(), 'ringtrain-startup-'));
const linear = (out: string, ...more: string[]) => ['train', 'configs/linear.json', '--epochs', '50', '--batch-size', '10', '--workers', '2', '--out', out, ...more];

/** The lines the process wrote on stderr, without the test hook's. */
const lines = (stderr: string) => stderr.split('\n').filter((l) => l !== '' && !l.startsWith('test hold:'));

describe('a stop during start-up', () => {
  const cases: { phase: string; signal: 'SIGINT' | 'SIGTERM'; world?: boolean }[] = [
    { phase: 'config', signal: 'SIGINT' },
    { phase: 'checkpoint', signal: 'SIGTERM' },
    { phase: 'data', signal: 'SIGINT' },
    { phase: 'replicas', signal: 'SIGTERM' },
    { phase: 'rendezvous', signal: 'SIGINT', world: true },
  ];
  for (const { phase, signal, world } of cases) {
    const code = signal === 'SIGINT' ? 130 : 143;
    it(`${signal} while starting (${phase}${world ? ', waiting for the other process' : ''}) exits ${code} with no checkpoint`, async () => {
      const out = temp();
      const worldArgs = world ? ['--rank', '0', '--world-size', '2', '--master-port', String(await freePort())] : [];
      const run = startRingtrain(linear(out, ...worldArgs), { RINGTRAIN_TEST_HOLD_AT: phase });
      await run.line(new RegExp(`^test hold: ${phase}$`), HOLD_MS);
      run.child.kill(signal);
      expect(await run.exited(EXIT_MS)).toBe(code);
      expect(run.child.signalCode).toBeNull(); // a real exit code, not death by the signal
      expect(lines(run.stderr()).slice(-2)).toEqual([
        `${signal}: stopping before training begins (again to exit at once)`,
        `stopped while starting (${phase}), before training began: no checkpoint written`,
      ]);
      expect(run.stdout()).not.toMatch(/epoch/);
      expect(existsSync(join(out, 'checkpoints')) ? readdirSync(join(out, 'checkpoints')) : []).toEqual([]);
    });
  }
});

describe('a start that fails ends its threads', () => {
  it('resuming, a replica that fails to start once the checkpoint is restored into the threads\' memory ends the run: exit 1 by itself, one line', async () => {
    const out = temp();
    const first = startRingtrain(linear(out, '--epochs', '2'));
    expect(await first.exited(HOLD_MS), first.stderr()).toBe(0);
    // The threads start, the checkpoint is restored into their shared state, then replica 1's
    // initialisation fails: every thread must end, or the process would not exit by itself.
    const resumed = startRingtrain(linear(out, '--epochs', '4', '--resume', 'latest'), { RINGTRAIN_INJECT_FAULT: JSON.stringify({ rank: 1, failInit: true }) });
    expect(await resumed.exited(EXIT_MS * 2)).toBe(1);
    expect(resumed.child.signalCode).toBeNull();
    // Training never began: no "resuming from" (said at the first step), no advice to resume.
    expect(lines(resumed.stderr())).toEqual(['ringtrain: initialising replicas failed: replica 1: injected start failure in replica 1']);
  });

  it('a replica that fails to start ends the run: exit 1, one line, every thread ended', async () => {
    const run = startRingtrain(linear(temp()), { RINGTRAIN_INJECT_FAULT: JSON.stringify({ rank: 1, failInit: true }) });
    expect(await run.exited(HOLD_MS)).toBe(1);
    expect(lines(run.stderr())).toEqual(['ringtrain: initialising replicas failed: replica 1: injected start failure in replica 1']);
  });
});

describe('a resume refused before training begins', () => {
  it('says why in one line (and its hint), not also "resume with --resume latest"', async () => {
    const out = temp();
    const first = startRingtrain(linear(out, '--epochs', '2', '--workers', '1'));
    expect(await first.exited(HOLD_MS), first.stderr()).toBe(0);
    // A valid latest checkpoint, and a config it cannot be resumed with (another batch size).
    const refused = startRingtrain(['train', 'configs/linear.json', '--epochs', '4', '--batch-size', '20', '--workers', '1', '--out', out, '--resume', 'latest']);
    expect(await refused.exited(HOLD_MS)).toBe(2);
    const said = lines(refused.stderr());
    expect(said.filter((l) => !l.startsWith('hint:'))).toHaveLength(1);
    expect(said[0]).toMatch(/^ringtrain: cannot resume from .*: training\.batchSize differs: the checkpoint has 10, the config 20$/);
    expect(refused.stderr()).not.toMatch(/last good checkpoint/);
  });
});

describe('files that are not regular files, or too large, and folders on /proc', () => {
  const dir = temp();
  const withTopology = (name: string, topology: string) => {
    const file = join(dir, `${name}.json`);
    writeFileSync(file, JSON.stringify({ model: { topology }, data: { source: 'linear', samples: 40 }, loss: 'meanSquaredError', optimizer: { name: 'sgd', learningRate: 0.01 }, training: { epochs: 1, batchSize: 10 } }));
    return file;
  };
  const big = join(dir, 'big.json');
  writeFileSync(big, '{}');
  truncateSync(big, 10 * 1024 * 1024 + 1); // sparse: costs no disk
  const fifo = join(dir, 'fifo.json');
  let haveFifo = true;
  try {
    execFileSync('mkfifo', [fifo]);
  } catch {
    haveFifo = false;
  }

  const cases: { name: string; args: string[]; line: string; skip?: string }[] = [
    { name: '/dev/zero as config', args: ['train', '/dev/zero'], line: 'ringtrain: /dev/zero: is a character device, expected a config file (a regular file)' },
    { name: '/dev/urandom as config', args: ['train', '/dev/urandom'], line: 'ringtrain: /dev/urandom: is a character device, expected a config file (a regular file)' },
    { name: 'a config over 10 MiB', args: ['train', big], line: `ringtrain: ${big}: has 10485761 bytes, more than the 10 MiB ringtrain reads of a config file` },
    { name: 'a FIFO as config (the open must not wait for a writer)', args: ['train', fifo], line: `ringtrain: ${fifo}: is a named pipe (FIFO), expected a config file (a regular file)`, skip: haveFifo ? undefined : 'mkfifo is not available' },
    { name: '/proc/self/status as config', args: ['train', '/proc/self/status'], line: 'ringtrain: /proc/self/status: is on procfs, a kernel file system, expected a config file' },
    { name: '/dev/zero as model.topology', args: ['train', withTopology('zero', '/dev/zero'), '--out', dir], line: 'ringtrain: model.topology: /dev/zero: is a character device, expected a TensorFlow.js model.json (a regular file)' },
    { name: '/dev/urandom as model.topology', args: ['train', withTopology('urandom', '/dev/urandom'), '--out', dir], line: 'ringtrain: model.topology: /dev/urandom: is a character device, expected a TensorFlow.js model.json (a regular file)' },
    { name: '--out /proc/self/foo', args: ['train', 'configs/linear.json', '--out', '/proc/self/foo'], line: 'ringtrain: --out: /proc/self/foo is on procfs, a kernel file system; expected a folder on a disk (or tmpfs) to write the run\'s files in' },
    { name: '--out /proc/1/x', args: ['train', 'configs/linear.json', '--out', '/proc/1/x'], line: 'ringtrain: --out: /proc/1/x is on procfs, a kernel file system; expected a folder on a disk (or tmpfs) to write the run\'s files in' },
    { name: '--out /sys/x', args: ['train', 'configs/linear.json', '--out', '/sys/x'], line: 'ringtrain: --out: /sys/x is on sysfs, a kernel file system; expected a folder on a disk (or tmpfs) to write the run\'s files in' },
    { name: '--out /dev/x', args: ['train', 'configs/linear.json', '--out', '/dev/x'], line: 'ringtrain: --out: /dev/x is under /dev, the devices folder; expected a folder on a disk (or /dev/shm) to write the run\'s files in' },
    { name: 'export into /proc', args: ['export', 'no-such.rtckpt', '/proc/self/x'], line: 'ringtrain: export folder: /proc/self/x is on procfs, a kernel file system; expected a folder on a disk (or tmpfs) to write the run\'s files in' },
  ];
  // All at once: each is a process that loads the modules (seconds) and fails at its check.
  it('each exits 2 within the deadline with one line naming the file or folder', async () => {
    const runs = cases.filter((c) => !c.skip).map((c) => ({ c, run: startRingtrain(c.args) }));
    for (const { c, run } of runs) {
      expect({ name: c.name, code: await run.exited(HOLD_MS) }).toEqual({ name: c.name, code: 2 });
      expect({ name: c.name, stderr: lines(run.stderr()).filter((l) => !l.startsWith('reading ') && !l.startsWith('data:')) }).toEqual({ name: c.name, stderr: [c.line] });
    }
    for (const c of cases.filter((c) => c.skip)) console.warn(`skipped "${c.name}": ${c.skip}`);
  });
});
