/** Atomics.waitAsync (ES2024; in Node since 16), which the ES2022 lib this project compiles against lacks. */
interface Atomics {
  waitAsync(typedArray: Int32Array, index: number, value: number, timeout?: number): { async: false; value: 'not-equal' | 'timed-out' } | { async: true; value: Promise<'ok' | 'timed-out'> };
}
