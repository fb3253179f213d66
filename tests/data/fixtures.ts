/** Small generated data files and a loopback HTTP server for the data tests. */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'ringtrain-data-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function gzip(bytes: Uint8Array): Buffer {
  return gzipSync(bytes);
}

/** Deterministic pixel value of image i at byte j. */
export function pixel(i: number, j: number): number {
  return (i * 31 + j * 7) % 256;
}

/** An IDX images file: magic 0x00000803, count, rows, cols, then the pixels. */
export function idxImages(count: number, rows = 28, cols = 28, options: { magic?: number; pixelBytes?: number } = {}): Buffer {
  const n = options.pixelBytes ?? count * rows * cols;
  const out = Buffer.alloc(16 + n);
  out.writeUInt32BE(options.magic ?? 0x00000803, 0);
  out.writeUInt32BE(count, 4);
  out.writeUInt32BE(rows, 8);
  out.writeUInt32BE(cols, 12);
  for (let k = 0; k < n; k++) out[16 + k] = pixel(Math.floor(k / (rows * cols)), k % (rows * cols));
  return out;
}

/** An IDX labels file: magic 0x00000801, count, then one byte per label. */
export function idxLabels(labels: readonly number[], options: { magic?: number } = {}): Buffer {
  const out = Buffer.alloc(8 + labels.length);
  out.writeUInt32BE(options.magic ?? 0x00000801, 0);
  out.writeUInt32BE(labels.length, 4);
  labels.forEach((label, i) => (out[8 + i] = label));
  return out;
}

export function labelsFor(count: number, offset = 0): number[] {
  return Array.from({ length: count }, (_, i) => (i + offset) % 10);
}

/**
 * A CIFAR-10 batch of `count` records. Record r has label (r + labelOffset) % 10 and the pixel
 * at row y, column x, channel c equal to cifarPixel(r + pixelOffset, y, x, c).
 */
export function cifarBatch(count: number, labelOffset = 0, pixelOffset = 0): Buffer {
  const out = Buffer.alloc(count * 3073);
  for (let r = 0; r < count; r++) {
    const base = r * 3073;
    out[base] = (r + labelOffset) % 10;
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) out[base + 1 + c * 1024 + y * 32 + x] = cifarPixel(r + pixelOffset, y, x, c);
      }
    }
  }
  return out;
}

export function cifarPixel(record: number, y: number, x: number, c: number): number {
  return (record * 13 + y * 5 + x * 3 + c * 101) % 256;
}

export const CIFAR_BATCHES = ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch'];

/** The official archive layout: cifar-10-batches-bin/<batch>.bin (+ batches.meta.txt), gzipped. */
export async function cifarTarGz(batches: Record<string, Buffer>, extra: Record<string, Buffer> = {}): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  pack.entry({ name: 'cifar-10-batches-bin/', type: 'directory' });
  pack.entry({ name: 'cifar-10-batches-bin/batches.meta.txt' }, Buffer.from('airplane\nautomobile\n'));
  for (const [name, bytes] of Object.entries(extra)) pack.entry({ name }, bytes);
  for (const [batch, bytes] of Object.entries(batches)) pack.entry({ name: `cifar-10-batches-bin/${batch}.bin` }, bytes);
  pack.finalize();
  await done;
  return gzipSync(Buffer.concat(chunks));
}

export interface TestServer {
  url: string;
  /** Requests by path. */
  requests: Map<string, number>;
  close: () => Promise<void>;
}

/** Serves `files` (by path without the leading slash) on 127.0.0.1; other paths → 404. */
export async function serveFiles(
  files: Map<string, Uint8Array> | ((path: string, req: IncomingMessage, res: ServerResponse) => void),
): Promise<TestServer> {
  const requests = new Map<string, number>();
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname).replace(/^\/+/, '');
    requests.set(path, (requests.get(path) ?? 0) + 1);
    if (typeof files === 'function') return files(path, req, res);
    const body = files.get(path);
    if (body === undefined) {
      res.writeHead(404, 'Not Found').end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A loopback port that nothing listens on (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
