/**
 * The dashboard's one HTML page, self-contained: uPlot's script and style (read from the
 * installed package, so nothing is fetched when it is viewed), the page's own script
 * (client-script.ts) and, for report.html, the run's data. The served page fetches its data
 * from the server it came from; report.html carries it inside and needs nothing else.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { CLIENT_SCRIPT, PAGE_STYLE } from './client-script.js';
import type { RunData } from './run-data.js';

export type PageBoot = { mode: 'live'; pollMs: number } | { mode: 'report'; runs: RunData[]; generatedAt: string };

let chartAssets: { script: string; style: string } | undefined;

/** uPlot's browser build and style from node_modules (read once): bundled into every page, never linked. */
function uplotAssets(): { script: string; style: string } {
  if (!chartAssets) {
    const require = createRequire(import.meta.url);
    const read = (file: string) => readFileSync(require.resolve(`uplot/dist/${file}`), 'utf8');
    chartAssets = { script: read('uPlot.iife.min.js'), style: read('uPlot.min.css') };
  }
  return chartAssets;
}

/** JSON safe inside a <script> element: no `</script>`, no `<!--`, no line separators that end a JS string. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

export interface Page {
  html: string;
  /** The Content-Security-Policy the page also states in a meta element (the server sends it as a header too). */
  csp: string;
}

export function renderPage(title: string, boot: PageBoot): Page {
  const { script, style } = uplotAssets();
  const styles = `${style}\n${PAGE_STYLE}`;
  // Only these scripts and styles run: anything a run's name could smuggle in does not.
  const csp = [
    "default-src 'none'",
    `script-src ${sha256(script)} ${sha256(CLIENT_SCRIPT)}`,
    `style-src ${sha256(styles)}`,
    boot.mode === 'live' ? "connect-src 'self'" : '',
    'img-src data:',
    "base-uri 'none'",
    "form-action 'none'",
  ]
    .filter(Boolean)
    .join('; ');
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>${styles}</style>
</head>
<body>
<script type="application/json" id="rt-boot">${scriptJson(boot)}</script>
<script>${script}</script>
<script>${CLIENT_SCRIPT}</script>
</body>
</html>
`;
  return { html, csp };
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
