/** Parsers of command-line option values: a bad value is refused naming the flag, what was expected and what was found. */
import { InvalidArgumentError } from 'commander';

export function positiveInteger(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`${flag} expects an integer >= 1, found "${value}"`);
    return Number(value);
  };
}

export function nonNegativeInteger(flag: string) {
  return (value: string): number => {
    if (!/^\d+$/.test(value)) throw new InvalidArgumentError(`${flag} expects an integer >= 0, found "${value}"`);
    return Number(value);
  };
}

export function workersOption(value: string): number | 'auto' {
  return value === 'auto' ? 'auto' : positiveInteger('--workers')(value);
}
