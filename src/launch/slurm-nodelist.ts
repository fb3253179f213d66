/**
 * Slurm's compressed host lists (SLURM_JOB_NODELIST and friends), e.g. `node[01-03,7]` →
 * node01 node02 node03 node7, `a[1-2],b3,c[05-06]` → a1 a2 b3 c05 c06.
 *
 * Grammar: hosts separated by top-level commas; a host is literal text and bracket groups (several
 * groups, as in `rack[1-2]-n[1-2]`, expand as a cartesian product in order); a group is
 * comma-separated `N` or `N-M` decimal ranges, each number padded with zeros to the width of its
 * own range's lower bound as written (Slurm's rule: `[08-10]` → 08 09 10, `[8-10]` → 8 9 10).
 * Anything else (unbalanced or nested brackets, empty entries, M < N, blanks) is a UserError.
 */
import { UserError } from '../errors.js';

/** More hosts than any real allocation: a typo like `[0-99999999]` fails instead of filling memory. */
const MAX_HOSTS = 1_000_000;

interface Range { lo: number; hi: number; width: number }
/** One host pattern: literal text, or a bracket group's ranges. */
type Part = string | Range[];

/** Every host of a compressed list, in order. `name` labels the error (e.g. `SLURM_JOB_NODELIST`). */
export function expandSlurmNodelist(list: string, name = 'Slurm host list'): string[] {
  const hosts: string[] = [];
  for (const pattern of parse(list, name)) {
    let expanded = [''];
    for (const part of pattern) {
      const count = typeof part === 'string' ? 1 : part.reduce((sum, { lo, hi }) => sum + hi - lo + 1, 0);
      if (hosts.length + expanded.length * count > MAX_HOSTS) {
        throw malformed(name, list, `expands to more than ${MAX_HOSTS} hosts`);
      }
      const values = typeof part === 'string' ? [part] : rangeValues(part);
      expanded = expanded.flatMap((prefix) => values.map((value) => prefix + value));
    }
    hosts.push(...expanded);
  }
  return hosts;
}

/** The first host of a compressed list (the whole list is still checked), without expanding it. */
export function firstSlurmHost(list: string, name = 'Slurm host list'): string {
  const first = parse(list, name)[0]!;
  return first.map((part) => (typeof part === 'string' ? part : pad(part[0]!.lo, part[0]!.width))).join('');
}

function malformed(name: string, list: string, reason: string): UserError {
  return new UserError(`${name}: expected a Slurm host list like "node[01-03,7]", found "${list}" (${reason})`);
}

function pad(value: number, width: number): string {
  return String(value).padStart(width, '0');
}

function rangeValues(ranges: Range[]): string[] {
  const values: string[] = [];
  for (const { lo, hi, width } of ranges) for (let n = lo; n <= hi; n++) values.push(pad(n, width));
  return values;
}

function parse(list: string, name: string): Part[][] {
  if (list.trim() === '') throw malformed(name, list, 'empty');
  if (/\s/.test(list)) throw malformed(name, list, 'blank inside');
  const patterns: Part[][] = [];
  let pattern: Part[] = [];
  let text = '';
  let i = 0;
  const endPattern = () => {
    if (text) pattern.push(text);
    if (pattern.length === 0) throw malformed(name, list, 'empty host name');
    patterns.push(pattern);
    pattern = [];
    text = '';
  };
  while (i < list.length) {
    const c = list[i]!;
    if (c === ',') {
      endPattern();
      i++;
    } else if (c === '[') {
      const close = list.indexOf(']', i);
      if (close < 0) throw malformed(name, list, 'unclosed "["');
      const inner = list.slice(i + 1, close);
      if (inner.includes('[')) throw malformed(name, list, 'nested "["');
      if (text) pattern.push(text);
      text = '';
      pattern.push(parseRanges(inner, name, list));
      i = close + 1;
    } else if (c === ']') {
      throw malformed(name, list, 'unmatched "]"');
    } else {
      text += c;
      i++;
    }
  }
  endPattern();
  return patterns;
}

function parseRanges(inner: string, name: string, list: string): Range[] {
  return inner.split(',').map((entry) => {
    const match = /^(\d+)(?:-(\d+))?$/.exec(entry);
    if (!match) throw malformed(name, list, `bad range "${entry}"`);
    const lo = Number(match[1]);
    const hi = match[2] === undefined ? lo : Number(match[2]);
    if (hi < lo) throw malformed(name, list, `range "${entry}" runs backwards`);
    return { lo, hi, width: match[1]!.length };
  });
}
