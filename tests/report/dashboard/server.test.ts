import { mkdirSync, mkdtempSync, realpathSync, symlinkSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDashboard, type DashboardServer } from '../../../src/report/dashboard/server.js';

const log = (name: string, loss: number) =>
  [
    { event: 'start', name, workers: 1, processes: 1, worldReplicas: 1, backend: 'wasm', epochs: 1, stepsPerEpoch: 2, parameters: 3 },
    { event: 'epoch', epoch: 1, epochs: 1, steps: 2, samples: 8, seconds: 1, samplesPerSec: 8, loss, metrics: {} },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n') + '\n';

/** A raw GET (node:http, so the Host header and the path are sent exactly as given). */
function get(server: DashboardServer, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: server.port, path: target, method, headers: { host: `127.0.0.1:${server.port}`, ...headers }, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`no answer to ${target}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('dashboard server', () => {
  let root: string;
  let server: DashboardServer;

  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'ringtrain-dash-'));
    const outside = mkdtempSync(path.join(tmpdir(), 'ringtrain-outside-'));
    mkdirSync(path.join(root, 'runs', 'first'), { recursive: true });
    writeFileSync(path.join(root, 'runs', 'first', 'metrics.jsonl'), log('first', 0.25));
    mkdirSync(path.join(outside, 'secret'));
    writeFileSync(path.join(outside, 'secret', 'metrics.jsonl'), log('secret', 0.5));
    symlinkSync(path.join(outside, 'secret'), path.join(root, 'runs', 'linked'));
    symlinkSync(outside, path.join(root, 'runs', 'up'));
    server = await startDashboard(path.join(root, 'runs'));
  });
  afterAll(async () => {
    await server?.close();
  });

  it('listens on 127.0.0.1 on the port it says, and serves the page with its scripts inside', async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/`);
    expect(server.port).toBeGreaterThan(0);
    const page = await get(server, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['content-security-policy']).toMatch(/^default-src 'none'; script-src 'sha256-[^']+' 'sha256-[^']+'; style-src 'sha256-[^']+'; connect-src 'self'/);
    // uPlot is inside the page, no script or style is fetched from anywhere.
    expect(page.body).toContain('uPlot');
    expect(page.body).not.toMatch(/<script[^>]+src=|<link[^>]+href=|@import|url\(/);
    // The one address in it is uPlot's licence comment.
    expect([...page.body.matchAll(/https?:\/\/[^\s'"]*/g)].map((m) => m[0])).toEqual(['https://github.com/leeoniya/uPlot']);
  });

  it('lists the runs under its folder (not those behind links) and serves each one\'s data', async () => {
    const list = JSON.parse((await get(server, '/api/runs')).body) as { id: string; name: string; status: string }[];
    expect(list.map((r) => [r.id, r.name])).toEqual([['first', 'first']]);
    const run = await get(server, '/api/run?id=first');
    expect(run.status).toBe(200);
    const data = JSON.parse(run.body) as { name: string; epochs: { values: { loss: number } }[] };
    expect(data.name).toBe('first');
    expect(data.epochs.map((e) => e.values.loss)).toEqual([0.25]);
  });

  it.each([
    ['/api/run?id=..', 400, /run id "\.\." is not a folder path inside the dashboard folder/],
    ['/api/run?id=../runs/first', 400, /is not a folder path inside/],
    ['/api/run?id=%2e%2e%2f%2e%2e%2fetc', 400, /run id "\.\.\/\.\.\/etc" is not a folder path inside/],
    ['/api/run?id=first%2f..%2f..', 400, /is not a folder path inside/],
    ['/api/run?id=%252e%252e', 404, /no run "%2e%2e"/],
    ['/api/run?id=/etc', 400, /is not a folder path inside/],
    ['/api/run?id=..%5cetc', 400, /is not a folder path inside/],
    ['/api/run?id=first%00', 400, /is not a folder path inside/],
    ['/api/run?id=linked', 403, /run id "linked" goes through a symbolic link/],
    ['/api/run?id=up%2fsecret', 403, /run id "up\/secret" goes through a symbolic link/],
    ['/api/run?id=nothing', 404, /no run "nothing"/],
    ['/api/run', 400, /expected \?id=/],
    ['/../../etc/passwd', 404, /no page \/etc\/passwd/],
    ['/%2e%2e/%2e%2e/etc/passwd', 404, /no page/],
    ['/first/metrics.jsonl', 404, /no page/],
  ])('refuses %s with %i', async (target, status, message) => {
    const answer = await get(server, target);
    expect(answer.status).toBe(status);
    expect(answer.body).toMatch(message);
    // Nothing of the run behind the links comes out.
    expect(answer.body).not.toContain('"name"');
  });

  it('refuses a URL longer than 2048 characters with 414', async () => {
    const answer = await get(server, `/api/run?id=${'a'.repeat(3000)}`);
    expect([answer.status, answer.body]).toEqual([414, 'URL too long\n']);
  });

  it('refuses other Host headers (DNS rebinding) and methods other than GET and HEAD', async () => {
    for (const host of ['evil.example:80', `evil.example:${server.port}`, '127.0.0.1', `127.0.0.1:${server.port + 1}`, `0.0.0.0:${server.port}`]) {
      const answer = await get(server, '/api/runs', { host });
      expect(answer.status, host).toBe(403);
      expect(answer.body).toBe(`host ${JSON.stringify(host)} is not this dashboard (use http://127.0.0.1:${server.port}/)\n`);
    }
    expect((await get(server, '/api/runs', { host: `localhost:${server.port}` })).status).toBe(200);
    const post = await get(server, '/api/runs', {}, 'POST');
    expect(post.status).toBe(405);
    expect(post.body).toBe('method POST not allowed\n');
    const head = await get(server, '/', {}, 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('reads its folder through its real path, so a root given through a link works and stays closed', async () => {
    const alias = path.join(mkdtempSync(path.join(tmpdir(), 'ringtrain-alias-')), 'runs');
    symlinkSync(path.join(root, 'runs'), alias);
    const other = await startDashboard(alias);
    try {
      const list = JSON.parse((await get(other, '/api/runs')).body) as { id: string }[];
      expect(list.map((r) => r.id)).toEqual(['first']);
      expect(realpathSync(alias)).toBe(realpathSync(path.join(root, 'runs')));
      expect((await get(other, '/api/run?id=linked')).status).toBe(403);
    } finally {
      await other.close();
    }
  });
});
