/**
 * The dashboard in a real browser (Debian's chromium, driven by playwright-core): while a run
 * trains, its curves show the values of its metrics log and grow; once it stops, report.html
 * shows the same values with nothing but the file. RINGTRAIN_SCREENSHOT=<file.png> also keeps a
 * screenshot of the live page.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { startDashboard } from '../../../src/report/dashboard/server.js';

const CHROMIUM = '/usr/bin/chromium';
const noChromium = !existsSync(CHROMIUM);
const skipped = noChromium ? ` (skipped: ${CHROMIUM} is absent; .ci/run installs Debian's chromium)` : '';
const root = fileURLToPath(new URL('../../..', import.meta.url));

/** What the page's charts hold: per chart, its series' labels and uPlot's data columns. */
type Charts = Record<string, { series: string[]; data: (number | null)[][] }>;

const chartsOf = (page: Page): Promise<Charts> =>
  page.evaluate(() => {
    const charts = (window as unknown as { ringtrainDashboard: { charts: Record<string, { series: string[]; u: { data: (number | null)[][] } }> } }).ringtrainDashboard.charts;
    return Object.fromEntries(Object.entries(charts).map(([k, c]) => [k, { series: c.series, data: c.u.data.map((col) => Array.from(col)) }]));
  });

/** Every loss of the log's progress and epoch records at its global step, as the page must show them. */
function lossesInLog(file: string): Map<number, number> {
  const losses = new Map<number, number>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line.startsWith('{')) continue;
    const r = JSON.parse(line) as { event: string; epoch: number; step: number; steps: number; loss: number };
    if (r.event === 'progress') losses.set((r.epoch - 1) * r.steps + r.step, r.loss);
    if (r.event === 'epoch') losses.set(r.epoch * r.steps, r.loss);
  }
  return losses;
}

function expectLossesShown(charts: Charts, log: Map<number, number>): void {
  const [x, loss] = charts.loss!.data;
  const shown = new Map(x!.map((step, i) => [step!, loss![i]]));
  expect(log.size).toBeGreaterThan(0);
  for (const [step, value] of log) expect(shown.get(step), `loss at step ${step}`).toBe(value);
}

describe('dashboard in chromium', () => {
  it.skipIf(noChromium)(`shows a training run's values as they come, and report.html the same offline${skipped}`, async () => {
    const runs = mkdtempSync(path.join(tmpdir(), 'ringtrain-browser-'));
    const out = path.join(runs, 'live');
    const config = path.join(runs, 'live.json');
    // 20 steps an epoch, far more epochs than it will run: the test stops it.
    writeFileSync(
      config,
      JSON.stringify({
        name: 'live',
        model: { inputShape: [1], layers: [{ type: 'dense', units: 1 }] },
        data: { source: 'linear', samples: 250 },
        loss: 'meanSquaredError',
        metrics: ['meanAbsoluteError'],
        optimizer: { name: 'sgd', learningRate: 0.01 },
        training: { epochs: 100000, batchSize: 10, validationSplit: 0.2 },
        evaluation: { on: 'train' },
        parallel: { workers: 2 },
        checkpoint: { everyEpoch: false, everySteps: 100, keepLast: 2 },
      }),
    );
    const server = await startDashboard(runs, { pollMs: 250 });
    const userDataDir = mkdtempSync(path.join(tmpdir(), 'ringtrain-chromium-'));
    let context: BrowserContext | undefined;
    const training = spawn(process.execPath, [path.join(root, 'dist/cli/main.js'), 'train', config, '--out', out], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    training.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const trained = new Promise<number | null>((resolve) => training.on('exit', (code) => resolve(code)));
    try {
      context = await chromium.launchPersistentContext(userDataDir, {
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
        viewport: { width: 1280, height: 900 },
        timeout: 30_000,
      });
      const page = context.pages()[0] ?? (await context.newPage());
      const pageErrors: string[] = [];
      page.on('pageerror', (e) => pageErrors.push(e.message));
      page.on('console', (m) => {
        if (m.type() === 'error') pageErrors.push(m.text());
      });
      await page.goto(server.url);

      // Live: the run is listed as running and its loss curve has points, then more points.
      const points = () => page.evaluate(() => (window as unknown as { ringtrainDashboard: { charts: Record<string, { u: { data: unknown[][] } }> } }).ringtrainDashboard.charts.loss?.u.data[0]!.length ?? 0);
      await page.waitForFunction(() => ((window as unknown as { ringtrainDashboard: { charts: Record<string, { u: { data: unknown[][] } }> } }).ringtrainDashboard.charts.loss?.u.data[0]!.length ?? 0) >= 3, undefined, { timeout: 60_000, polling: 100 });
      expect(await page.textContent('.title .badge')).toBe('running');
      const first = await points();
      await page.waitForFunction((n) => ((window as unknown as { ringtrainDashboard: { charts: Record<string, { u: { data: unknown[][] } }> } }).ringtrainDashboard.charts.loss?.u.data[0]!.length ?? 0) > n + 2, first, { timeout: 60_000, polling: 100 });
      const live = await chartsOf(page);
      expect(Object.keys(live).sort()).toEqual(['loss', 'lr', 'meanAbsoluteError', 'samplesPerSec']);
      expect(live.loss!.series).toEqual(['loss', 'val_loss']);
      // The learning rate curve: sgd's constant 0.01 (as the float32 the optimizer uses) at every point.
      expect(new Set(live.lr!.data.slice(1).flat().filter((v) => v !== null))).toEqual(new Set([Math.fround(0.01)]));
      if (process.env.RINGTRAIN_SCREENSHOT) await page.screenshot({ path: process.env.RINGTRAIN_SCREENSHOT, fullPage: true });

      // Stopped: the page turns to "stopped" and shows every loss of the log; report.html too.
      training.kill('SIGINT');
      expect(await trained, stderr).toBe(130);
      await page.waitForFunction(() => document.querySelector('.title .badge')?.textContent === 'stopped', undefined, { timeout: 20_000, polling: 100 });
      const log = lossesInLog(path.join(out, 'metrics.jsonl'));
      expect(log.size).toBeGreaterThan(first);
      expectLossesShown(await chartsOf(page), log);
      const epochRows = await page.$$eval('table.epochs tbody tr', (rows) => rows.length);
      expect(epochRows).toBe(Math.floor(Math.max(...log.keys()) / 20));
      expect(await page.$$eval('table.breakdown tbody tr td:first-child', (cells) => cells.map((c) => c.textContent))).toEqual(['replica 0', 'replica 1']);
      expect(await page.$$eval('table.checkpoints tbody tr', (rows) => rows.length)).toBeGreaterThan(0);

      // Against epochs: the same points at step / 20.
      const bySteps = (await chartsOf(page)).loss!.data[0]!;
      await page.click('button.xaxis[data-x="epoch"]');
      expect((await chartsOf(page)).loss!.data[0]).toEqual(bySteps.map((step) => step! / 20));

      const report = await context.newPage();
      report.on('pageerror', (e) => pageErrors.push(e.message));
      await report.goto(pathToFileURL(path.join(out, 'report.html')).href);
      await report.waitForFunction(() => 'loss' in ((window as unknown as { ringtrainDashboard?: { charts: object } }).ringtrainDashboard?.charts ?? {}), undefined, { timeout: 10_000 });
      expect(await report.textContent('.title .badge')).toBe('stopped');
      expectLossesShown(await chartsOf(report), log);
      expect(pageErrors).toEqual([]);
    } finally {
      training.kill('SIGKILL');
      await context?.close();
      await server.close();
    }
  });
});
