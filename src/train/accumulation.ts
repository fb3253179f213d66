/**
 * Gradient accumulation (`training.accumulateSteps: k`): one optimizer update per k global
 * batches, the gradients of those batches summed in each replica's own gradient slot and reduced
 * across replicas only at the update (as DDP's no_sync), then divided by the samples of all k
 * batches. So k batches of b equal one batch of k*b exactly when no layer depends on the batch.
 *
 * Updates never cross an epoch: an epoch's batches are grouped from its first one, and its last
 * group may be shorter (as the last batch of k*b would be). Batches are what the progress bar,
 * epochs and `stepsPerEpoch` count (as Keras's gradient_accumulation_steps); updates are what the
 * optimizer counts (its step, Adam's bias correction). Segments, stops, checkpoints and recovery
 * points land on update boundaries, so no partial sum is ever carried in a checkpoint.
 */
import { z } from 'zod';

/** Largest k: a bound against typos (k batches are held as one summed gradient, so k costs no memory). */
export const MAX_ACCUMULATE_STEPS = 65_536;

const EXPECTED = `an integer from 1 to ${MAX_ACCUMULATE_STEPS.toLocaleString('en-US')}`;
export const accumulateStepsSchema = z.int({ error: EXPECTED }).min(1, { error: EXPECTED }).max(MAX_ACCUMULATE_STEPS, { error: EXPECTED });

/** Batch `step` of an epoch of `steps` batches is the last of its update's group. */
export function endsUpdate(step: number, steps: number, k: number): boolean {
  return (step + 1) % k === 0 || step + 1 === steps;
}

/** Batch `step` of an epoch is the first of its update's group. */
export function startsUpdate(step: number, k: number): boolean {
  return step % k === 0;
}

/** Updates in one epoch of `steps` batches. */
export function updatesPerEpoch(steps: number, k: number): number {
  return Math.ceil(steps / k);
}

/**
 * The optimizer's step (from 1) of the update that batch `step` of epoch `epoch` ends, in an
 * epoch of `steps` batches. Without accumulation it is the run's batch count plus one
 * (`globalStep + 1`), exactly as before accumulation existed.
 */
export function optimizerStep(globalStep: number, epoch: number, step: number, steps: number, k: number): number {
  if (k === 1) return globalStep + 1;
  return epoch * updatesPerEpoch(steps, k) + Math.floor(step / k) + 1;
}

/** Updates applied after `batches` global batches of the run, at an update boundary. */
export function updatesAfter(batches: number, steps: number, k: number): number {
  if (k === 1) return batches;
  const epochs = Math.floor(batches / steps);
  return epochs * updatesPerEpoch(steps, k) + Math.ceil((batches - epochs * steps) / k);
}

/**
 * A segment [fromStep, toStep) of an epoch cut back to an update boundary (the coordinator's
 * segments end where checkpoints and stops may happen); never empty: at least one update.
 */
export function alignSegmentEnd(fromStep: number, toStep: number, steps: number, k: number): number {
  if (k === 1 || toStep >= steps) return Math.min(toStep, steps);
  const aligned = Math.floor(toStep / k) * k;
  if (aligned > fromStep) return aligned;
  return Math.min(steps, (Math.floor(fromStep / k) + 1) * k);
}
