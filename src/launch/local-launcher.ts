/**
 * `ringtrain train ... --nproc-per-node N`: the single-machine launcher, as
 * `torchrun --standalone --nproc-per-node N` is. It starts N copies of this command with the
 * torchrun contract (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT)
 * on loopback, a free port and a fresh token, forwards SIGINT and SIGTERM to them, and exits
 * with the first failure's code. When one fails the others see it and stop by themselves;
 * any still running after a grace period are killed, so the launcher never hangs.
 *
 * Each process runs in a process group of its own, so a terminal's Ctrl-C (sent to the whole
 * foreground group) reaches the launcher alone, which forwards it once: a process that got it
 * twice would take the second as "exit at once", without its checkpoint. Each holds an IPC
 * channel to the launcher; when the launcher dies (kill -9), the channel closes and the
 * process stops as on SIGTERM (early-signals.ts), so none is left training on its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:net';
import { LAUNCHER_CHANNEL_VAR } from '../cli/early-signals.js';

/** How long the others may take to stop by themselves after one failed. */
const GRACE_MS = 30_000;

export interface LocalLaunch {
  processes: number;
  /** The command line each process runs (without the launcher's own flag). */
  argv: string[];
  env?: NodeJS.ProcessEnv;
}

/** A port the OS has just given out on loopback (free unless someone takes it meanwhile). */
export async function freeLoopbackPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Runs the processes to the end; resolves with the exit code the launcher should exit with. */
export async function launchLocal(launch: LocalLaunch): Promise<number> {
  const { processes, argv } = launch;
  const port = await freeLoopbackPort();
  const shared = {
    ...(launch.env ?? process.env),
    WORLD_SIZE: String(processes),
    LOCAL_WORLD_SIZE: String(processes),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
    TORCHELASTIC_RUN_ID: randomUUID(),
    RINGTRAIN_TOKEN: randomBytes(32).toString('hex'),
  };
  const children: ChildProcess[] = [];
  for (let rank = 0; rank < processes; rank++) {
    const env = { ...shared, RANK: String(rank), LOCAL_RANK: String(rank) };
    children.push(spawn(process.execPath, argv, { env: { ...env, [LAUNCHER_CHANNEL_VAR]: '1' }, stdio: ['inherit', 'inherit', 'inherit', 'ipc'], detached: true }));
  }
  const forward = (signal: NodeJS.Signals) => {
    for (const child of children) if (child.exitCode === null) child.kill(signal);
  };
  const onSigint = () => forward('SIGINT');
  const onSigterm = () => forward('SIGTERM');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigterm);
  let firstFailure: number | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  try {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            child.once('error', () => resolve());
            child.once('exit', (code, signal) => {
              const status = code ?? signalExitCode(signal);
              if (status !== 0 && firstFailure === undefined) {
                firstFailure = status;
                graceTimer = setTimeout(() => forward('SIGKILL'), GRACE_MS);
              }
              resolve();
            });
          }),
      ),
    );
  } finally {
    clearTimeout(graceTimer);
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigterm);
  }
  return firstFailure ?? 0;
}

function signalExitCode(signal: NodeJS.Signals | null): number {
  const numbers: Partial<Record<NodeJS.Signals, number>> = { SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGSEGV: 11, SIGABRT: 6 };
  return 128 + (signal ? (numbers[signal] ?? 1) : 1);
}
