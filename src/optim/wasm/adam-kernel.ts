/**
 * The Adam update as a WebAssembly SIMD kernel (adam.wat). Each float32 lane rounds as the
 * JavaScript `Math.fround` loop does, so results are bitwise the same, about 10x faster.
 * The shard is copied into the module's memory and back: a few hundred microseconds less
 * than the scalar loop costs for a 100k-parameter shard.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { compiledModuleUrl } from '../../util/compiled-url.js';

interface AdamExports {
  memory: WebAssembly.Memory;
  adam(
    n: number,
    beta1: number,
    beta2: number,
    oneMinusBeta1: number,
    oneMinusBeta2: number,
    correction1: number,
    correction2: number,
    epsilon: number,
    negLearningRate: number,
    learningRate: number,
    weightDecay: number,
  ): void;
}

export interface AdamScalars {
  beta1: number;
  beta2: number;
  oneMinusBeta1: number;
  oneMinusBeta2: number;
  correction1: number;
  correction2: number;
  epsilon: number;
  negLearningRate: number;
  learningRate: number;
  weightDecay: number;
}

const PAGE = 65536;
let compiled: WebAssembly.Module | null | undefined;

function compiledModule(): WebAssembly.Module | null {
  if (compiled === undefined) {
    try {
      compiled = new WebAssembly.Module(readFileSync(fileURLToPath(compiledModuleUrl(import.meta.url, './adam.wasm'))));
    } catch {
      // Not built (or no SIMD): the scalar loop serves instead.
      compiled = null;
    }
  }
  return compiled;
}

export class WasmAdamKernel {
  private constructor(private readonly exports: AdamExports) {}

  /** A kernel instance for this thread, or undefined when the .wasm is not available. */
  static create(): WasmAdamKernel | undefined {
    const module = compiledModule();
    return module ? new WasmAdamKernel(new WebAssembly.Instance(module).exports as unknown as AdamExports) : undefined;
  }

  update(params: Float32Array, grads: Float32Array, m: Float32Array, v: Float32Array, from: number, to: number, s: AdamScalars): void {
    const count = to - from;
    const lanes = Math.ceil(count / 4) * 4;
    const bytes = lanes * 16;
    const memory = this.exports.memory;
    if (memory.buffer.byteLength < bytes) memory.grow(Math.ceil((bytes - memory.buffer.byteLength) / PAGE));
    const heap = new Float32Array(memory.buffer, 0, lanes * 4);
    heap.set(params.subarray(from, to), 0);
    heap.set(grads.subarray(from, to), lanes);
    heap.set(m.subarray(from, to), 2 * lanes);
    heap.set(v.subarray(from, to), 3 * lanes);
    this.exports.adam(lanes, s.beta1, s.beta2, s.oneMinusBeta1, s.oneMinusBeta2, s.correction1, s.correction2, s.epsilon, s.negLearningRate, s.learningRate, s.weightDecay);
    params.set(heap.subarray(0, count), from);
    m.set(heap.subarray(2 * lanes, 2 * lanes + count), from);
    v.set(heap.subarray(3 * lanes, 3 * lanes + count), from);
  }
}
