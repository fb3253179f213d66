/**
 * README's library examples, as a user would use them: every ```ts block of "## The library" is
 * compiled with tsc --strict against the built package (imported as 'ringtrain') and run with
 * node, from a folder holding this repository's configs/. skipLibCheck: TensorFlow.js's own
 * declaration files do not pass --strict (the project's tsconfig skips them too); the examples'
 * use of ringtrain's types is checked all the same.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readCheckpointFile } from '../../src/checkpoint/format.js';
import { CheckpointStore } from '../../src/checkpoint/store.js';
import { root } from '../helpers/processes.js';

function libraryExamples(): string[] {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## The library\n'), readme.indexOf('\n## ', readme.indexOf('\n## The library\n') + 5));
  return [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

const dir = mkdtempSync(join(tmpdir(), 'ringtrain-readme-'));
const examples = libraryExamples();
mkdirSync(join(dir, 'node_modules'));
symlinkSync(root, join(dir, 'node_modules', 'ringtrain'));
symlinkSync(join(root, 'node_modules', '@types'), join(dir, 'node_modules', '@types'));
symlinkSync(join(root, 'configs'), join(dir, 'configs'));
writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module' }));
writeFileSync(
  join(dir, 'tsconfig.json'),
  JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', outDir: 'out', types: ['node'], skipLibCheck: true }, include: ['*.ts'] }),
);
examples.forEach((code, i) => writeFileSync(join(dir, `example${i + 1}.ts`), code));

function run(example: number) {
  const result = spawnSync(process.execPath, [join(dir, 'out', `example${example}.js`)], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  expect(result.stderr).toBe('');
  expect(result.status).toBe(0);
  return result.stdout.trim().split('\n');
}

describe("README's library examples", () => {
  it('are three, and compile under tsc --strict against the built package', () => {
    expect(examples).toHaveLength(3);
    const tsc = spawnSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    expect(tsc.stdout + tsc.stderr).toBe('');
    expect(tsc.status).toBe(0);
  }, 300_000); // node processes starting replicas on a busy 2-core machine can take minutes

  it('the first trains xor from its config file (loss falling), then step by step', () => {
    const lines = run(1);
    expect(lines.map((l) => l.split(' ')[0])).toEqual(['100', '200', expect.any(String), expect.any(String)]);
    const losses = lines.slice(0, 2).map((l) => Number(l.split(' ')[1]));
    expect(losses[1]!).toBeLessThan(losses[0]!);
    const accuracy = Number(lines[2]);
    expect(accuracy * 4).toBe(Math.round(accuracy * 4)); // a share of the 4 points
    const [loss, outputs, weights] = lines[3]!.split(' ');
    expect(Number(loss)).toBeGreaterThan(0);
    expect([outputs, weights]).toEqual(['4', '4']); // xor's model: 2 kernels and 2 biases
  }, 300_000); // node processes starting replicas on a busy 2-core machine can take minutes

  it('the second trains data built in code with no data section, and loadCheckpoint gives back the same model', async () => {
    const [trained, same, epoch] = run(2)[0]!.split(' ');
    expect(same).toBe('true');
    expect(epoch).toBe('30');
    // The loss recomputed here from the checkpoint the example wrote: y = 3x + 1 learnt.
    const state = await readCheckpointFile(new CheckpointStore(join(dir, 'runs', 'line', 'checkpoints')).resolve('latest'));
    const [w, b] = state.params;
    let sum = 0;
    for (let i = 0; i < 64; i++) {
      const x = Math.fround(i / 32 - 1);
      sum += (w! * x + b! - Math.fround(3 * x + 1)) ** 2;
    }
    expect(Number(trained)).toBeCloseTo(sum / 64, 6);
    expect(Number(trained)).toBeLessThan(1e-3);
  }, 300_000); // node processes starting replicas on a busy 2-core machine can take minutes

  it('the third (callbacks) stops xor by its own callback once the loss is below 0.5, long before its 1000 epochs', () => {
    const { reason, epochs, loss } = JSON.parse(run(3)[0]!) as { reason: string; epochs: number; loss: number };
    expect(reason).toBe('loss below 0.5');
    expect(loss).toBeLessThan(0.5);
    expect(epochs).toBeGreaterThan(1);
    expect(epochs).toBeLessThan(1000);
  }, 300_000);
});
