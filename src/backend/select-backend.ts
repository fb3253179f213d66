/**
 * Chooses and activates the TensorFlow.js backend of a thread. "auto" prefers tfjs-node
 * ("tensorflow") where it is installed and loads, else wasm, else the pure-JS cpu backend.
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { UserError } from '../errors.js';
import { registerWasmTrainingKernels } from './wasm-kernels/register.js';

export type BackendName = 'wasm' | 'cpu' | 'tensorflow';
export type BackendChoice = BackendName | 'auto';

/** True when @tensorflow/tfjs-node is installed and its native addon loads in this thread. */
export async function tensorflowAvailable(): Promise<boolean> {
  try {
    await import('@tensorflow/tfjs-node' as string);
    return true;
  } catch {
    return false;
  }
}

/** Resolves "auto" to a concrete backend without activating it. */
export async function resolveBackend(choice: BackendChoice): Promise<BackendName> {
  if (choice !== 'auto') return choice;
  return (await tensorflowAvailable()) ? 'tensorflow' : 'wasm';
}

/** Throws a UserError when `name` cannot be used in this process. */
export async function assertBackendAvailable(name: BackendName): Promise<void> {
  if (name === 'tensorflow' && !(await tensorflowAvailable())) {
    throw new UserError('backend "tensorflow" needs @tensorflow/tfjs-node, which is not installed or does not load here', {
      hint: 'use --backend wasm (the default fallback) or install @tensorflow/tfjs-node',
    });
  }
}

/** Activates `name` in this thread; throws a UserError when it cannot be used. */
export async function activateBackend(name: BackendName): Promise<void> {
  await assertBackendAvailable(name);
  const ok = await tf.setBackend(name);
  if (!ok) throw new UserError(`backend "${name}" failed to initialise in this thread`);
  await tf.ready();
  if (name === 'cpu') silenceCpuBanner();
  if (name === 'wasm') registerWasmTrainingKernels();
}

/**
 * The cpu backend prints a banner recommending tfjs-node on its first tensor in Node; with one
 * backend per thread that would repeat once per replica, and our output names the backend anyway.
 */
export function silenceCpuBanner(): void {
  const cpu = tf.findBackend('cpu') as { firstUse?: boolean } | null;
  if (cpu) cpu.firstUse = false;
}

/**
 * tfjs-node's native addon is reported broken in more than one worker thread
 * (TensorFlow.js issues 2079 and 8388), so it serves one replica per process.
 */
export function checkReplicasForBackend(name: BackendName, replicas: number): void {
  if (name === 'tensorflow' && replicas > 1) {
    throw new UserError(`backend "tensorflow" (tfjs-node) supports one replica per process, but ${replicas} workers were asked for`, {
      hint: 'use --workers 1 with --backend tensorflow, or --backend wasm for several replicas',
    });
  }
}
