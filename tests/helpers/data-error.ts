/** The DataError a promise rejects with (failing the test if it resolves or rejects otherwise). */
import { expect } from 'vitest';
import { DataError } from '../../src/errors.js';

export async function dataErrorOf(promise: Promise<unknown>): Promise<DataError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(DataError);
  return error as DataError;
}
