/**
 * The fan-out of one call to every replica of a group, with a watchdog: a replica whose
 * heartbeat stands still for the timeout while its call is pending is declared stuck. When one
 * fails, the abort word releases the others, the group is ended (every thread) and the error of
 * the replica that failed first is raised, naming it.
 */
import type * as Comlink from 'comlink';
import { WaitTimeoutError } from '../collective/control-block.js';
import { TrainingAbortedError, UserError } from '../errors.js';
import type { ReplicaApi } from './replica-protocol.js';
import type { ReplicaGroup } from './replica-group.js';
import { StatsColumn } from './shared-state.js';

const USER_ERROR_NAMES = new Set(['UserError', 'ConfigError', 'DataError']);

export interface FanOutOptions {
  /**
   * Whether a stuck replica may be named when every stale replica waits in a collective: in a
   * world of several processes such a wait is on another process, whose failure the process
   * group names better (see ProcessGroup.failed), so only a replica stuck in its own work counts.
   */
  blameWaitingReplicas: boolean;
}

export async function callAll<T>(
  group: ReplicaGroup,
  what: string,
  call: (api: Comlink.Remote<ReplicaApi>, rank: number) => Promise<T>,
  timeoutMs: number,
  options: FanOutOptions = { blameWaitingReplicas: true },
): Promise<T[]> {
  const { replicas, control, views } = group;
  const pending = new Set(replicas.keys());
  let declareStuck!: (error: Error) => void;
  const stuck = new Promise<never>((_, reject) => (declareStuck = reject));
  stuck.catch(() => undefined);
  const beats = replicas.map((_, r) => ({ value: views.statsRow(r)[StatsColumn.HEARTBEAT]!, at: performance.now() }));
  const watchdog = setInterval(() => {
    const t = performance.now();
    for (const r of pending) {
      const value = views.statsRow(r)[StatsColumn.HEARTBEAT]!;
      if (value !== beats[r]!.value) beats[r] = { value, at: t };
    }
    const stale = [...pending].filter((r) => t - beats[r]!.at > timeoutMs);
    if (stale.length === 0) return;
    // Replicas waiting in a collective for a stuck one stop beating too: name one that is not.
    const working = stale.find((r) => views.statsRow(r)[StatsColumn.IN_COLLECTIVE] === 0);
    if (working === undefined && !options.blameWaitingReplicas) return;
    const culprit = working ?? stale[0]!;
    control.abort(culprit);
    declareStuck(new WaitTimeoutError(`replica ${culprit}, which made no progress`, timeoutMs));
  }, Math.min(1000, Math.max(10, timeoutMs / 10)));
  const settled = await Promise.allSettled(
    replicas.map(async (replica, rank) => {
      try {
        const exited = replica.task.then(() => Promise.reject(new Error(`replica ${rank} exited`)));
        return await Promise.race([call(replica.api, rank), exited, stuck]);
      } catch (error) {
        control.abort(rank);
        throw error;
      } finally {
        pending.delete(rank);
      }
    }),
  );
  clearInterval(watchdog);
  const failures = settled.flatMap((s, rank) => (s.status === 'rejected' ? [{ rank, error: s.reason as Error }] : []));
  if (failures.length === 0) return settled.map((s) => (s as PromiseFulfilledResult<T>).value);
  const origin = control.abortOrigin ?? failures[0]!.rank;
  const cause = failures.find((f) => f.rank === origin) ?? failures.find((f) => !/^aborted by /.test(f.error.message)) ?? failures[0]!;
  // -1: the coordinator raised the abort (a start given up, another process's failure): no
  // replica's row to read, no replica to name.
  const stepPlusOne = origin >= 0 ? views.statsRow(origin)[StatsColumn.GLOBAL_STEP]! : 0;
  // Every thread of the failed group ends now; the trainer may start a new group (recovery).
  await group.end().catch(() => undefined);
  if (cause.error instanceof UserError) throw cause.error;
  // comlink keeps an error's name across threads, not its class.
  if (USER_ERROR_NAMES.has(cause.error.name)) throw new UserError(cause.error.message);
  throw new TrainingAbortedError(`${what} failed: ${origin >= 0 ? `replica ${origin}` : 'stopped by the coordinator'}: ${cause.error.message}`, {
    cause: cause.error,
    replica: origin >= 0 ? origin : undefined,
    globalStep: stepPlusOne > 0 ? stepPlusOne - 1 : undefined,
  });
}
