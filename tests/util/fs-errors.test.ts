/**
 * File-system failures that cannot be made for real here (this process runs as root, which
 * reads any folder, and races are not reproducible): node:fs is wrapped so that one call fails
 * the way the OS would make it fail.
 */
import * as fs from 'node:fs';
import { mkdtempSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CheckpointStore } from '../../src/checkpoint/store.js';
import { assertWritableFolder, makeFolder } from '../../src/util/fs-errors.js';

vi.mock('node:fs', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:fs')>();
  const wrapped = { ...real, mkdirSync: vi.fn(real.mkdirSync), readdirSync: vi.fn(real.readdirSync), writeFileSync: vi.fn(real.writeFileSync) };
  return { ...wrapped, default: wrapped };
});
const real = await vi.importActual<typeof import('node:fs')>('node:fs');

afterEach(() => {
  vi.mocked(fs.mkdirSync).mockReset().mockImplementation(real.mkdirSync);
  vi.mocked(fs.readdirSync).mockReset().mockImplementation(real.readdirSync as typeof fs.readdirSync);
  vi.mocked(fs.writeFileSync).mockReset().mockImplementation(real.writeFileSync);
});

function systemError(code: string, text: string, call: string, file: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${text}, ${call} '${file}'`), { code, syscall: call, path: file });
}

const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'ringtrain-fs-errors-'));

describe('makeFolder', () => {
  it('a folder another process creates meanwhile is not an error', () => {
    const dir = path.join(tmp(), 'a', 'b');
    // The recursive mkdir fails (ENOENT, as for a refusing parent); meanwhile another process creates 'a'.
    vi.mocked(fs.mkdirSync)
      .mockImplementationOnce(() => {
        throw systemError('ENOENT', 'no such file or directory', 'mkdir', dir);
      })
      .mockImplementationOnce((first) => {
        real.mkdirSync(first);
        throw systemError('EEXIST', 'file already exists', 'mkdir', String(first));
      });
    makeFolder(dir);
    expect(real.statSync(dir).isDirectory()).toBe(true);
  });

  it('a dangling link in the way is the real error (EEXIST)', () => {
    const base = tmp();
    symlinkSync(path.join(base, 'missing'), path.join(base, 'link'));
    expect(() => makeFolder(path.join(base, 'link', 'sub'))).toThrow(/^EEXIST: file already exists, mkdir/);
  });
});

describe('assertWritableFolder', () => {
  it('a probe that could not be written (ENOSPC after it was created) is not left behind', () => {
    const dir = tmp();
    vi.mocked(fs.writeFileSync).mockImplementationOnce((file) => {
      real.writeFileSync(file as string, ''); // created, then the disk is full
      throw systemError('ENOSPC', 'no space left on device', 'write', String(file));
    });
    expect(() => assertWritableFolder(dir, 'the output folder')).toThrow(`${dir}: cannot write in the output folder: ENOSPC (no space left on device)`);
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('CheckpointStore.openForWriting', () => {
  it('a folder that cannot be listed is a one-line error naming it and the OS error', () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'notes.txt'), 'x');
    vi.mocked(fs.readdirSync).mockImplementationOnce(() => {
      throw systemError('EACCES', 'permission denied', 'scandir', dir);
    });
    expect(() => new CheckpointStore(dir).openForWriting()).toThrow(`${dir}: cannot list the checkpoint folder: EACCES (permission denied)`);
  });
});
