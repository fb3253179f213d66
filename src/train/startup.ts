/**
 * Stopping a run that has not begun to train. A stop (stop(), or the CLI's SIGINT/SIGTERM)
 * requested while the run starts - its config or checkpoint read, its data loaded, its world
 * formed, its replicas started - ends the start at the next phase boundary, or at once where a
 * phase waits (data loading, the rendezvous, the replicas' initialisation), and every thread and
 * socket started so far is closed. Nothing has been trained, so nothing is checkpointed.
 */

/** The phases of a start, in order ('rendezvous' only with other processes). */
export type StartupPhase = 'config' | 'checkpoint' | 'data' | 'rendezvous' | 'replicas';

/** A start ended by a stop request before the first step; `phase` is where it was. */
export class StartupStoppedError extends Error {
  constructor(readonly phase: StartupPhase) {
    super(`stopped while starting (${phase}), before the first step`);
    this.name = 'StartupStoppedError';
  }
}

export function throwIfStopped(signal: AbortSignal | undefined, phase: StartupPhase): void {
  if (signal?.aborted) throw new StartupStoppedError(phase);
}

/**
 * `work`, or a StartupStoppedError as soon as `signal` aborts. The work is not cancelled: the
 * caller closes what it started; its late failure is observed here so it cannot crash the process.
 */
export function untilStopped<T>(work: Promise<T>, signal: AbortSignal | undefined, phase: StartupPhase): Promise<T> {
  if (!signal) return work;
  work.catch(() => undefined);
  if (signal.aborted) return Promise.reject(new StartupStoppedError(phase));
  let onAbort!: () => void;
  const stopped = new Promise<never>((_, reject) => {
    onAbort = () => reject(new StartupStoppedError(phase));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([work, stopped]).finally(() => signal.removeEventListener('abort', onAbort));
}
