/**
 * How a `train` process learns its place in the world: rank, world size, local rank/size on its
 * host, and the master (rank 0's host and port), from command-line flags or the environment a
 * launcher sets. Pure: reads only the flags and env object passed in.
 *
 * Contracts are tried in order and the first that detects its variables is read; a contract
 * that detects only part of its variables throws a UserError naming what is missing rather than
 * falling through (a half-set torchrun environment must not silently become a world of one):
 *   1. flags     --rank, --world-size (contracts/flags.ts)
 *   2. torchrun  RANK, WORLD_SIZE, LOCAL_*, or Kubeflow PyTorchJob's PET_* (contracts/torchrun.ts)
 *   3. openmpi   OMPI_COMM_WORLD_* (contracts/openmpi.ts)
 *   4. slurm     SLURM_PROCID, SLURM_NTASKS, ... (contracts/slurm.ts)
 * None detected: the world of one process ('none'). Adding a launcher = one file in contracts/ and
 * one line in CONTRACTS.
 *
 * --master-addr / --master-port given without --rank / --world-size override the master of
 * whichever environment contract is read (flags first, field by field).
 */
import { checkFlagInt, DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT, formatAddress, type Env } from './vars.js';
import { flagsContract } from './contracts/flags.js';
import { torchrunContract } from './contracts/torchrun.js';
import { openmpiContract } from './contracts/openmpi.js';
import { slurmContract } from './contracts/slurm.js';
import { UserError } from '../errors.js';

export type { Env } from './vars.js';

export type ContractName = 'flags' | 'torchrun' | 'openmpi' | 'slurm' | 'none';

export interface WorldFlags {
  rank?: number;
  worldSize?: number;
  masterAddr?: string;
  masterPort?: number;
}

export interface WorldSpec {
  /** Which contract was read ('none' = world of one process). */
  contract: ContractName;
  rank: number;
  worldSize: number;
  /** This process's index among the processes on its host, and their count. */
  localRank: number;
  localWorldSize: number;
  /** Where rank 0 listens. */
  masterAddr: string;
  masterPort: number;
  /** Launcher's id of this run: TORCHELASTIC_RUN_ID, SLURM_JOB_ID[.SLURM_STEP_ID], OpenMPI's job id; 'none' without. */
  runId: string;
  /** Times the launcher restarted this run (TORCHELASTIC_RESTART_COUNT, SLURM_RESTART_COUNT); 0 elsewhere. */
  restartCount: number;
  /** TORCHELASTIC_ERROR_FILE when set: where torchrun wants a failing worker's error as JSON. */
  errorFile?: string;
  /** One line for the start-up message, naming the contract, e.g. `torchrun (RANK=1 WORLD_SIZE=2), local rank 1 of 2, master 127.0.0.1:29500`. */
  describe: string;
}

/** One launcher's variables. `read` describes only its rank variables; resolveWorld appends local rank and master. */
export interface LaunchContract {
  readonly name: Exclude<ContractName, 'none'>;
  /** True when any of this launcher's variables (or flags) is set, even if not all are. */
  detect(env: Env, flags: WorldFlags): boolean;
  /** The world these variables describe; a UserError when they are incomplete or contradictory. */
  read(env: Env, flags: WorldFlags): WorldSpec;
}

/** In precedence order. */
export const CONTRACTS: readonly LaunchContract[] = [flagsContract, torchrunContract, openmpiContract, slurmContract];

export function resolveWorld(flags: WorldFlags, env: Env): WorldSpec {
  const contract = CONTRACTS.find((c) => c.detect(env, flags));
  const spec: WorldSpec = contract
    ? contract.read(env, flags)
    : {
        contract: 'none',
        rank: 0,
        worldSize: 1,
        localRank: 0,
        localWorldSize: 1,
        masterAddr: DEFAULT_MASTER_ADDR,
        masterPort: DEFAULT_MASTER_PORT,
        runId: 'none',
        restartCount: 0,
        describe: 'none (no launcher variables or --rank/--world-size: one process)',
      };
  const overrides: string[] = [];
  if (flags.masterAddr !== undefined && spec.contract !== 'flags') {
    if (flags.masterAddr.trim() === '') throw new UserError('--master-addr: expected a host name or address, found ""');
    spec.masterAddr = flags.masterAddr.trim();
    overrides.push('--master-addr');
  }
  if (flags.masterPort !== undefined && spec.contract !== 'flags') {
    spec.masterPort = checkFlagInt('--master-port', flags.masterPort, 1, 65535);
    overrides.push('--master-port');
  }
  if (spec.contract !== 'none') spec.describe += `, local rank ${spec.localRank} of ${spec.localWorldSize}`;
  if (spec.contract !== 'none' || overrides.length > 0) {
    spec.describe += `, master ${formatAddress(spec.masterAddr, spec.masterPort)}`;
    if (overrides.length > 0) spec.describe += ` (from ${overrides.join(' and ')})`;
  }
  return spec;
}
