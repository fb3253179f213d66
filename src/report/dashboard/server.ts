/**
 * The dashboard's HTTP server (node:http), for the person at this machine only: it listens on
 * 127.0.0.1, answers only requests whose Host is that address or localhost with its port (a
 * page of another site that rebinds its DNS name to 127.0.0.1 is refused), only GET and HEAD,
 * only these paths:
 *   /              the page (page.ts), which polls:
 *   /api/runs      the runs under the root: id, name, status and a version that changes with their files
 *   /api/run?id=   one run's data (run-data.ts); the id must be one of the listed runs
 * Run folders are found without following symbolic links and ids are checked again (no `..`,
 * no absolute path, the real path inside the root), so nothing outside the root is read. Every
 * request has deadlines (headers, whole request, an idle socket, the answer).
 */
import { lstatSync, realpathSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { renderPage } from './page.js';
import { RunReader } from './run-data.js';

export const DASHBOARD_HOST = '127.0.0.1';
/** How often the page asks for changes. */
export const POLL_MS = 1000;
const HEADERS_TIMEOUT_MS = 5_000;
const REQUEST_TIMEOUT_MS = 10_000;
const IDLE_SOCKET_MS = 30_000;
/** An answer not ready by then (a hung file system) is a 503, not a request left waiting. */
const ANSWER_TIMEOUT_MS = 15_000;
const MAX_URL_LENGTH = 2048;

export interface DashboardServer {
  url: string;
  port: number;
  /** Stops listening and closes every connection. */
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Starts the server on 127.0.0.1:`port` (0: a free port) serving the runs under `root`. */
export async function startDashboard(root: string, options: { port?: number; pollMs?: number } = {}): Promise<DashboardServer> {
  const realRoot = realpathSync(root);
  const reader = new RunReader(realRoot);
  const page = renderPage('ringtrain dashboard', { mode: 'live', pollMs: options.pollMs ?? POLL_MS });
  let port = 0;

  const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS, maxHeaderSize: 16 * 1024 }, (req, res) => {
    const timer = setTimeout(() => send(res, 503, 'text/plain', 'the dashboard took too long to answer\n'), ANSWER_TIMEOUT_MS);
    answer(req)
      .then(({ status, type, body }) => send(res, status, type, body, req.method === 'HEAD'))
      .catch((error: unknown) => {
        const status = error instanceof HttpError ? error.status : 500;
        send(res, status, 'text/plain', `${status === 500 ? 'internal error: ' : ''}${(error as Error).message}\n`);
      })
      .finally(() => clearTimeout(timer));
  });
  server.keepAliveTimeout = 5_000;
  server.setTimeout(IDLE_SOCKET_MS, (socket) => socket.destroy());

  async function answer(req: http.IncomingMessage): Promise<{ status: number; type: string; body: string }> {
    if (!allowedHost(req.headers.host, port)) throw new HttpError(403, `host ${JSON.stringify(req.headers.host ?? '')} is not this dashboard (use http://${DASHBOARD_HOST}:${port}/)`);
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new HttpError(405, `method ${req.method ?? '?'} not allowed`);
    const target = req.url ?? '/';
    if (target.length > MAX_URL_LENGTH) throw new HttpError(414, 'URL too long');
    const url = new URL(target, `http://${DASHBOARD_HOST}`);
    switch (url.pathname) {
      case '/':
      case '/index.html':
        return { status: 200, type: 'text/html; charset=utf-8', body: page.html };
      case '/api/runs': {
        const runs = [];
        for (const { id, dir, stats } of reader.listRuns()) {
          const run = await reader.read(dir, id, { checkpoints: false });
          runs.push({ id, name: run.name, status: run.status, updatedAt: run.updatedAt, version: `${stats.size}-${stats.mtimeMs}-${reader.checkpointsChangedAt(dir)}-${run.status}` });
        }
        return json(runs);
      }
      case '/api/run': {
        const id = url.searchParams.get('id');
        if (id === null) throw new HttpError(400, 'expected ?id=<run folder under the dashboard folder>');
        const dir = runFolder(realRoot, id);
        const run = reader.listRuns().find((r) => r.id === id);
        if (!run || run.dir !== dir) throw new HttpError(404, `no run ${JSON.stringify(id)} under the dashboard folder`);
        return json(await reader.read(dir, id));
      }
      default:
        throw new HttpError(404, `no page ${url.pathname}`);
    }
  }

  function send(res: http.ServerResponse, status: number, type: string, body: string, head = false): void {
    if (res.headersSent || res.writableEnded) return;
    res.writeHead(status, {
      'Content-Type': type,
      'Content-Length': Buffer.byteLength(body),
      'Cache-Control': 'no-store',
      'X-Content-Type-Options': 'nosniff',
      'X-Frame-Options': 'DENY',
      'Referrer-Policy': 'no-referrer',
      'Cross-Origin-Resource-Policy': 'same-origin',
      'Content-Security-Policy': type.startsWith('text/html') ? page.csp : "default-src 'none'",
    });
    res.end(head ? undefined : body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: DASHBOARD_HOST, port: options.port ?? 0, exclusive: true }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;
  return {
    url: `http://${DASHBOARD_HOST}:${port}/`,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function json(value: unknown): { status: number; type: string; body: string } {
  // JSON has no NaN or Infinity: they are sent as null (the page shows a gap).
  return { status: 200, type: 'application/json; charset=utf-8', body: JSON.stringify(value) };
}

/** 127.0.0.1:port or localhost:port, exactly. */
export function allowedHost(host: string | undefined, port: number): boolean {
  if (host === undefined) return false;
  const h = host.toLowerCase();
  return h === `${DASHBOARD_HOST}:${port}` || h === `localhost:${port}`;
}

/**
 * The folder of run `id` (a relative path with '/', '.' for the root) under the real root, or an
 * HttpError: no absolute paths, no `..`, no backslashes or NULs, no link anywhere on the way.
 */
export function runFolder(realRoot: string, id: string): string {
  if (id === '.') return realRoot;
  const parts = id.split('/');
  if (id === '' || id.includes('\\') || id.includes('\0') || path.isAbsolute(id) || parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new HttpError(400, `run id ${JSON.stringify(id)} is not a folder path inside the dashboard folder`);
  }
  let dir = realRoot;
  for (const part of parts) {
    dir = path.join(dir, part);
    let isLink = false;
    try {
      isLink = lstatSync(dir).isSymbolicLink();
    } catch {
      throw new HttpError(404, `no run ${JSON.stringify(id)} under the dashboard folder`);
    }
    if (isLink) throw new HttpError(403, `run id ${JSON.stringify(id)} goes through a symbolic link; the dashboard does not follow links`);
  }
  const real = realpathSync(dir);
  if (real !== dir || !real.startsWith(realRoot.endsWith(path.sep) ? realRoot : realRoot + path.sep)) throw new HttpError(403, `run id ${JSON.stringify(id)} is outside the dashboard folder`);
  return dir;
}
