/**
 * OpenMPI's mpirun / mpiexec (Horovod's horovodrun on OpenMPI too): each process gets
 * OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE, OMPI_COMM_WORLD_LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_SIZE
 * (and OMPI_COMM_WORLD_NODE_RANK, OMPI_MCA_ess_base_jobid on OpenMPI 4, PMIX_NAMESPACE, ...).
 *
 * Decisions:
 *   - Detected when any OMPI_COMM_WORLD_{RANK,SIZE,LOCAL_RANK,LOCAL_SIZE} is set; all four are then
 *     required (mpirun always sets all four).
 *   - mpirun says nothing about a master: MASTER_ADDR / MASTER_PORT from the environment win
 *     (`mpirun -x MASTER_ADDR=host ...` exports them); without MASTER_ADDR, 127.0.0.1 when every
 *     process is on this host (LOCAL_SIZE = SIZE), otherwise a UserError asking for
 *     `-x MASTER_ADDR=<host of rank 0>` (ranks on other hosts cannot guess it). Port 29500.
 *   - runId: OMPI_MCA_ess_base_jobid (OpenMPI 4), else PMIX_NAMESPACE (OpenMPI 5), else 'none'.
 */
import { UserError } from '../../errors.js';
import {
  checkNotLarger, checkRank, DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT, getVar, intVar, portVar, requireVars,
} from '../vars.js';
import type { LaunchContract } from '../world.js';

const RANK = 'OMPI_COMM_WORLD_RANK';
const SIZE = 'OMPI_COMM_WORLD_SIZE';
const LOCAL_RANK = 'OMPI_COMM_WORLD_LOCAL_RANK';
const LOCAL_SIZE = 'OMPI_COMM_WORLD_LOCAL_SIZE';
const ALL = [RANK, SIZE, LOCAL_RANK, LOCAL_SIZE];

export const openmpiContract: LaunchContract = {
  name: 'openmpi',
  detect: (env) => ALL.some((name) => getVar(env, name) !== undefined),
  read(env) {
    requireVars(env, ALL.find((name) => getVar(env, name) !== undefined)!, ALL);
    const worldSize = intVar(env, SIZE, 1)!;
    const rank = intVar(env, RANK, 0)!;
    checkRank(RANK, rank, SIZE, worldSize);
    const localWorldSize = intVar(env, LOCAL_SIZE, 1)!;
    const localRank = intVar(env, LOCAL_RANK, 0)!;
    checkRank(LOCAL_RANK, localRank, LOCAL_SIZE, localWorldSize);
    checkNotLarger(LOCAL_SIZE, localWorldSize, SIZE, worldSize);

    let masterAddr = getVar(env, 'MASTER_ADDR');
    if (masterAddr === undefined) {
      if (localWorldSize !== worldSize) {
        throw new UserError(
          `${SIZE}=${worldSize} spans more than one host (${LOCAL_SIZE}=${localWorldSize}) but MASTER_ADDR is not set: ` +
            'pass -x MASTER_ADDR=<host of rank 0> to mpirun',
        );
      }
      masterAddr = DEFAULT_MASTER_ADDR;
    }
    return {
      contract: 'openmpi',
      rank,
      worldSize,
      localRank,
      localWorldSize,
      masterAddr,
      masterPort: portVar(env, 'MASTER_PORT') ?? DEFAULT_MASTER_PORT,
      runId: getVar(env, 'OMPI_MCA_ess_base_jobid') ?? getVar(env, 'PMIX_NAMESPACE') ?? 'none',
      restartCount: 0,
      describe: `openmpi (${RANK}=${rank} ${SIZE}=${worldSize})`,
    };
  },
};
