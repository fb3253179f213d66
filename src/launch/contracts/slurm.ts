/**
 * Slurm's srun: each task gets SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NODEID,
 * SLURM_JOB_ID, SLURM_STEP_ID, SLURM_JOB_NODELIST / SLURM_NODELIST / SLURM_STEP_NODELIST (compressed,
 * e.g. `node[01-03,7]`), SLURM_TASKS_PER_NODE (e.g. `2(x3),1`), SLURM_NTASKS_PER_NODE (only with
 * --ntasks-per-node), SLURM_RESTART_COUNT (after a requeue).
 *
 * Decisions:
 *   - Detected by SLURM_PROCID (set for srun tasks; an salloc shell without srun has none and is a
 *     world of one). SLURM_NTASKS and SLURM_LOCALID are then required. Start one ringtrain per task
 *     with srun: run directly in an sbatch script, the batch step's SLURM_PROCID=0 and the job's
 *     SLURM_NTASKS would make a rank 0 waiting for peers that never start.
 *   - Local size: SLURM_NTASKS_PER_NODE, else this node's entry of SLURM_TASKS_PER_NODE (entry
 *     SLURM_NODEID, the first when SLURM_NODEID is unset); one of them is required.
 *   - Master address: MASTER_ADDR, else the first host of SLURM_STEP_NODELIST, SLURM_JOB_NODELIST or
 *     SLURM_NODELIST (first set; task 0 runs on the step's first node, which is the job's first
 *     node unless the step uses part of the allocation); without any, 127.0.0.1 when all tasks are
 *     on this node, else a UserError.
 *   - Master port: MASTER_PORT, else 10000 + SLURM_JOB_ID % 20000 (like PyTorch Lightning, derived
 *     from the job id so two jobs sharing a node do not collide; below Linux's ephemeral range
 *     32768+), else 29500 without a job id.
 *   - runId `SLURM_JOB_ID.SLURM_STEP_ID` (Slurm's own notation), SLURM_JOB_ID without a step,
 *     'none' without a job; restartCount SLURM_RESTART_COUNT or 0.
 */
import { UserError } from '../../errors.js';
import { firstSlurmHost } from '../slurm-nodelist.js';
import {
  checkNotLarger, checkRank, DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT, firstVar, getVar, intVar, missingError, portVar,
  requireVars, type Env,
} from '../vars.js';
import type { LaunchContract } from '../world.js';

const NODELISTS = ['SLURM_STEP_NODELIST', 'SLURM_JOB_NODELIST', 'SLURM_NODELIST'];

export const slurmContract: LaunchContract = {
  name: 'slurm',
  detect: (env) => getVar(env, 'SLURM_PROCID') !== undefined,
  read(env) {
    requireVars(env, 'SLURM_PROCID', ['SLURM_NTASKS', 'SLURM_LOCALID']);
    const worldSize = intVar(env, 'SLURM_NTASKS', 1)!;
    const rank = intVar(env, 'SLURM_PROCID', 0)!;
    checkRank('SLURM_PROCID', rank, 'SLURM_NTASKS', worldSize);
    const { label: localLabel, size: localWorldSize } = localSize(env);
    const localRank = intVar(env, 'SLURM_LOCALID', 0)!;
    checkRank('SLURM_LOCALID', localRank, '', localWorldSize, localLabel);
    checkNotLarger('', localWorldSize, 'SLURM_NTASKS', worldSize, localLabel);

    let masterAddr = getVar(env, 'MASTER_ADDR');
    if (masterAddr === undefined) {
      const nodelist = firstVar(env, NODELISTS);
      if (nodelist !== undefined) masterAddr = firstSlurmHost(nodelist.value, nodelist.name);
      else if (localWorldSize === worldSize) masterAddr = DEFAULT_MASTER_ADDR;
      else throw missingError('SLURM_PROCID', rank, ['SLURM_JOB_NODELIST', 'MASTER_ADDR']);
    }
    const jobId = intVar(env, 'SLURM_JOB_ID', 0);
    const stepId = getVar(env, 'SLURM_STEP_ID');
    return {
      contract: 'slurm',
      rank,
      worldSize,
      localRank,
      localWorldSize,
      masterAddr,
      masterPort: portVar(env, 'MASTER_PORT') ?? (jobId === undefined ? DEFAULT_MASTER_PORT : 10000 + (jobId % 20000)),
      runId: jobId === undefined ? 'none' : stepId === undefined ? `${jobId}` : `${jobId}.${stepId}`,
      restartCount: intVar(env, 'SLURM_RESTART_COUNT', 0) ?? 0,
      describe: `slurm (SLURM_PROCID=${rank} SLURM_NTASKS=${worldSize}${jobId === undefined ? '' : ` SLURM_JOB_ID=${jobId}`})`,
    };
  },
};

/** Tasks on this node, and how to name them in an error (`SLURM_TASKS_PER_NODE=2(x3),1 on node 3`). */
function localSize(env: Env): { label: string; size: number } {
  const perNode = intVar(env, 'SLURM_NTASKS_PER_NODE', 1);
  if (perNode !== undefined) return { label: `SLURM_NTASKS_PER_NODE=${perNode}`, size: perNode };
  const text = getVar(env, 'SLURM_TASKS_PER_NODE');
  if (text === undefined) {
    throw missingError('SLURM_PROCID', getVar(env, 'SLURM_PROCID')!, ['SLURM_NTASKS_PER_NODE', 'SLURM_TASKS_PER_NODE']);
  }
  const entries = text.split(',').map((entry) => {
    const match = /^(\d+)(?:\(x(\d+)\))?$/.exec(entry);
    const tasks = Number(match?.[1]);
    const nodes = match?.[2] === undefined ? 1 : Number(match[2]);
    if (!match || tasks < 1 || nodes < 1) throw new UserError(`SLURM_TASKS_PER_NODE: expected counts like "2(x3),1", found "${text}"`);
    return { tasks, nodes };
  });
  const node = intVar(env, 'SLURM_NODEID', 0) ?? 0;
  let end = 0; // one past the last node the entries so far cover
  for (const { tasks, nodes } of entries) {
    end += nodes;
    if (node < end) return { label: `SLURM_TASKS_PER_NODE=${text} on node ${node}`, size: tasks };
  }
  throw new UserError(`SLURM_NODEID=${node} is out of range for SLURM_TASKS_PER_NODE=${text} (${end} nodes)`);
}
