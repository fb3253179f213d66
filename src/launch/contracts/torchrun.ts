/**
 * torchrun (torch.distributed.run) and Kubeflow's PyTorchJob.
 *
 * torchrun sets, for each worker it starts: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
 * GROUP_RANK, ROLE_RANK, MASTER_ADDR, MASTER_PORT, TORCHELASTIC_RUN_ID,
 * TORCHELASTIC_RESTART_COUNT, TORCHELASTIC_MAX_RESTARTS, TORCHELASTIC_ERROR_FILE (when it has one).
 * Kubeflow's training operator (PyTorchJob v1, with a Master replica) sets per pod RANK,
 * WORLD_SIZE, MASTER_ADDR, MASTER_PORT (pod index and pod count), and the `PET_*` variables that
 * are torchrun's own flags as environment (PET_NNODES, PET_NODE_RANK, PET_NPROC_PER_NODE,
 * PET_MASTER_ADDR, PET_MASTER_PORT; Kubeflow Trainer v2 sets only these).
 *
 * Decisions:
 *   - Detected when any of RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, PET_NNODES, PET_NODE_RANK
 *     is set; then it must be complete: RANK and WORLD_SIZE together (plain form, wins over PET_);
 *     else PET_NODE_RANK and PET_NNODES together; LOCAL_RANK / LOCAL_WORLD_SIZE without RANK and
 *     WORLD_SIZE is an error (`LOCAL_RANK is set (0) but RANK and WORLD_SIZE are not`).
 *   - LOCAL_RANK and LOCAL_WORLD_SIZE come together or not at all; neither = one process on its
 *     host (0/1), as under PyTorchJob without torchrun.
 *   - PET_ form (ringtrain run directly in each pod, not under torchrun): one process per pod,
 *     rank = PET_NODE_RANK, world = PET_NNODES. PET_NNODES "n:n" (what the operator writes when
 *     min = max replicas) is n; an elastic range "1:4" is an error (ringtrain's world is fixed).
 *     PET_NPROC_PER_NODE auto/cpu/gpu/1 is fine (ringtrain fills a pod with worker threads); an
 *     integer > 1 is an error, since only torchrun would start those processes.
 *   - Master: MASTER_ADDR, else PET_MASTER_ADDR; required when the world has more than one process
 *     (as torch's env:// init requires it); 127.0.0.1 for a world of one. Port: MASTER_PORT, else
 *     PET_MASTER_PORT, else 29500. Under torchrun's own agent (TORCHELASTIC_USE_AGENT_STORE=True)
 *     the agent's TCPStore already listens on MASTER_PORT, so ringtrain's rank 0 takes the next
 *     port (MASTER_PORT + 1; RINGTRAIN_MASTER_PORT names another).
 *   - runId TORCHELASTIC_RUN_ID or 'none'; restartCount TORCHELASTIC_RESTART_COUNT or 0.
 *   - Not handled: torchrun --virtual-local-rank (GPU option) sets LOCAL_RANK=0 in every worker;
 *     the old operator spelling PET_N_PROC_PER_NODE is not read.
 */
import { UserError } from '../../errors.js';
import {
  checkNotLarger, checkRank, DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT, firstVar, getVar, intValue, intVar, missingError, portVar,
  requireVars, type Env,
} from '../vars.js';
import type { LaunchContract, WorldSpec } from '../world.js';

const DETECT = ['RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'PET_NNODES', 'PET_NODE_RANK'];

export const torchrunContract: LaunchContract = {
  name: 'torchrun',
  detect: (env) => DETECT.some((name) => getVar(env, name) !== undefined),
  read(env) {
    const set = (name: string) => getVar(env, name) !== undefined;
    if (set('RANK') || set('WORLD_SIZE')) return readPlain(env);
    if (set('PET_NODE_RANK') || set('PET_NNODES')) return readPet(env);
    throw missingError(set('LOCAL_RANK') ? 'LOCAL_RANK' : 'LOCAL_WORLD_SIZE',
      getVar(env, 'LOCAL_RANK') ?? getVar(env, 'LOCAL_WORLD_SIZE')!, ['RANK', 'WORLD_SIZE']);
  },
};

function readPlain(env: Env): WorldSpec {
  requireVars(env, getVar(env, 'RANK') !== undefined ? 'RANK' : 'WORLD_SIZE', ['RANK', 'WORLD_SIZE']);
  const worldSize = intVar(env, 'WORLD_SIZE', 1)!;
  const rank = intVar(env, 'RANK', 0)!;
  checkRank('RANK', rank, 'WORLD_SIZE', worldSize);

  let localRank = 0;
  let localWorldSize = 1;
  const hasLocalRank = getVar(env, 'LOCAL_RANK') !== undefined;
  if (hasLocalRank || getVar(env, 'LOCAL_WORLD_SIZE') !== undefined) {
    requireVars(env, hasLocalRank ? 'LOCAL_RANK' : 'LOCAL_WORLD_SIZE', ['LOCAL_RANK', 'LOCAL_WORLD_SIZE']);
    localWorldSize = intVar(env, 'LOCAL_WORLD_SIZE', 1)!;
    localRank = intVar(env, 'LOCAL_RANK', 0)!;
    checkRank('LOCAL_RANK', localRank, 'LOCAL_WORLD_SIZE', localWorldSize);
    checkNotLarger('LOCAL_WORLD_SIZE', localWorldSize, 'WORLD_SIZE', worldSize);
  }
  return finish(env, { rank, worldSize, localRank, localWorldSize }, 'WORLD_SIZE', 'MASTER_ADDR',
    `torchrun (RANK=${rank} WORLD_SIZE=${worldSize})`);
}

function readPet(env: Env): WorldSpec {
  requireVars(env, getVar(env, 'PET_NODE_RANK') !== undefined ? 'PET_NODE_RANK' : 'PET_NNODES', ['PET_NODE_RANK', 'PET_NNODES']);
  const nnodesText = getVar(env, 'PET_NNODES')!;
  const elastic = /^(\d+):(\d+)$/.exec(nnodesText);
  if (elastic && elastic[1] !== elastic[2]) {
    throw new UserError(`PET_NNODES: expected a fixed number of nodes, found the elastic range "${nnodesText}"`);
  }
  const worldSize = intValue('PET_NNODES', elastic ? elastic[1]! : nnodesText, 1, nnodesText);
  const rank = intVar(env, 'PET_NODE_RANK', 0)!;
  checkRank('PET_NODE_RANK', rank, 'PET_NNODES', worldSize);

  const nproc = getVar(env, 'PET_NPROC_PER_NODE');
  if (nproc !== undefined && !['auto', 'cpu', 'gpu'].includes(nproc)) {
    const perNode = intVar(env, 'PET_NPROC_PER_NODE', 1);
    if (perNode! > 1) {
      throw new UserError(
        `PET_NPROC_PER_NODE=${perNode} asks for ${perNode} processes per node but LOCAL_RANK is not set: ` +
          'start ringtrain with torchrun, or ask for 1 process per node (ringtrain uses all of a node\'s cores)',
      );
    }
  }
  return finish(env, { rank, worldSize, localRank: 0, localWorldSize: 1 }, 'PET_NNODES', 'PET_MASTER_ADDR',
    `torchrun (Kubeflow PET_NODE_RANK=${rank} PET_NNODES=${worldSize})`);
}

function finish(
  env: Env,
  world: Pick<WorldSpec, 'rank' | 'worldSize' | 'localRank' | 'localWorldSize'>,
  sizeName: string,
  addrName: string,
  describe: string,
): WorldSpec {
  const addr = firstVar(env, ['MASTER_ADDR', 'PET_MASTER_ADDR']);
  if (addr === undefined && world.worldSize > 1) throw missingError(sizeName, world.worldSize, [addrName]);
  const launcherPort = portVar(env, 'MASTER_PORT') ?? portVar(env, 'PET_MASTER_PORT') ?? DEFAULT_MASTER_PORT;
  const agentHoldsPort = getVar(env, 'TORCHELASTIC_USE_AGENT_STORE')?.toLowerCase() === 'true';
  const port = portVar(env, 'RINGTRAIN_MASTER_PORT') ?? (agentHoldsPort ? (launcherPort % 65535) + 1 : launcherPort);
  const errorFile = getVar(env, 'TORCHELASTIC_ERROR_FILE');
  return {
    contract: 'torchrun',
    ...world,
    masterAddr: addr?.value ?? DEFAULT_MASTER_ADDR,
    masterPort: port,
    runId: getVar(env, 'TORCHELASTIC_RUN_ID') ?? 'none',
    restartCount: intVar(env, 'TORCHELASTIC_RESTART_COUNT', 0) ?? 0,
    ...(errorFile === undefined ? {} : { errorFile }),
    describe,
  };
}
