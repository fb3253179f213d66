import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeCheckpoint } from '../../src/checkpoint/format.js';
import { CheckpointStore, checkpointFileName, parseCheckpointFileName } from '../../src/checkpoint/store.js';
import { bytesOf, checkpointErrorOf, makeState, snapshotDir } from './fixtures.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-store-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const stateAt = (epoch: number, globalStep: number) => makeState({ units: 2, epoch, globalStep });
const names = (store: CheckpointStore) => store.list().map((e) => e.file);

describe('file names', () => {
  it('name the epoch and global step, padded', () => {
    expect(checkpointFileName({ epoch: 3, globalStep: 120 })).toBe('ckpt-e0003-s000120.rtckpt');
    expect(checkpointFileName({ epoch: 12345, globalStep: 1234567 }, 'final')).toBe('ckpt-e12345-s1234567-final.rtckpt');
    expect(parseCheckpointFileName('ckpt-e0003-s000120.rtckpt')).toEqual({ epoch: 3, globalStep: 120 });
    expect(parseCheckpointFileName('ckpt-e0003-s000120-final.rtckpt')).toEqual({ epoch: 3, globalStep: 120, tag: 'final' });
    for (const other of ['latest', 'best', '.ckpt-e0003-s000120.rtckpt.77-abcd.tmp', 'ckpt-e0003-s000120.rtckpt.bak', 'ckpt-e3.rtckpt']) {
      expect(parseCheckpointFileName(other)).toBeUndefined();
    }
    expect(() => checkpointFileName({ epoch: 1, globalStep: 1 }, '../x')).toThrow(RangeError);
    expect(() => new CheckpointStore(dir, { keepLast: 0 })).toThrow('keepLast must be an integer >= 1 or Infinity, got 0');
  });
});

describe('CheckpointStore', () => {
  it('writes atomically, and latest follows the writes', async () => {
    const store = new CheckpointStore(path.join(dir, 'nested', 'checkpoints'));
    const first = stateAt(0, 10);
    const file = await store.write(first);
    expect(file).toBe(path.join(store.dir, 'ckpt-e0000-s000010.rtckpt'));
    expect(await readFile(file)).toEqual(Buffer.from(encodeCheckpoint(first)));
    expect(await readFile(path.join(store.dir, 'latest'), 'utf8')).toBe('ckpt-e0000-s000010.rtckpt\n');
    expect(store.resolve('latest')).toBe(file);

    await store.write(stateAt(1, 20));
    expect(store.resolve('latest')).toBe(path.join(store.dir, 'ckpt-e0001-s000020.rtckpt'));
    const back = await store.read('latest');
    expect(back.position.globalStep).toBe(20);
    expect(bytesOf(back.params)).toEqual(bytesOf(stateAt(1, 20).params));
    expect(store.list()).toEqual([
      { file: 'ckpt-e0000-s000010.rtckpt', path: file, epoch: 0, globalStep: 10 },
      { file: 'ckpt-e0001-s000020.rtckpt', path: path.join(store.dir, 'ckpt-e0001-s000020.rtckpt'), epoch: 1, globalStep: 20 },
    ]);
    // Only checkpoints and pointers: no temporary file is left behind.
    expect((await readdir(store.dir)).sort()).toEqual(['ckpt-e0000-s000010.rtckpt', 'ckpt-e0001-s000020.rtckpt', 'latest']);
    // By name, by path.
    expect((await store.read('ckpt-e0000-s000010.rtckpt')).position.globalStep).toBe(10);
    expect((await store.read(file)).position.globalStep).toBe(10);
  });

  it('serializes concurrent writes', async () => {
    const store = new CheckpointStore(dir, { keepLast: 10 });
    await Promise.all([1, 2, 3, 4].map((s) => store.write(stateAt(0, s))));
    expect(names(store)).toEqual([1, 2, 3, 4].map((s) => checkpointFileName({ epoch: 0, globalStep: s })));
    expect(store.resolve('latest')).toBe(path.join(dir, 'ckpt-e0000-s000004.rtckpt'));
  });

  it('keeps the last keepLast checkpoints and never touches other files', async () => {
    await writeFile(path.join(dir, 'notes.txt'), 'mine');
    await writeFile(path.join(dir, 'ckpt-e0000-s000001.rtckpt.bak'), 'a backup');
    await mkdir(path.join(dir, 'ckpt-e0000-s000000.rtckpt')); // a directory with a checkpoint's name
    const store = new CheckpointStore(dir, { keepLast: 2 });
    for (let s = 1; s <= 5; s++) await store.write(stateAt(Math.floor(s / 2), s * 10));
    expect(names(store)).toEqual(['ckpt-e0002-s000040.rtckpt', 'ckpt-e0002-s000050.rtckpt']);
    expect((await readdir(dir)).sort()).toEqual([
      'ckpt-e0000-s000000.rtckpt',
      'ckpt-e0000-s000001.rtckpt.bak',
      'ckpt-e0002-s000040.rtckpt',
      'ckpt-e0002-s000050.rtckpt',
      'latest',
      'notes.txt',
    ]);
    expect(await readFile(path.join(dir, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('keeps tagged checkpoints', async () => {
    const store = new CheckpointStore(dir, { keepLast: 1 });
    await store.write(stateAt(0, 1), { tag: 'warmup' });
    for (let s = 2; s <= 4; s++) await store.write(stateAt(0, s));
    expect(names(store)).toEqual(['ckpt-e0000-s000001-warmup.rtckpt', 'ckpt-e0000-s000004.rtckpt']);
    expect(store.list()[0]!.tag).toBe('warmup');
  });

  it('keeps the best checkpoint by a monitored metric (min)', async () => {
    const store = new CheckpointStore(dir, { keepLast: 2 });
    const losses = [0.5, 0.3, 0.4, 0.6, Number.NaN, 0.35];
    for (const [i, value] of losses.entries()) {
      await store.write(stateAt(i, (i + 1) * 10), { metric: { name: 'val_loss', value, mode: 'min' } });
    }
    expect(names(store)).toEqual(['ckpt-e0001-s000020.rtckpt', 'ckpt-e0004-s000050.rtckpt', 'ckpt-e0005-s000060.rtckpt']);
    expect(store.resolve('best')).toBe(path.join(dir, 'ckpt-e0001-s000020.rtckpt'));
    expect(await readFile(path.join(dir, 'best'), 'utf8')).toBe('ckpt-e0001-s000020.rtckpt\n{"name":"val_loss","mode":"min","value":0.3}\n');
    expect(store.readBest()).toEqual({ file: 'ckpt-e0001-s000020.rtckpt', metric: { name: 'val_loss', mode: 'min', value: 0.3 } });
    expect((await store.read('best')).position.globalStep).toBe(20);

    // A better one takes over, and the old best is then removed like any other.
    await store.write(stateAt(6, 70), { metric: { name: 'val_loss', value: 0.1, mode: 'min' } });
    expect(names(store)).toEqual(['ckpt-e0005-s000060.rtckpt', 'ckpt-e0006-s000070.rtckpt']);
    expect(store.resolve('best')).toBe(path.join(dir, 'ckpt-e0006-s000070.rtckpt'));
  });

  it('keeps the best checkpoint by a monitored metric (max)', async () => {
    const store = new CheckpointStore(dir, { keepLast: 1 });
    for (const [i, value] of [0.7, 0.9, 0.8, 0.85].entries()) {
      await store.write(stateAt(i, i + 1), { metric: { name: 'val_accuracy', value, mode: 'max' } });
    }
    expect(names(store)).toEqual(['ckpt-e0001-s000002.rtckpt', 'ckpt-e0003-s000004.rtckpt']);
    expect(store.readBest()?.metric).toEqual({ name: 'val_accuracy', mode: 'max', value: 0.9 });
  });

  it('a leftover temporary file from an interrupted write is never taken for a checkpoint', async () => {
    const store = new CheckpointStore(dir, { keepLast: 2 });
    await store.write(stateAt(0, 10));
    await store.write(stateAt(1, 20));
    // The crash: a write of step 30 died half-way through its temporary file.
    const partial = encodeCheckpoint(stateAt(2, 30));
    const temporary = `.ckpt-e0002-s000030.rtckpt.${process.pid + 1}-0badf00d.tmp`;
    await writeFile(path.join(dir, temporary), partial.subarray(0, partial.length >> 1));
    // Another died while replacing the pointer, after its checkpoint had been renamed into place.
    await writeFile(path.join(dir, 'ckpt-e0001-s000025.rtckpt'), encodeCheckpoint(stateAt(1, 25)));
    await writeFile(path.join(dir, '.latest.4242-12345678.tmp'), 'ckpt-e0001-s000');
    const before = await snapshotDir(dir);

    expect(store.resolve('latest')).toBe(path.join(dir, 'ckpt-e0001-s000020.rtckpt'));
    expect((await store.read('latest')).position.globalStep).toBe(20);
    expect(names(store)).toEqual(['ckpt-e0000-s000010.rtckpt', 'ckpt-e0001-s000020.rtckpt', 'ckpt-e0001-s000025.rtckpt']);
    expect((await store.read('ckpt-e0001-s000025.rtckpt')).position.globalStep).toBe(25);
    expect(await snapshotDir(dir)).toEqual(before);

    // Writing on carries on, and still leaves the leftovers alone.
    await store.write(stateAt(2, 30));
    await store.write(stateAt(3, 40));
    expect(names(store)).toEqual(['ckpt-e0002-s000030.rtckpt', 'ckpt-e0003-s000040.rtckpt']);
    expect(await readFile(path.join(dir, temporary))).toEqual(Buffer.from(partial.subarray(0, partial.length >> 1)));
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp')).sort()).toEqual([temporary, '.latest.4242-12345678.tmp']);
  });

  it('openForWriting creates the folder and removes leftovers of interrupted writes, not those of a running process', async () => {
    const store = new CheckpointStore(path.join(dir, 'new', 'checkpoints'), { keepLast: 2 });
    expect(store.openForWriting()).toEqual([]);
    await store.write(stateAt(0, 10));
    // A process that has exited (killed during a write): its pid names the leftovers.
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const leftovers = [`.ckpt-e0001-s000020.rtckpt.${dead}-0badf00d.tmp`, `.latest.${dead}-12345678.tmp`, `.best.${dead}-abcdef01.tmp`];
    const running = `.ckpt-e0001-s000030.rtckpt.${process.pid}-00000000.tmp`; // this process, still writing
    const others = ['notes.txt', `.ckpt-e0001-s000040.rtckpt.tmp`];
    for (const name of [...leftovers, running, ...others]) await writeFile(path.join(store.dir, name), 'partial');
    expect(store.openForWriting().sort()).toEqual([...leftovers].sort());
    expect((await readdir(store.dir)).sort()).toEqual([...others, running, 'ckpt-e0000-s000010.rtckpt', 'latest'].sort());
    expect((await store.read('latest')).position.globalStep).toBe(10);
  });

  it("openForWriting removes the write-check files of dead processes, not a running one's", async () => {
    const store = new CheckpointStore(dir);
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const probe = `.ringtrain-probe-${dead}.tmp`; // a start killed while checking the folder
    const running = `.ringtrain-probe-${process.ppid}.tmp`; // the parent (vitest) is alive
    const others = ['.ringtrain-probe-x.tmp', '.ringtrain-probe-12.tmp.bak'];
    for (const name of [probe, running, ...others]) await writeFile(path.join(dir, name), 'ringtrain write check\n');
    expect(store.openForWriting()).toEqual([probe]);
    expect((await readdir(dir)).sort()).toEqual([running, ...others].sort());
  });

  it('openForWriting on a folder that cannot be made names it and the OS error', () => {
    const file = path.join(dir, 'a-file');
    return writeFile(file, 'x').then(() => {
      expect(() => new CheckpointStore(path.join(file, 'checkpoints')).openForWriting()).toThrow(`${path.join(file, 'checkpoints')}: cannot create the checkpoint folder: ENOTDIR (not a directory)`);
    });
  });

  // Skipped only where coreutils' mkfifo is missing (Debian and CI have it).
  it.skipIf(spawnSync('mkfifo', ['--version']).status !== 0)('a named pipe (FIFO) put in place of the latest pointer is refused at once, not read (which would block for ever)', async () => {
    const store = new CheckpointStore(dir, { keepLast: 2 });
    await store.write(stateAt(0, 10));
    await rm(path.join(dir, 'latest'));
    expect(spawnSync('mkfifo', [path.join(dir, 'latest')]).status).toBe(0);
    expect(() => store.resolve('latest')).toThrow(`${path.join(dir, 'latest')}: is a named pipe (FIFO), expected a checkpoint pointer (a regular file)`);
    expect(store.readBest()).toBeUndefined();
  });

  it('a failed write leaves the directory as it was', async () => {
    const store = new CheckpointStore(dir);
    await store.write(stateAt(0, 10));
    const before = await snapshotDir(dir);
    const bad = stateAt(1, 20);
    bad.params = bad.params.subarray(1);
    expect(() => store.write(bad)).toThrow(RangeError);
    expect(() => store.write(stateAt(1, 20), { tag: 'a/b' })).toThrow(RangeError);
    expect(await snapshotDir(dir)).toEqual(before);
  });

  describe('errors', () => {
    it('missing latest pointer, in a missing or an empty directory', async () => {
      const nowhere = new CheckpointStore(path.join(dir, 'nope'));
      let e = await checkpointErrorOf(() => nowhere.resolve('latest'));
      expect(e.problem).toBe('pointer');
      expect(e.message).toBe(`${path.join(dir, 'nope', 'latest')}: no such pointer file: the checkpoint directory ${path.join(dir, 'nope')} does not exist`);
      expect(nowhere.list()).toEqual([]);

      const empty = new CheckpointStore(dir);
      e = await checkpointErrorOf(() => empty.read('latest'));
      expect(e.message).toBe(`${path.join(dir, 'latest')}: no such pointer file: no checkpoint has been recorded in ${dir}`);
      e = await checkpointErrorOf(() => empty.resolve('best'));
      expect(e.message).toBe(`${path.join(dir, 'best')}: no such pointer file: no best checkpoint has been recorded in ${dir}`);
    });

    it('latest pointing to a missing file names both', async () => {
      const store = new CheckpointStore(dir);
      await store.write(stateAt(0, 10));
      await store.write(stateAt(0, 20));
      await rm(path.join(dir, 'ckpt-e0000-s000020.rtckpt'));
      const before = await snapshotDir(dir);
      const e = await checkpointErrorOf(() => store.read('latest'));
      expect(e.problem).toBe('pointer');
      expect(e.file).toBe(path.join(dir, 'latest'));
      expect(e.message).toBe(
        `${path.join(dir, 'latest')}: points to ckpt-e0000-s000020.rtckpt, but ${path.join(dir, 'ckpt-e0000-s000020.rtckpt')} does not exist`,
      );
      expect(await snapshotDir(dir)).toEqual(before);
    });

    it('damaged pointer', async () => {
      const store = new CheckpointStore(dir);
      await writeFile(path.join(dir, 'latest'), '../../etc/passwd\n');
      expect((await checkpointErrorOf(() => store.resolve('latest'))).message).toBe(
        `${path.join(dir, 'latest')}: damaged pointer: expected a checkpoint file name such as ckpt-e0003-s000120.rtckpt, found "../../etc/passwd\\n"`,
      );
    });

    it('a directory, a missing file, and damaged files, leaving the other checkpoints untouched', async () => {
      const store = new CheckpointStore(dir, { keepLast: 10 });
      for (let s = 1; s <= 3; s++) await store.write(stateAt(0, s));
      const good = await readFile(path.join(dir, 'ckpt-e0000-s000002.rtckpt'));
      const before = await snapshotDir(dir);

      let e = await checkpointErrorOf(() => store.read(dir));
      expect(e.message).toBe(`${dir}: is a directory, not a checkpoint file`);
      e = await checkpointErrorOf(() => store.read('ckpt-e0000-s000009.rtckpt'));
      expect(e.message).toBe(`${path.join(dir, 'ckpt-e0000-s000009.rtckpt')}: no such checkpoint file`);

      // Damaged copies elsewhere: read through the store by path, each fails on its own.
      const other = await mkdtemp(path.join(os.tmpdir(), 'ringtrain-damaged-'));
      try {
        const cases: [string, Uint8Array, string][] = [
          ['empty.rtckpt', new Uint8Array(0), 'empty file (0 bytes), not a ringtrain checkpoint'],
          ['cut.rtckpt', good.subarray(0, 1000), `truncated: expected ${good.length} bytes (32-byte header + ${good.length - 32}-byte payload), found 1000`],
          ['magic.rtckpt', new TextEncoder().encode('hello world, not a checkpoint'), 'wrong magic: expected "RTCKPT\\r\\n", found "hello wo" (not a ringtrain checkpoint)'],
        ];
        const flipped = Buffer.from(good);
        flipped[good.length >> 1]! ^= 0x20;
        cases.push(['flipped.rtckpt', flipped, 'checksum mismatch: payload CRC32C expected']);
        for (const [name, bytes, message] of cases) {
          const file = path.join(other, name);
          await writeFile(file, bytes);
          e = await checkpointErrorOf(() => store.read(file));
          expect(e.message.startsWith(`${file}: ${message}`)).toBe(true);
          expect(await snapshotDir(dir)).toEqual(before);
        }
      } finally {
        await rm(other, { recursive: true, force: true });
      }
      // A damaged checkpoint inside the directory fails alone; latest and the others still read.
      await writeFile(path.join(dir, 'ckpt-e0000-s000009.rtckpt'), good.subarray(0, 100));
      e = await checkpointErrorOf(() => store.read('ckpt-e0000-s000009.rtckpt'));
      expect(e.problem).toBe('truncated');
      expect((await store.read('latest')).position.globalStep).toBe(3);
      for (const [name, bytes] of before) expect(await readFile(path.join(dir, name))).toEqual(bytes);
    });
  });
});
