/**
 * Helpers for composing wasm kernels out of the wasm backend's own kernels. A kernelFunc gets
 * TensorInfos (no Tensor objects, no tape), so intermediates are made and freed by hand.
 */
import * as tf from '@tensorflow/tfjs';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';

export type TensorInfo = tf.TensorInfo;
export type Attrs = Record<string, unknown>;

// Kept on globalThis, like the TF.js kernel registry itself, so that a second copy of this module
// (bundlers, test runners) sees the same built-ins and recognises kernels registered by the first.
const BUILTINS = Symbol.for('ringtrain.wasmBuiltinKernels');
const OURS = Symbol.for('ringtrain.wasmTrainingKernel');
const globalState = globalThis as { [BUILTINS]?: Map<string, tf.KernelFunc> };
const builtins = (globalState[BUILTINS] ??= new Map<string, tf.KernelFunc>());

/** Marks a kernelFunc as one of this project's, so registration is idempotent across copies. */
export function markOurs<F extends tf.KernelFunc>(kernelFunc: F): F {
  (kernelFunc as unknown as Record<symbol, boolean>)[OURS] = true;
  return kernelFunc;
}

export function isOurs(kernelFunc: tf.KernelFunc): boolean {
  return (kernelFunc as unknown as Record<symbol, boolean>)[OURS] === true;
}

/** Remembers a built-in wasm kernel before it is replaced, for wrappers that fall back to it. */
export function recordBuiltin(name: string, kernelFunc: tf.KernelFunc): void {
  if (!builtins.has(name) && !isOurs(kernelFunc)) builtins.set(name, kernelFunc);
}

/** The built-in wasm kernel `name`: the recorded one, or the registered one if not replaced yet. */
export function builtinKernel(name: string): tf.KernelFunc {
  const recorded = builtins.get(name);
  if (recorded) return recorded;
  const current = tf.getKernel(name, 'wasm');
  if (!current || isOurs(current.kernelFunc)) throw new Error(`the built-in wasm kernel ${name} was not recorded`);
  return current.kernelFunc;
}

/** Runs the currently registered wasm kernel `name` directly (no engine, no tape, no profiling). */
export function runWasm(backend: BackendWasm, name: string, inputs: Record<string, TensorInfo>, attrs: Attrs = {}): TensorInfo {
  const kernel = tf.getKernel(name, 'wasm');
  if (!kernel) throw new Error(`wasm kernel ${name} is not registered`);
  return kernel.kernelFunc({ inputs, backend, attrs: attrs as tf.NamedAttrMap }) as TensorInfo;
}

/** Frees intermediates (a reshape shares its input's data and only drops a reference). */
export function dispose(backend: BackendWasm, ...infos: TensorInfo[]): void {
  for (const t of infos) backend.disposeData(t.dataId);
}

/** A reshape that shares data: the caller disposes the result like any other intermediate. */
export function reshape(backend: BackendWasm, x: TensorInfo, shape: number[]): TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape, dtype: x.dtype };
}

/**
 * Transpose, or a shared-data reshape when the permutation only moves size-1 axes (the wasm
 * Transpose kernel copies in that case).
 */
export function transpose(backend: BackendWasm, x: TensorInfo, perm: number[]): TensorInfo {
  const outShape = perm.map((p) => x.shape[p]);
  const moved = perm.filter((p) => x.shape[p] !== 1);
  if (moved.every((p, i) => i === 0 || moved[i - 1] < p)) return reshape(backend, x, outShape);
  return runWasm(backend, 'Transpose', { x }, { perm });
}

/**
 * Copies x[:, h0:h0+hs, w0:w0+ws, :] of an NHWC float32 tensor. The wasm Slice kernel first
 * copies the whole input through readSync; this reads the heap in place.
 */
export function slice4dHW(backend: BackendWasm, x: TensorInfo, h0: number, hs: number, w0: number, ws: number): TensorInfo {
  const [n, h, w, c] = x.shape;
  if (h0 === 0 && w0 === 0 && hs === h && ws === w) return reshape(backend, x, x.shape);
  const out = backend.makeOutput([n, hs, ws, c], x.dtype);
  // Views after makeOutput: allocation may grow (and detach) the wasm memory.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const rowLen = ws * c;
  let o = 0;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < hs; i++) {
      const start = ((b * h + h0 + i) * w + w0) * c;
      dst.set(src.subarray(start, start + rowLen), o);
      o += rowLen;
    }
  }
  return out;
}

/**
 * Zero-pads H and W of an NHWC tensor: a fill and one copy per row, 3x faster than the wasm
 * PadV2 kernel (a general N-d loop).
 */
export function pad4dHW(backend: BackendWasm, x: TensorInfo, top: number, bottom: number, left: number, right: number): TensorInfo {
  if (top === 0 && bottom === 0 && left === 0 && right === 0) return reshape(backend, x, x.shape);
  const [n, h, w, c] = x.shape as [number, number, number, number];
  const H = h + top + bottom;
  const W = w + left + right;
  const out = backend.makeOutput([n, H, W, c], x.dtype);
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  dst.fill(0);
  const rowLen = w * c;
  for (let b = 0; b < n; b++) {
    for (let i = 0; i < h; i++) {
      const s0 = (b * h + i) * rowLen;
      dst.set(src.subarray(s0, s0 + rowLen), ((b * H + i + top) * W + left) * c);
    }
  }
  return out;
}

/** Pads (positive) or crops (negative) H and W of an NHWC tensor. */
export function padOrCrop4dHW(backend: BackendWasm, x: TensorInfo, top: number, bottom: number, left: number, right: number): TensorInfo {
  const [, h, w] = x.shape as [number, number, number, number];
  const t = Math.max(0, -top);
  const l = Math.max(0, -left);
  const cropped = t || l || bottom < 0 || right < 0
    ? slice4dHW(backend, x, t, h - t - Math.max(0, -bottom), l, w - l - Math.max(0, -right))
    : reshape(backend, x, x.shape);
  const out = pad4dHW(backend, cropped, Math.max(0, top), Math.max(0, bottom), Math.max(0, left), Math.max(0, right));
  dispose(backend, cropped);
  return out;
}

/**
 * Inserts s-1 zeros after every row/column of an NHWC tensor (stride > 1 transposed convolution),
 * as one PadV2 of a 6-d view: [n,h,1,w,1,c] -> [n,h,sh,w,sw,c] -> [n,h*sh,w*sw,c]. The result has
 * sh-1 (sw-1) trailing zero rows (columns) beyond the usual (h-1)*sh+1.
 */
export function zeroInsert(backend: BackendWasm, x: TensorInfo, sh: number, sw: number): TensorInfo {
  if (sh === 1 && sw === 1) return reshape(backend, x, x.shape);
  const [n, h, w, c] = x.shape;
  const x6 = reshape(backend, x, [n, h, 1, w, 1, c]);
  const padded = runWasm(backend, 'PadV2', { x: x6 }, {
    paddings: [[0, 0], [0, 0], [0, sh - 1], [0, 0], [0, sw - 1], [0, 0]],
    constantValue: 0,
  });
  dispose(backend, x6);
  const out = reshape(backend, padded, [n, h * sh, w * sw, c]);
  dispose(backend, padded);
  return out;
}

/**
 * A forward wasm Conv2D (XNNPACK) with explicit, possibly negative padding: negative padding
 * crops the input first. Output size is whatever the padded input gives.
 */
export function conv2dExplicit(
  backend: BackendWasm,
  x: TensorInfo,
  filter: TensorInfo,
  pads: { top: number; bottom: number; left: number; right: number },
  strides: [number, number],
  dilations: [number, number],
  depthwise = false,
): TensorInfo {
  const cropT = Math.max(0, -pads.top);
  const cropB = Math.max(0, -pads.bottom);
  const cropL = Math.max(0, -pads.left);
  const cropR = Math.max(0, -pads.right);
  let input = x;
  if (cropT || cropB || cropL || cropR) {
    input = slice4dHW(backend, x, cropT, x.shape[1] - cropT - cropB, cropL, x.shape[2] - cropL - cropR);
  }
  const pad = [[0, 0], [Math.max(0, pads.top), Math.max(0, pads.bottom)], [Math.max(0, pads.left), Math.max(0, pads.right)], [0, 0]];
  const out = runWasm(backend, depthwise ? 'DepthwiseConv2dNative' : 'Conv2D', { x: input, filter }, {
    strides,
    dilations,
    pad,
    dataFormat: 'NHWC',
  });
  if (input !== x) dispose(backend, input);
  return out;
}
