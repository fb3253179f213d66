/**
 * Reading launcher variables and flags with one-line UserErrors that name the variable, what was
 * expected and what was found. Shared by the contracts in contracts/.
 *
 * An empty (or all-blank) environment variable counts as unset, as in most launchers' own
 * readers (`RANK= ringtrain train ...` is not a rank).
 */
import { UserError } from '../errors.js';

export type Env = Record<string, string | undefined>;

/** torchrun's defaults, used wherever a launcher leaves the master unset and one host is implied. */
export const DEFAULT_MASTER_ADDR = '127.0.0.1';
export const DEFAULT_MASTER_PORT = 29500;

/** The variable's value, trimmed; undefined when unset or blank. */
export function getVar(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

/** The first of `names` that is set, with its value. */
export function firstVar(env: Env, names: readonly string[]): { name: string; value: string } | undefined {
  for (const name of names) {
    const value = getVar(env, name);
    if (value !== undefined) return { name, value };
  }
  return undefined;
}

/** `A is set (v) but B is not` / `A is set (v) but B and C are not`. */
export function missingError(setName: string, setValue: string | number, missing: readonly string[]): UserError {
  const list = missing.length === 1 ? missing[0] : `${missing.slice(0, -1).join(', ')} and ${missing[missing.length - 1]}`;
  return new UserError(`${setName} is set (${setValue}) but ${list} ${missing.length === 1 ? 'is' : 'are'} not`);
}

/** Throws `missingError` naming every variable of `required` that is unset; `setName` is one that is set. */
export function requireVars(env: Env, setName: string, required: readonly string[]): void {
  const missing = required.filter((name) => getVar(env, name) === undefined);
  if (missing.length > 0) throw missingError(setName, getVar(env, setName) ?? '', missing);
}

/** A non-negative integer written in decimal digits only, or undefined. */
function parseDigits(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : undefined;
}

/** An integer >= min from a variable; undefined when unset. `NAME: expected an integer >= 1, found "two"`. */
export function intVar(env: Env, name: string, min: number): number | undefined {
  const text = getVar(env, name);
  return text === undefined ? undefined : intValue(name, text, min);
}

/** `text` as an integer >= min; the error names `name` and shows `found` (default: text). */
export function intValue(name: string, text: string, min: number, found = text): number {
  const value = parseDigits(text);
  if (value === undefined || value < min) throw new UserError(`${name}: expected an integer >= ${min}, found "${found}"`);
  return value;
}

/** A TCP port (1..65535) from a variable; undefined when unset. */
export function portVar(env: Env, name: string): number | undefined {
  const text = getVar(env, name);
  if (text === undefined) return undefined;
  const value = parseDigits(text);
  if (value === undefined || value < 1 || value > 65535) throw new UserError(`${name}: expected a port in 1..65535, found "${text}"`);
  return value;
}

/** Checks a number given on the command line (flags arrive parsed). `--rank: expected an integer >= 0, found -1`. */
export function checkFlagInt(flag: string, value: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    const expected = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer in ${min}..${max}`;
    throw new UserError(`${flag}: expected ${expected}, found ${value}`);
  }
  return value;
}

/** `RANK=3 is out of range for WORLD_SIZE=2 (expected 0..1)`; `sizeLabel` replaces `WORLD_SIZE=2` when given. */
export function checkRank(rankName: string, rank: number, sizeName: string, size: number, sizeLabel = `${sizeName}=${size}`): void {
  if (rank >= size) throw new UserError(`${rankName}=${rank} is out of range for ${sizeLabel} (expected 0..${size - 1})`);
}

/** `LOCAL_WORLD_SIZE=4 is larger than WORLD_SIZE=2`; `localLabel` replaces `LOCAL_WORLD_SIZE=4` when given. */
export function checkNotLarger(localName: string, local: number, sizeName: string, size: number, localLabel = `${localName}=${local}`): void {
  if (local > size) throw new UserError(`${localLabel} is larger than ${sizeName}=${size}`);
}

/** `host:port`, with brackets around IPv6 literals. */
export function formatAddress(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
