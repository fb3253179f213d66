import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureFile, mirrorUrl } from '../../src/data/download.js';
import { loadData } from '../../src/data/load-data.js';
import { OFFICIAL_SOURCES } from '../../src/data/sources/official.js';
import {
  CIFAR_BATCHES,
  cifarBatch,
  cifarTarGz,
  closedPort,
  gzip,
  idxImages,
  idxLabels,
  labelsFor,
  serveFiles,
  sha256,
  tempDir,
  type TestServer,
} from './fixtures.js';
import { dataErrorOf } from '../helpers/data-error.js';

let root: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir: root, cleanup } = await tempDir()));
afterAll(() => cleanup());

const servers: TestServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(...args: Parameters<typeof serveFiles>): Promise<TestServer> {
  const server = await serveFiles(...args);
  servers.push(server);
  return server;
}

let next = 0;
async function freshCache(): Promise<string> {
  return join(root, `cache-${next++}`);
}

describe('ensureFile', () => {
  it('downloads through the mirror, verifies, caches, and does not fetch again', async () => {
    const body = gzip(Buffer.from('hello data '.repeat(1000)));
    const server = await serve(new Map([['files/sample.gz', body]]));
    const cacheDir = await freshCache();
    const lines: string[] = [];
    const options = {
      name: 'sample.gz',
      urls: ['https://example.invalid/never-used/sample.gz'],
      sha256: sha256(body),
      cacheDir,
      mirror: `${server.url}files`,
      log: (line: string) => lines.push(line),
    };
    const path = await ensureFile(options);
    expect(path).toBe(join(cacheDir, 'sample.gz'));
    expect((await readFile(path)).equals(body)).toBe(true);
    expect(server.requests.get('files/sample.gz')).toBe(1);
    expect(lines.some((l) => l.includes(`downloading sample.gz from ${server.url}files/sample.gz`))).toBe(true);

    expect(await ensureFile(options)).toBe(path);
    expect(server.requests.get('files/sample.gz')).toBe(1);
    expect(await readdir(cacheDir)).toEqual(['sample.gz']);
  });

  it('replaces a cached file whose checksum is wrong', async () => {
    const body = Buffer.from('the right bytes');
    const server = await serve(new Map([['f.bin', body]]));
    const cacheDir = await freshCache();
    const options = { name: 'f.bin', urls: [], sha256: sha256(body), cacheDir, mirror: server.url };
    await ensureFile(options);
    await writeFile(join(cacheDir, 'f.bin'), 'tampered');
    const path = await ensureFile(options);
    expect((await readFile(path)).equals(body)).toBe(true);
    expect(server.requests.get('f.bin')).toBe(2);
  });

  it('wrong bytes → checksum DataError, nothing under the final name', async () => {
    const served = Buffer.from('not what you expected');
    const server = await serve(new Map([['train-images-idx3-ubyte.gz', served]]));
    const cacheDir = await freshCache();
    const expected = 'ab'.repeat(32);
    const url = mirrorUrl(server.url, 'train-images-idx3-ubyte.gz');
    const { message } = await dataErrorOf(
      ensureFile({ name: 'train-images-idx3-ubyte.gz', urls: [], sha256: expected, cacheDir, mirror: server.url }),
    );
    expect(message).toContain('train-images-idx3-ubyte.gz: checksum mismatch');
    expect(message).toContain(url);
    expect(message).toContain(`expected SHA-256 ${expected}`);
    expect(message).toContain(`found ${sha256(served)}`);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('a closed port → the offline DataError with the --data-dir hint', async () => {
    const port = await closedPort();
    const cacheDir = await freshCache();
    const url = `http://127.0.0.1:${port}/train-images-idx3-ubyte.gz`;
    const { message } = await dataErrorOf(
      ensureFile({
        name: 'train-images-idx3-ubyte.gz',
        urls: [url],
        sha256: 'ab'.repeat(32),
        cacheDir,
        needed: 'mnist needs train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz',
      }),
    );
    expect(message).toMatch(/^cannot download train-images-idx3-ubyte\.gz from http:\/\/127\.0\.0\.1:\d+\/train-images-idx3-ubyte\.gz \(.*ECONNREFUSED.*\)/);
    expect(message).toContain(
      '; you appear to be offline: put the files in a folder and pass --data-dir DIR (mnist needs train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz)',
    );
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('tries the next URL when one fails; an HTTP error is not called offline', async () => {
    const body = Buffer.from('payload');
    const server = await serve(new Map([['b/x.bin', body]]));
    const cacheDir = await freshCache();
    const lines: string[] = [];
    const path = await ensureFile({
      name: 'x.bin',
      urls: [`${server.url}a/x.bin`, `${server.url}b/x.bin`],
      sha256: sha256(body),
      cacheDir,
      log: (l) => lines.push(l),
    });
    expect((await readFile(path)).equals(body)).toBe(true);
    expect(lines.some((l) => l.includes('a/x.bin failed (HTTP 404 Not Found)'))).toBe(true);

    const { message } = await dataErrorOf(
      ensureFile({ name: 'y.bin', urls: [`${server.url}a/y.bin`, `${server.url}b/y.bin`], sha256: sha256(body), cacheDir: await freshCache() }),
    );
    expect(message).toBe(
      `cannot download y.bin from ${server.url}a/y.bin (HTTP 404 Not Found) or from ${server.url}b/y.bin (HTTP 404 Not Found); ` +
        'put the files in a folder and pass --data-dir DIR (needed: y.bin)',
    );
  });

  it('a stalled server hits the idle timeout and leaves no partial file', async () => {
    const server = await serve((_path, _req, res) => {
      res.writeHead(200, { 'content-length': 1000 });
      res.write(Buffer.alloc(10));
      // …and never sends the rest.
    });
    const cacheDir = await freshCache();
    const { message } = await dataErrorOf(
      ensureFile({ name: 'slow.bin', urls: [], sha256: 'ab'.repeat(32), cacheDir, mirror: server.url, idleTimeoutMs: 300 }),
    );
    expect(message).toContain(`cannot download slow.bin from ${server.url}slow.bin (no data for 0.3 s)`);
    expect(await readdir(cacheDir)).toEqual([]);
  });

  it('download: false uses the cache only', async () => {
    const cacheDir = await freshCache();
    const { message } = await dataErrorOf(
      ensureFile({ name: 'z.bin', urls: ['http://127.0.0.1:9/z.bin'], sha256: 'ab'.repeat(32), cacheDir, download: false }),
    );
    expect(message).toContain(`z.bin is not in the cache folder ${cacheDir} and downloading is off (data.download is false)`);
    expect(message).toContain('pass --data-dir DIR');
  });

  it('official sources verify real SHA-256s', () => {
    for (const source of Object.values(OFFICIAL_SOURCES)) {
      for (const file of source.files) {
        expect(file.sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(file.urls.length).toBeGreaterThan(0);
        for (const url of file.urls) expect(url.endsWith(`/${file.name}`)).toBe(true);
      }
    }
  });
});

describe('loadData with downloads', () => {
  function mnistFiles(): Map<string, Buffer> {
    return new Map([
      ['train-images-idx3-ubyte.gz', gzip(idxImages(30))],
      ['train-labels-idx1-ubyte.gz', gzip(idxLabels(labelsFor(30)))],
      ['t10k-images-idx3-ubyte.gz', gzip(idxImages(10))],
      ['t10k-labels-idx1-ubyte.gz', gzip(idxLabels(labelsFor(10, 5)))],
    ]);
  }

  function checksumsOf(files: Map<string, Buffer>): Record<string, string> {
    return Object.fromEntries([...files].map(([name, bytes]) => [name, sha256(bytes)]));
  }

  it('fetches MNIST from a mirror into <cacheDir>/mnist and reads it; the second load is offline', async () => {
    const files = mnistFiles();
    const server = await serve(new Map([...files].map(([name, bytes]) => [`mnist/${name}`, bytes])));
    const cacheDir = await freshCache();
    const config = { source: 'mnist' as const, mirror: `${server.url}mnist/`, cacheDir, testLimit: 4 };
    const options = { seed: 1, checksums: checksumsOf(files) };
    const data = await loadData(config, options);
    expect(data.classes).toBe(10);
    expect(data.train.name).toBe('mnist/train');
    expect(data.train.size).toBe(30);
    expect(data.train.featureShape).toEqual([28, 28, 1]);
    expect(data.train.labelShape).toEqual([]);
    expect(data.train.featureScale).toBeCloseTo(1 / 255);
    expect(data.test?.size).toBe(4);
    expect([...new Float32Array(data.test!.labels)]).toEqual([5, 6, 7, 8]);
    expect(Buffer.from(data.train.features).equals(idxImages(30).subarray(16))).toBe(true);
    expect((await readdir(join(cacheDir, 'mnist'))).sort()).toEqual([...files.keys()].sort());
    expect([...server.requests.values()]).toEqual([1, 1, 1, 1]);

    await server.close();
    const again = await loadData({ ...config, download: false }, options);
    expect(again.train.size).toBe(30);
  });

  it('without test checksums the official hashes reject generated files', async () => {
    const files = mnistFiles();
    const server = await serve(files);
    const cacheDir = await freshCache();
    const { message } = await dataErrorOf(loadData({ source: 'fashion-mnist', mirror: server.url, cacheDir }, { seed: 1 }));
    expect(message).toContain('train-images-idx3-ubyte.gz: checksum mismatch');
    expect(message).toContain(OFFICIAL_SOURCES['fashion-mnist'].files[0]!.sha256);
    expect(await readdir(join(cacheDir, 'fashion-mnist'))).toEqual([]);
  });

  it('offline with nothing cached names the files to put in --data-dir', async () => {
    const port = await closedPort();
    const { message } = await dataErrorOf(
      loadData({ source: 'mnist', mirror: `http://127.0.0.1:${port}`, cacheDir: await freshCache() }, { seed: 1 }),
    );
    expect(message).toContain('you appear to be offline: put the files in a folder and pass --data-dir DIR');
    expect(message).toContain(
      'pass --data-dir DIR (mnist needs train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz, gzip or raw)',
    );
  });

  it('cifar10 downloads the archive and reads it', async () => {
    const archive = await cifarTarGz(Object.fromEntries(CIFAR_BATCHES.map((b, k) => [b, cifarBatch(2, k)])));
    const server = await serve(new Map([['cifar-10-binary.tar.gz', archive]]));
    const cacheDir = await freshCache();
    const data = await loadData(
      { source: 'cifar10', mirror: server.url, cacheDir },
      { seed: 1, checksums: { 'cifar-10-binary.tar.gz': sha256(archive) } },
    );
    expect(data.train.size).toBe(10);
    expect(data.test?.size).toBe(2);
    expect(await readdir(join(cacheDir, 'cifar10'))).toEqual(['cifar-10-binary.tar.gz']);
  });
});
