/**
 * Real child processes for the multi-process tests: started with their output collected, waited
 * for with a deadline (a test never hangs on one), and killed in cleanup.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

export const root = fileURLToPath(new URL('../..', import.meta.url));
export const mainJs = join(root, 'dist/cli/main.js');

export interface Started {
  child: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or 128 + signal number) or rejects after `ms`. */
  exited: (ms: number) => Promise<number>;
  /** Resolves when stdout or stderr has a line matching `pattern`, or rejects after `ms`. */
  line: (pattern: RegExp, ms: number) => Promise<string>;
}

const running = new Set<ChildProcess>();

/** Registers a child started elsewhere, so that killAll ends it too. */
export function track(child: ChildProcess): void {
  running.add(child);
  child.once('exit', () => running.delete(child));
}

/** Kills every process these helpers started that is still running (for afterEach). */
export function killAll(): void {
  for (const child of running) {
    try {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
  running.clear();
}

export function start(command: string, args: string[], env: NodeJS.ProcessEnv = {}, options: { detached?: boolean } = {}): Started {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached ?? false });
  track(child);
  let out = '';
  let err = '';
  const waiters: { pattern: RegExp; resolve: (line: string) => void }[] = [];
  const scan = () => {
    for (const waiter of [...waiters]) {
      const found = `${out}\n${err}`.split('\n').find((l) => waiter.pattern.test(l));
      if (found !== undefined) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(found);
      }
    }
  };
  child.stdout!.on('data', (chunk: Buffer) => ((out += chunk.toString()), scan()));
  child.stderr!.on('data', (chunk: Buffer) => ((err += chunk.toString()), scan()));
  const exit = new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve(code ?? 128 + (signal === 'SIGKILL' ? 9 : signal === 'SIGTERM' ? 15 : signal === 'SIGINT' ? 2 : 1));
    });
  });
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    exited: (ms) => withDeadline(exit, ms, () => `process ${args.join(' ')} did not exit within ${ms} ms; stderr: ${err.slice(-2000)}`),
    line: (pattern, ms) =>
      withDeadline(
        new Promise<string>((resolve) => {
          waiters.push({ pattern, resolve });
          scan();
        }),
        ms,
        () => `no line matching ${pattern} within ${ms} ms; stdout: ${out.slice(-1000)} stderr: ${err.slice(-2000)}`,
      ),
  };
}

export function startRingtrain(args: string[], env: NodeJS.ProcessEnv = {}): Started {
  return start(process.execPath, [mainJs, ...args], env);
}

function withDeadline<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(what())), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** A port the OS just handed out on loopback. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The torchrun contract's variables for `rank` of `size` processes on loopback. */
export function torchrunEnv(rank: number, size: number, port: number, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    RANK: String(rank),
    WORLD_SIZE: String(size),
    LOCAL_RANK: String(rank),
    LOCAL_WORLD_SIZE: String(size),
    MASTER_ADDR: '127.0.0.1',
    MASTER_PORT: String(port),
    TORCHELASTIC_RUN_ID: 'ringtrain-test',
    TORCHELASTIC_RESTART_COUNT: '0',
    ...extra,
  };
}

export interface CliRun {
  /** The exit code, or null when the process was killed (at the deadline). */
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/**
 * Runs the built CLI (dist/cli/main.js) to its end, collecting its output; killed with SIGKILL
 * if it runs past `deadlineMs` (then code is null). Tracked, so killAll ends it too.
 */
export function runCli(args: string[], options: { deadlineMs: number; cwd?: string; env?: NodeJS.ProcessEnv }): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [mainJs, ...args], { cwd: options.cwd ?? root, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    track(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const killer = setTimeout(() => child.kill('SIGKILL'), options.deadlineMs);
    child.on('error', (error) => {
      clearTimeout(killer);
      reject(error);
    });
    child.on('close', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** Runs `work` on the items two at a time (the test machine has two cores, shared), keeping their order. */
export async function inPairs<T, R>(items: readonly T[], work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += 2) results.push(...(await Promise.all(items.slice(i, i + 2).map(work))));
  return results;
}
