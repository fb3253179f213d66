/**
 * The secret the processes of a world prove to each other (HMAC challenge, tcp/auth.ts):
 * RINGTRAIN_TOKEN when set (what a cluster should do: a Kubernetes Secret, a file the job
 * exports), else one derived from the launcher's run id and the master's address, which keeps
 * out processes of other runs and strays, but not someone who can read the job's environment.
 */
import { createHash } from 'node:crypto';
import type { WorldSpec } from './world.js';

export function worldToken(spec: WorldSpec, env: Record<string, string | undefined>): string {
  const token = env.RINGTRAIN_TOKEN;
  if (token) return token;
  return createHash('sha256').update(`ringtrain:${spec.runId}:${spec.masterAddr}:${spec.masterPort}`).digest('hex');
}
