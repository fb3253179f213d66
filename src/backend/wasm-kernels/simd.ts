/**
 * The project's WebAssembly SIMD kernels (simd.wat), instantiated on the wasm backend's own
 * memory so they read and write tensors in place: a pointer is a tensor's heap offset.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { compiledModuleUrl } from '../../util/compiled-url.js';
import type { TensorInfo } from './util.js';

export interface SimdKernels {
  max_pool_grad_2x2(x: number, y: number, dy: number, dx: number, images: number, oh: number, ow: number, c: number, h: number, w: number): number;
  conv_filter_grad(
    xp: number, dy: number, dw: number, offsets: number, taps: number,
    images: number, oh: number, ow: number, co: number, colStep: number, rowStep: number, imageStep: number,
  ): void;
  conv_gather(
    input: number, bases: number, pixels: number, taps: number, spatial: number,
    channels: number, w: number, n: number, out: number,
  ): void;
  col2im_add(cols: number, dx: number, bases: number, pixels: number, taps: number, spatial: number, channels: number): void;
  bias_add(x: number, bias: number, out: number, rows: number, channels: number): void;
}

let compiled: WebAssembly.Module | null | undefined;
const instances = new WeakMap<BackendWasm, SimdKernels | null>();

/** The kernels bound to this backend's memory, or undefined where they cannot run (then callers take their JS path). */
export function simdKernels(backend: BackendWasm): SimdKernels | undefined {
  let kernels = instances.get(backend);
  if (kernels === undefined) {
    kernels = null;
    const memory = (backend.wasm as unknown as { asm?: { memory?: unknown } }).asm?.memory;
    if (compiled === undefined) {
      try {
        compiled = new WebAssembly.Module(readFileSync(fileURLToPath(compiledModuleUrl(import.meta.url, './simd.wasm'))));
      } catch {
        compiled = null;
      }
    }
    if (compiled && memory instanceof WebAssembly.Memory) {
      try {
        kernels = new WebAssembly.Instance(compiled, { env: { memory } }).exports as unknown as SimdKernels;
      } catch {
        // A memory the module cannot import (a threaded build's shared one): the JS paths serve.
        kernels = null;
      }
    }
    instances.set(backend, kernels);
  }
  return kernels ?? undefined;
}

/** Byte offset of a tensor's data in the backend's heap. */
export function heapOffset(backend: BackendWasm, t: TensorInfo): number {
  return backend.dataIdMap.get(t.dataId)!.memoryOffset;
}
