/**
 * Downloads into the cache, verified by SHA-256.
 *
 * A file is used from the cache only when its SHA-256 matches. Otherwise it is fetched into a
 * temporary file in the same folder (`.<name>.<pid>.<random>.part`), hashed while it streams,
 * and renamed to its final name only after the hash matched, so the final name never holds a
 * partial or wrong file, and concurrent runs do not clobber each other's downloads.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { DataError } from '../errors.js';
import { formatBytes, isFile } from './sources/files.js';

export interface EnsureFileOptions {
  /** File name in the cache folder, and the last part of the URL under a mirror. */
  name: string;
  /** Official URLs, tried in order. */
  urls: readonly string[];
  /** Expected SHA-256, lowercase hex. */
  sha256: string;
  /** Folder holding the cached file (created if needed). */
  cacheDir: string;
  /** Base URL replacing the official ones: the file is fetched from `<mirror>/<name>`. */
  mirror?: string;
  /** false: use the cache only, never the network. Default true. */
  download?: boolean;
  /** What the user must provide to work offline, for the hint, e.g. "mnist needs a, b, c, d". */
  needed?: string;
  log?: (line: string) => void;
  /** Abort when no bytes arrive for this long. Default 60 s. */
  idleTimeoutMs?: number;
  /** Abort a download that takes longer than this in total. Default 1 hour. */
  totalTimeoutMs?: number;
}

/** The cache root: $RINGTRAIN_CACHE, else ~/.cache/ringtrain. */
export function defaultCacheDir(): string {
  const fromEnv = process.env['RINGTRAIN_CACHE'];
  return fromEnv ? fromEnv : join(homedir(), '.cache', 'ringtrain');
}

/** `<mirror>/<name>`, whether or not the mirror ends with a slash. */
export function mirrorUrl(mirror: string, name: string): string {
  return mirror.endsWith('/') ? mirror + name : `${mirror}/${name}`;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(createReadStream(file), hash);
  return hash.digest('hex');
}

/** Why one URL failed. `network`: no HTTP answer at all (offline, refused, timed out). */
type Failure =
  | { kind: 'network' | 'http'; url: string; reason: string }
  | { kind: 'checksum'; url: string; error: DataError };

function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  // fetch() wraps the system error: TypeError('fetch failed', { cause: Error('connect ECONNREFUSED …') }).
  const cause = (error as { cause?: unknown }).cause;
  if (cause instanceof Error) {
    const code = (cause as NodeJS.ErrnoException).code;
    return code && !cause.message.includes(code) ? `${code}: ${cause.message}` : cause.message;
  }
  return error.message;
}

function offlineHint(options: EnsureFileOptions): string {
  return `put the files in a folder and pass --data-dir DIR (${options.needed ?? `needed: ${options.name}`})`;
}

class CacheWriteError extends DataError {}

/**
 * Returns the path of `name` in `cacheDir`, downloading it first unless the cached copy has the
 * expected SHA-256. Throws DataError on a checksum mismatch, a network or HTTP failure, or when
 * the file is not cached and downloading is off.
 */
export async function ensureFile(options: EnsureFileOptions): Promise<string> {
  const { name, cacheDir, log } = options;
  const expected = options.sha256.toLowerCase();
  const target = join(cacheDir, name);
  let stale = false;
  if (await isFile(target)) {
    const found = await sha256File(target);
    if (found === expected) return target;
    stale = true;
    log?.(`${target}: cached file has SHA-256 ${found}, expected ${expected}; fetching it again`);
  }
  const urls = options.mirror !== undefined ? [mirrorUrl(options.mirror, name)] : [...options.urls];
  if (options.download === false) {
    throw new DataError(
      `${name} ${stale ? 'in the cache folder ' + cacheDir + ' has the wrong SHA-256' : 'is not in the cache folder ' + cacheDir} ` +
        `and downloading is off (data.download is false); ${offlineHint(options)}`,
    );
  }
  try {
    await mkdir(cacheDir, { recursive: true });
  } catch (error) {
    throw new DataError(`cannot create the cache folder ${cacheDir} (${describe(error)}); set RINGTRAIN_CACHE or data.cacheDir to a writable folder, or pass --data-dir DIR`, {
      cause: error,
    });
  }

  const failures: Failure[] = [];
  for (const url of urls) {
    const failure = await downloadOnce(url, target, expected, options);
    if (failure === undefined) return target;
    failures.push(failure);
    if (urls.length > 1) {
      const why = failure.kind === 'checksum' ? failure.error.message : failure.reason;
      log?.(`${name}: ${url} failed (${why})`);
    }
  }
  for (const f of failures) if (f.kind === 'checksum') throw f.error;
  const tried = failures.map((f) => `${f.url} (${f.kind === 'checksum' ? f.error.message : f.reason})`).join(' or from ');
  const offline = failures.every((f) => f.kind === 'network');
  throw new DataError(`cannot download ${name} from ${tried}; ${offline ? 'you appear to be offline: ' : ''}${offlineHint(options)}`);
}

/** One attempt; undefined on success, else why it failed. Cache write errors are thrown. */
async function downloadOnce(url: string, target: string, expected: string, options: EnsureFileOptions): Promise<Failure | undefined> {
  const { name, cacheDir, log } = options;
  const idleMs = options.idleTimeoutMs ?? 60_000;
  const totalMs = options.totalTimeoutMs ?? 3_600_000;
  const controller = new AbortController();
  let timedOut: string | undefined;
  const abort = (why: string) => {
    timedOut = why;
    controller.abort(new Error(why));
  };
  let idle = setTimeout(() => abort(`no data for ${idleMs / 1000} s`), idleMs);
  const total = setTimeout(() => abort(`not finished after ${totalMs / 1000} s`), totalMs);
  const resetIdle = () => {
    clearTimeout(idle);
    idle = setTimeout(() => abort(`no data for ${idleMs / 1000} s`), idleMs);
  };
  const temp = join(cacheDir, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  const started = Date.now();
  try {
    log?.(`downloading ${name} from ${url}`);
    let response: Response;
    try {
      // identity: the files are already compressed, and fetch would silently gunzip a body sent
      // with Content-Encoding: gzip, which then fails the checksum.
      response = await fetch(url, { signal: controller.signal, headers: { 'accept-encoding': 'identity' } });
    } catch (error) {
      return { kind: 'network', url, reason: timedOut ?? describe(error) };
    }
    if (!response.ok || response.body === null) {
      await response.body?.cancel().catch(() => {});
      return { kind: 'http', url, reason: `HTTP ${response.status}${response.statusText ? ` ${response.statusText}` : ''}` };
    }
    const encoding = response.headers.get('content-encoding');
    const encoded = encoding !== null && encoding !== 'identity';
    // With a content encoding, Content-Length counts the encoded bytes, not the ones we see.
    const length = encoded ? NaN : Number(response.headers.get('content-length') ?? NaN);
    const hash = createHash('sha256');
    let received = 0;
    let lastReport = Date.now();
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        resetIdle();
        hash.update(chunk);
        received += chunk.length;
        if (Date.now() - lastReport >= 10_000) {
          lastReport = Date.now();
          log?.(`downloading ${name}: ${formatBytes(received)}${Number.isFinite(length) ? ` of ${formatBytes(length)}` : ''}`);
        }
        callback(null, chunk);
      },
    });
    const out = createWriteStream(temp, { flags: 'wx' });
    let writeError: unknown;
    out.on('error', (error) => {
      writeError = error;
    });
    try {
      await pipeline(Readable.fromWeb(response.body as unknown as NodeReadableStream<Uint8Array>), tap, out);
    } catch (error) {
      if (writeError !== undefined) {
        throw new CacheWriteError(`cannot write ${temp} (${describe(writeError)}); set RINGTRAIN_CACHE or data.cacheDir to a writable folder, or pass --data-dir DIR`, {
          cause: writeError,
        });
      }
      return { kind: 'network', url, reason: timedOut ?? `download interrupted after ${formatBytes(received)}: ${describe(error)}` };
    }
    if (Number.isFinite(length) && received !== length) {
      return { kind: 'network', url, reason: `download interrupted: got ${received} of ${length} bytes` };
    }
    const found = hash.digest('hex');
    if (found !== expected) {
      return {
        kind: 'checksum',
        url,
        error: new DataError(
          `${name}: checksum mismatch for the file downloaded from ${url}: expected SHA-256 ${expected}, found ${found} ` +
            `(${formatBytes(received)}${encoded ? `, sent with Content-Encoding: ${encoding}` : ''}); the download was discarded`,
        ),
      };
    }
    try {
      await rename(temp, target);
    } catch (error) {
      throw new CacheWriteError(`cannot move ${temp} to ${target} (${describe(error)})`, { cause: error });
    }
    log?.(`downloaded ${name} (${formatBytes(received)}) in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return undefined;
  } finally {
    clearTimeout(idle);
    clearTimeout(total);
    await rm(temp, { force: true }).catch(() => {});
  }
}
