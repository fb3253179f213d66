/**
 * vitest global setup: every temporary folder the suites make (mkdtemp under os.tmpdir(), in
 * test workers and in the CLI processes they start) goes under one folder of this run, removed
 * when the run ends, so the suite leaves nothing in /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'ringtrain-tests-'));
  process.env.TMPDIR = root;
  return () => rmSync(root, { recursive: true, force: true });
}
