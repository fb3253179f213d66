import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { CONTRACTS, resolveWorld, type WorldFlags } from '../../src/launch/world.js';

type Env = Record<string, string | undefined>;

/** The UserError resolveWorld throws; fails the test when it throws nothing or something else. */
function errorOf(env: Env, flags: WorldFlags = {}): UserError {
  try {
    resolveWorld(flags, env);
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    expect((error as Error).message).not.toContain('\n');
    return error as UserError;
  }
  throw new Error('expected a UserError, nothing was thrown');
}

// What each launcher really sets (plus unrelated variables a real environment carries).
const BASE: Env = { PATH: '/usr/bin', HOME: '/home/u', HOSTNAME: 'node02' };

/** torchrun --nnodes=2 --nproc-per-node=2 --rdzv-backend=c10d --rdzv-endpoint=node01:29400 --rdzv-id=job42, 2nd worker of node 1, after one restart. */
const TORCHRUN: Env = {
  ...BASE,
  RANK: '3', LOCAL_RANK: '1', WORLD_SIZE: '4', LOCAL_WORLD_SIZE: '2',
  GROUP_RANK: '1', GROUP_WORLD_SIZE: '2', ROLE_RANK: '3', ROLE_NAME: 'default', ROLE_WORLD_SIZE: '4',
  MASTER_ADDR: 'node01', MASTER_PORT: '44321',
  TORCHELASTIC_RUN_ID: 'job42', TORCHELASTIC_RESTART_COUNT: '1', TORCHELASTIC_MAX_RESTARTS: '3',
  TORCHELASTIC_USE_AGENT_STORE: 'True', TORCH_NCCL_ASYNC_ERROR_HANDLING: '1', OMP_NUM_THREADS: '1',
  TORCHELASTIC_ERROR_FILE: '/tmp/torchelastic_k2j4/job42_x7/attempt_1/1/error.json',
};

/** mpirun -np 4 -H node01:2,node02:2 (OpenMPI 4), rank 3. */
const MPIRUN: Env = {
  ...BASE,
  OMPI_COMM_WORLD_RANK: '3', OMPI_COMM_WORLD_SIZE: '4', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '2',
  OMPI_COMM_WORLD_NODE_RANK: '1', OMPI_UNIVERSE_SIZE: '4', OMPI_MCA_ess_base_jobid: '2412642305',
  OMPI_MCA_orte_ess_num_procs: '4', PMIX_RANK: '3', PMIX_NAMESPACE: '2412642305',
};

/** srun -N2 --ntasks-per-node=2 in job 4242, task 3 (2nd task on node02). */
const SRUN: Env = {
  ...BASE,
  SLURM_PROCID: '3', SLURM_NTASKS: '4', SLURM_NPROCS: '4', SLURM_LOCALID: '1', SLURM_NODEID: '1',
  SLURM_JOB_ID: '4242', SLURM_JOBID: '4242', SLURM_STEP_ID: '0', SLURM_STEPID: '0',
  SLURM_JOB_NODELIST: 'node[01-02]', SLURM_NODELIST: 'node[01-02]', SLURM_STEP_NODELIST: 'node[01-02]',
  SLURM_TASKS_PER_NODE: '2(x2)', SLURM_STEP_TASKS_PER_NODE: '2(x2)', SLURM_NTASKS_PER_NODE: '2',
  SLURM_JOB_NUM_NODES: '2', SLURM_NNODES: '2', SLURMD_NODENAME: 'node02', SLURM_CPUS_ON_NODE: '8',
};

/** Kubeflow PyTorchJob v1 (Master + 2 Workers), pod worker-1; newer operators add the PET_ forms. */
const PYTORCHJOB: Env = {
  ...BASE,
  PYTHONUNBUFFERED: '0', MASTER_PORT: '23456', MASTER_ADDR: 'mnist-master-0', WORLD_SIZE: '3', RANK: '2',
  PET_MASTER_ADDR: 'mnist-master-0', PET_MASTER_PORT: '23456', PET_NNODES: '3', PET_NODE_RANK: '2', PET_NPROC_PER_NODE: 'auto',
};

/** Kubeflow Trainer v2 torch runtime, node 1 of 2 (only PET_ forms; the command is meant for torchrun). */
const TRAINJOB: Env = {
  ...BASE,
  PET_NNODES: '2', PET_NPROC_PER_NODE: '1', PET_NODE_RANK: '1',
  PET_MASTER_ADDR: 'mnist-node-0-0.mnist', PET_MASTER_PORT: '29400',
};

describe('contracts', () => {
  it('are tried in the order flags, torchrun, openmpi, slurm', () => {
    expect(CONTRACTS.map((c) => c.name)).toEqual(['flags', 'torchrun', 'openmpi', 'slurm']);
  });
});

describe('no launcher', () => {
  it('is a world of one process on 127.0.0.1:29500', () => {
    expect(resolveWorld({}, BASE)).toEqual({
      contract: 'none', rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1,
      masterAddr: '127.0.0.1', masterPort: 29500, runId: 'none', restartCount: 0,
      describe: 'none (no launcher variables or --rank/--world-size: one process)',
    });
  });

  it('ignores MASTER_ADDR / MASTER_PORT alone and blank launcher variables', () => {
    const world = resolveWorld({}, { ...BASE, MASTER_ADDR: 'node01', MASTER_PORT: '1234', RANK: '', WORLD_SIZE: '  ', SLURM_PROCID: '' });
    expect(world.contract).toBe('none');
    expect([world.masterAddr, world.masterPort]).toEqual(['127.0.0.1', 29500]);
  });

  it('an salloc shell (SLURM_JOB_ID, SLURM_NTASKS but no SLURM_PROCID) is a world of one', () => {
    expect(resolveWorld({}, { ...BASE, SLURM_JOB_ID: '77', SLURM_NTASKS: '4', SLURM_JOB_NODELIST: 'n[1-2]' }).contract).toBe('none');
  });
});

describe('flags', () => {
  it('--rank and --world-size alone: every process on this host, master 127.0.0.1:29500', () => {
    expect(resolveWorld({ rank: 1, worldSize: 2 }, BASE)).toEqual({
      contract: 'flags', rank: 1, worldSize: 2, localRank: 1, localWorldSize: 2,
      masterAddr: '127.0.0.1', masterPort: 29500, runId: 'none', restartCount: 0,
      describe: 'flags (--rank=1 --world-size=2), local rank 1 of 2, master 127.0.0.1:29500',
    });
  });

  it.each(['127.0.0.1', '127.1.2.3', 'localhost', '::1'])('a loopback master (%s) puts every process on this host', (masterAddr) => {
    const world = resolveWorld({ rank: 2, worldSize: 3, masterAddr, masterPort: 29600 }, BASE);
    expect([world.localRank, world.localWorldSize, world.masterAddr, world.masterPort]).toEqual([2, 3, masterAddr, 29600]);
  });

  it('any other master: one process per host', () => {
    const world = resolveWorld({ rank: 2, worldSize: 3, masterAddr: '10.0.0.5', masterPort: 29600 }, BASE);
    expect(world).toMatchObject({ rank: 2, worldSize: 3, localRank: 0, localWorldSize: 1, masterAddr: '10.0.0.5', masterPort: 29600 });
    expect(world.describe).toBe('flags (--rank=2 --world-size=3), local rank 0 of 1, master 10.0.0.5:29600');
  });

  it('brackets an IPv6 master in describe', () => {
    expect(resolveWorld({ rank: 0, worldSize: 2, masterAddr: '::1' }, BASE).describe).toBe(
      'flags (--rank=0 --world-size=2), local rank 0 of 2, master [::1]:29500',
    );
  });

  it.each<[WorldFlags, string]>([
    [{ rank: 1 }, '--rank is set (1) but --world-size is not'],
    [{ worldSize: 2 }, '--world-size is set (2) but --rank is not'],
    [{ rank: 2, worldSize: 2 }, '--rank=2 is out of range for --world-size=2 (expected 0..1)'],
    [{ rank: 0, worldSize: 0 }, '--world-size: expected an integer >= 1, found 0'],
    [{ rank: -1, worldSize: 2 }, '--rank: expected an integer >= 0, found -1'],
    [{ rank: 1.5, worldSize: 2 }, '--rank: expected an integer >= 0, found 1.5'],
    [{ rank: Number.NaN, worldSize: 2 }, '--rank: expected an integer >= 0, found NaN'],
    [{ rank: 0, worldSize: 2, masterPort: 70000 }, '--master-port: expected an integer in 1..65535, found 70000'],
    [{ rank: 0, worldSize: 2, masterPort: 0 }, '--master-port: expected an integer in 1..65535, found 0'],
    [{ rank: 0, worldSize: 2, masterAddr: ' ' }, '--master-addr: expected a host name or address, found ""'],
    [{ masterPort: 65536 }, '--master-port: expected an integer in 1..65535, found 65536'],
  ])('%j → %s', (flags, message) => {
    expect(errorOf(BASE, flags).message).toBe(message);
  });
});

describe('torchrun', () => {
  it('reads every variable torchrun sets', () => {
    expect(resolveWorld({}, TORCHRUN)).toEqual({
      contract: 'torchrun', rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2,
      // torchrun's agent store holds MASTER_PORT (TORCHELASTIC_USE_AGENT_STORE=True): the next port.
      masterAddr: 'node01', masterPort: 44322, runId: 'job42', restartCount: 1,
      errorFile: '/tmp/torchelastic_k2j4/job42_x7/attempt_1/1/error.json',
      describe: 'torchrun (RANK=3 WORLD_SIZE=4), local rank 1 of 2, master node01:44322',
    });
  });

  it('torchrun --standalone on one host (run id none, no error file)', () => {
    const env: Env = {
      ...BASE, RANK: '0', LOCAL_RANK: '0', WORLD_SIZE: '2', LOCAL_WORLD_SIZE: '2', GROUP_RANK: '0', ROLE_RANK: '0',
      MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500', TORCHELASTIC_RUN_ID: 'none', TORCHELASTIC_RESTART_COUNT: '0',
      TORCHELASTIC_MAX_RESTARTS: '0',
    };
    const world = resolveWorld({}, env);
    expect(world).toEqual({
      contract: 'torchrun', rank: 0, worldSize: 2, localRank: 0, localWorldSize: 2,
      masterAddr: '127.0.0.1', masterPort: 29500, runId: 'none', restartCount: 0,
      describe: 'torchrun (RANK=0 WORLD_SIZE=2), local rank 0 of 2, master 127.0.0.1:29500',
    });
    expect('errorFile' in world).toBe(false);
  });

  it('Kubeflow PyTorchJob v1 pod: plain RANK/WORLD_SIZE (pod index and count) win over PET_, one process per pod', () => {
    expect(resolveWorld({}, PYTORCHJOB)).toEqual({
      contract: 'torchrun', rank: 2, worldSize: 3, localRank: 0, localWorldSize: 1,
      masterAddr: 'mnist-master-0', masterPort: 23456, runId: 'none', restartCount: 0,
      describe: 'torchrun (RANK=2 WORLD_SIZE=3), local rank 0 of 1, master mnist-master-0:23456',
    });
  });

  it('plain form takes PET_MASTER_ADDR / PET_MASTER_PORT when MASTER_ADDR / MASTER_PORT are unset', () => {
    const world = resolveWorld({}, { ...BASE, RANK: '1', WORLD_SIZE: '2', PET_MASTER_ADDR: 'job-master-0', PET_MASTER_PORT: '23456' });
    expect([world.masterAddr, world.masterPort]).toEqual(['job-master-0', 23456]);
  });

  it('Kubeflow Trainer v2 PET_ form: one process per node, PET_NODE_RANK of PET_NNODES', () => {
    expect(resolveWorld({}, TRAINJOB)).toEqual({
      contract: 'torchrun', rank: 1, worldSize: 2, localRank: 0, localWorldSize: 1,
      masterAddr: 'mnist-node-0-0.mnist', masterPort: 29400, runId: 'none', restartCount: 0,
      describe: 'torchrun (Kubeflow PET_NODE_RANK=1 PET_NNODES=2), local rank 0 of 1, master mnist-node-0-0.mnist:29400',
    });
  });

  it.each(['auto', 'cpu', 'gpu', '1'])('PET_NPROC_PER_NODE=%s is one process per node', (nproc) => {
    expect(resolveWorld({}, { ...TRAINJOB, PET_NPROC_PER_NODE: nproc }).worldSize).toBe(2);
  });

  it('PET_NNODES "3:3" (min = max replicas) is 3 nodes', () => {
    expect(resolveWorld({}, { ...TRAINJOB, PET_NNODES: '3:3', PET_NODE_RANK: '2' })).toMatchObject({ rank: 2, worldSize: 3 });
  });

  it('a world of one needs no MASTER_ADDR and uses 127.0.0.1:29500', () => {
    const world = resolveWorld({}, { ...BASE, RANK: '0', WORLD_SIZE: '1' });
    expect(world).toMatchObject({ contract: 'torchrun', rank: 0, worldSize: 1, masterAddr: '127.0.0.1', masterPort: 29500 });
  });

  it('MASTER_PORT unset defaults to 29500', () => {
    expect(resolveWorld({}, { ...BASE, RANK: '0', WORLD_SIZE: '2', MASTER_ADDR: 'node01' }).masterPort).toBe(29500);
  });

  const plain: Env = { ...BASE, MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' };
  it.each<[Env, string]>([
    [{ ...plain, RANK: '1' }, 'RANK is set (1) but WORLD_SIZE is not'],
    [{ ...plain, WORLD_SIZE: '2' }, 'WORLD_SIZE is set (2) but RANK is not'],
    [{ ...plain, LOCAL_RANK: '0' }, 'LOCAL_RANK is set (0) but RANK and WORLD_SIZE are not'],
    [{ ...plain, LOCAL_WORLD_SIZE: '2' }, 'LOCAL_WORLD_SIZE is set (2) but RANK and WORLD_SIZE are not'],
    [{ ...plain, RANK: '3', WORLD_SIZE: '2' }, 'RANK=3 is out of range for WORLD_SIZE=2 (expected 0..1)'],
    [{ ...plain, RANK: '0', WORLD_SIZE: 'two' }, 'WORLD_SIZE: expected an integer >= 1, found "two"'],
    [{ ...plain, RANK: '0', WORLD_SIZE: '0' }, 'WORLD_SIZE: expected an integer >= 1, found "0"'],
    [{ ...plain, RANK: '-1', WORLD_SIZE: '2' }, 'RANK: expected an integer >= 0, found "-1"'],
    [{ ...plain, RANK: '1.0', WORLD_SIZE: '2' }, 'RANK: expected an integer >= 0, found "1.0"'],
    [{ ...plain, RANK: '0', WORLD_SIZE: '2', LOCAL_RANK: '0' }, 'LOCAL_RANK is set (0) but LOCAL_WORLD_SIZE is not'],
    [{ ...plain, RANK: '0', WORLD_SIZE: '2', LOCAL_WORLD_SIZE: '2' }, 'LOCAL_WORLD_SIZE is set (2) but LOCAL_RANK is not'],
    [{ ...plain, RANK: '1', WORLD_SIZE: '4', LOCAL_RANK: '2', LOCAL_WORLD_SIZE: '2' }, 'LOCAL_RANK=2 is out of range for LOCAL_WORLD_SIZE=2 (expected 0..1)'],
    [{ ...plain, RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '4' }, 'LOCAL_WORLD_SIZE=4 is larger than WORLD_SIZE=2'],
    [{ ...plain, RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: 'x', LOCAL_WORLD_SIZE: '2' }, 'LOCAL_RANK: expected an integer >= 0, found "x"'],
    [{ ...BASE, RANK: '1', WORLD_SIZE: '2' }, 'WORLD_SIZE is set (2) but MASTER_ADDR is not'],
    [{ ...plain, RANK: '1', WORLD_SIZE: '2', MASTER_PORT: '70000' }, 'MASTER_PORT: expected a port in 1..65535, found "70000"'],
    [{ ...plain, RANK: '1', WORLD_SIZE: '2', MASTER_PORT: '0' }, 'MASTER_PORT: expected a port in 1..65535, found "0"'],
    [{ ...BASE, RANK: '1', WORLD_SIZE: '2', PET_MASTER_ADDR: 'm', PET_MASTER_PORT: 'http' }, 'PET_MASTER_PORT: expected a port in 1..65535, found "http"'],
    [{ ...TORCHRUN, TORCHELASTIC_RESTART_COUNT: 'many' }, 'TORCHELASTIC_RESTART_COUNT: expected an integer >= 0, found "many"'],
    [{ ...TRAINJOB, PET_NNODES: undefined }, 'PET_NODE_RANK is set (1) but PET_NNODES is not'],
    [{ ...BASE, PET_NNODES: '2', PET_RDZV_ENDPOINT: 'job-worker-0:23456', PET_RDZV_BACKEND: 'c10d' }, 'PET_NNODES is set (2) but PET_NODE_RANK is not'],
    [{ ...TRAINJOB, PET_NNODES: '1:4' }, 'PET_NNODES: expected a fixed number of nodes, found the elastic range "1:4"'],
    [{ ...TRAINJOB, PET_NNODES: 'two' }, 'PET_NNODES: expected an integer >= 1, found "two"'],
    [{ ...TRAINJOB, PET_NODE_RANK: '2' }, 'PET_NODE_RANK=2 is out of range for PET_NNODES=2 (expected 0..1)'],
    [{ ...TRAINJOB, PET_MASTER_ADDR: undefined }, 'PET_NNODES is set (2) but PET_MASTER_ADDR is not'],
    [{ ...TRAINJOB, PET_NPROC_PER_NODE: 'many' }, 'PET_NPROC_PER_NODE: expected an integer >= 1, found "many"'],
    [
      { ...TRAINJOB, PET_NPROC_PER_NODE: '4' },
      'PET_NPROC_PER_NODE=4 asks for 4 processes per node but LOCAL_RANK is not set: start ringtrain with torchrun, ' +
        "or ask for 1 process per node (ringtrain uses all of a node's cores)",
    ],
  ])('%j', (env, message) => {
    expect(errorOf(env).message).toBe(message);
  });

  it('toThrow forms of the issue\'s examples', () => {
    expect(() => resolveWorld({}, { RANK: '1' })).toThrow(/^RANK is set \(1\) but WORLD_SIZE is not$/);
    expect(() => resolveWorld({}, { RANK: '3', WORLD_SIZE: '2', MASTER_ADDR: 'h' })).toThrow(
      /^RANK=3 is out of range for WORLD_SIZE=2 \(expected 0\.\.1\)$/,
    );
    expect(() => resolveWorld({}, { RANK: '0', WORLD_SIZE: 'two' })).toThrow(/^WORLD_SIZE: expected an integer >= 1, found "two"$/);
  });
});

describe('openmpi', () => {
  it('reads mpirun\'s variables, with MASTER_ADDR / MASTER_PORT passed by -x', () => {
    expect(resolveWorld({}, { ...MPIRUN, MASTER_ADDR: 'node01', MASTER_PORT: '29600' })).toEqual({
      contract: 'openmpi', rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2,
      masterAddr: 'node01', masterPort: 29600, runId: '2412642305', restartCount: 0,
      describe: 'openmpi (OMPI_COMM_WORLD_RANK=3 OMPI_COMM_WORLD_SIZE=4), local rank 1 of 2, master node01:29600',
    });
  });

  it('one host (LOCAL_SIZE = SIZE) without MASTER_ADDR: 127.0.0.1:29500', () => {
    const env: Env = {
      ...BASE, OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_LOCAL_RANK: '1',
      OMPI_COMM_WORLD_LOCAL_SIZE: '2', OMPI_COMM_WORLD_NODE_RANK: '0', PMIX_NAMESPACE: 'prterun-node01-1234@1',
    };
    expect(resolveWorld({}, env)).toEqual({
      contract: 'openmpi', rank: 1, worldSize: 2, localRank: 1, localWorldSize: 2,
      masterAddr: '127.0.0.1', masterPort: 29500, runId: 'prterun-node01-1234@1', restartCount: 0,
      describe: 'openmpi (OMPI_COMM_WORLD_RANK=1 OMPI_COMM_WORLD_SIZE=2), local rank 1 of 2, master 127.0.0.1:29500',
    });
  });

  it.each<[Env, string]>([
    [
      MPIRUN,
      'OMPI_COMM_WORLD_SIZE=4 spans more than one host (OMPI_COMM_WORLD_LOCAL_SIZE=2) but MASTER_ADDR is not set: ' +
        'pass -x MASTER_ADDR=<host of rank 0> to mpirun',
    ],
    [
      { ...BASE, OMPI_COMM_WORLD_RANK: '0', OMPI_COMM_WORLD_SIZE: '2' },
      'OMPI_COMM_WORLD_RANK is set (0) but OMPI_COMM_WORLD_LOCAL_RANK and OMPI_COMM_WORLD_LOCAL_SIZE are not',
    ],
    [
      { ...BASE, OMPI_COMM_WORLD_LOCAL_RANK: '0' },
      'OMPI_COMM_WORLD_LOCAL_RANK is set (0) but OMPI_COMM_WORLD_RANK, OMPI_COMM_WORLD_SIZE and OMPI_COMM_WORLD_LOCAL_SIZE are not',
    ],
    [{ ...MPIRUN, OMPI_COMM_WORLD_RANK: '4' }, 'OMPI_COMM_WORLD_RANK=4 is out of range for OMPI_COMM_WORLD_SIZE=4 (expected 0..3)'],
    [{ ...MPIRUN, OMPI_COMM_WORLD_LOCAL_RANK: '2' }, 'OMPI_COMM_WORLD_LOCAL_RANK=2 is out of range for OMPI_COMM_WORLD_LOCAL_SIZE=2 (expected 0..1)'],
    [{ ...MPIRUN, OMPI_COMM_WORLD_LOCAL_SIZE: '8' }, 'OMPI_COMM_WORLD_LOCAL_SIZE=8 is larger than OMPI_COMM_WORLD_SIZE=4'],
    [{ ...MPIRUN, OMPI_COMM_WORLD_SIZE: 'four' }, 'OMPI_COMM_WORLD_SIZE: expected an integer >= 1, found "four"'],
    [{ ...MPIRUN, MASTER_ADDR: 'node01', MASTER_PORT: '99999' }, 'MASTER_PORT: expected a port in 1..65535, found "99999"'],
  ])('%j', (env, message) => {
    expect(errorOf(env).message).toBe(message);
  });
});

describe('slurm', () => {
  it('reads srun\'s variables: master = first host of the node list, port from the job id', () => {
    expect(resolveWorld({}, SRUN)).toEqual({
      contract: 'slurm', rank: 3, worldSize: 4, localRank: 1, localWorldSize: 2,
      masterAddr: 'node01', masterPort: 14242, runId: '4242.0', restartCount: 0,
      describe: 'slurm (SLURM_PROCID=3 SLURM_NTASKS=4 SLURM_JOB_ID=4242), local rank 1 of 2, master node01:14242',
    });
  });

  it('port 10000 + SLURM_JOB_ID % 20000 differs between consecutive jobs', () => {
    expect(resolveWorld({}, { ...SRUN, SLURM_JOB_ID: '123456' }).masterPort).toBe(13456);
    expect(resolveWorld({}, { ...SRUN, SLURM_JOB_ID: '123457' }).masterPort).toBe(13457);
    expect(resolveWorld({}, { ...SRUN, SLURM_JOB_ID: '20000' }).masterPort).toBe(10000);
  });

  it('MASTER_ADDR / MASTER_PORT from the environment win', () => {
    const world = resolveWorld({}, { ...SRUN, MASTER_ADDR: '10.1.0.7', MASTER_PORT: '29501' });
    expect([world.masterAddr, world.masterPort]).toEqual(['10.1.0.7', 29501]);
  });

  it('takes the first node list that is set: step, job, then SLURM_NODELIST', () => {
    const lists = { SLURM_STEP_NODELIST: undefined, SLURM_JOB_NODELIST: undefined, SLURM_NODELIST: undefined };
    expect(resolveWorld({}, { ...SRUN, ...lists, SLURM_NODELIST: 'cn[005-006]' }).masterAddr).toBe('cn005');
    expect(resolveWorld({}, { ...SRUN, ...lists, SLURM_JOB_NODELIST: 'a[1-2],b3,c[05-06]' }).masterAddr).toBe('a1');
    expect(resolveWorld({}, { ...SRUN, SLURM_JOB_NODELIST: 'gpu[01-08]', SLURM_STEP_NODELIST: 'gpu[03-04]' }).masterAddr).toBe('gpu03');
  });

  it('local size from SLURM_TASKS_PER_NODE when --ntasks-per-node was not given, this node\'s entry', () => {
    const env: Env = { ...SRUN, SLURM_NTASKS_PER_NODE: undefined, SLURM_NTASKS: '7', SLURM_TASKS_PER_NODE: '2(x3),1', SLURM_PROCID: '6', SLURM_LOCALID: '0', SLURM_NODEID: '3', SLURM_JOB_NODELIST: 'node[01-03,7]' };
    expect(resolveWorld({}, env)).toMatchObject({ rank: 6, worldSize: 7, localRank: 0, localWorldSize: 1, masterAddr: 'node01' });
    expect(resolveWorld({}, { ...env, SLURM_PROCID: '5', SLURM_LOCALID: '1', SLURM_NODEID: '2' }).localWorldSize).toBe(2);
    expect(resolveWorld({}, { ...env, SLURM_PROCID: '1', SLURM_LOCALID: '1', SLURM_NODEID: undefined }).localWorldSize).toBe(2);
  });

  it('one task, no job id or node list: 127.0.0.1:29500, run id none; SLURM_RESTART_COUNT after a requeue', () => {
    const env: Env = { ...BASE, SLURM_PROCID: '0', SLURM_NTASKS: '1', SLURM_LOCALID: '0', SLURM_TASKS_PER_NODE: '1', SLURM_RESTART_COUNT: '2' };
    expect(resolveWorld({}, env)).toEqual({
      contract: 'slurm', rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1,
      masterAddr: '127.0.0.1', masterPort: 29500, runId: 'none', restartCount: 2,
      describe: 'slurm (SLURM_PROCID=0 SLURM_NTASKS=1), local rank 0 of 1, master 127.0.0.1:29500',
    });
  });

  it('a job without a step id has the job id as run id', () => {
    expect(resolveWorld({}, { ...SRUN, SLURM_STEP_ID: undefined }).runId).toBe('4242');
  });

  it.each<[Env, string]>([
    [{ ...SRUN, SLURM_NTASKS: undefined, SLURM_PROCID: '0' }, 'SLURM_PROCID is set (0) but SLURM_NTASKS is not'],
    [{ ...BASE, SLURM_PROCID: '0' }, 'SLURM_PROCID is set (0) but SLURM_NTASKS and SLURM_LOCALID are not'],
    [{ ...SRUN, SLURM_PROCID: '4' }, 'SLURM_PROCID=4 is out of range for SLURM_NTASKS=4 (expected 0..3)'],
    [{ ...SRUN, SLURM_NTASKS: 'x' }, 'SLURM_NTASKS: expected an integer >= 1, found "x"'],
    [{ ...SRUN, SLURM_LOCALID: '2' }, 'SLURM_LOCALID=2 is out of range for SLURM_NTASKS_PER_NODE=2 (expected 0..1)'],
    [
      { ...SRUN, SLURM_NTASKS_PER_NODE: undefined, SLURM_LOCALID: '2' },
      'SLURM_LOCALID=2 is out of range for SLURM_TASKS_PER_NODE=2(x2) on node 1 (expected 0..1)',
    ],
    [{ ...SRUN, SLURM_NTASKS_PER_NODE: '8' }, 'SLURM_NTASKS_PER_NODE=8 is larger than SLURM_NTASKS=4'],
    [
      { ...SRUN, SLURM_NTASKS_PER_NODE: undefined, SLURM_TASKS_PER_NODE: undefined },
      'SLURM_PROCID is set (3) but SLURM_NTASKS_PER_NODE and SLURM_TASKS_PER_NODE are not',
    ],
    [{ ...SRUN, SLURM_NTASKS_PER_NODE: undefined, SLURM_TASKS_PER_NODE: '2(x2' }, 'SLURM_TASKS_PER_NODE: expected counts like "2(x3),1", found "2(x2"'],
    [{ ...SRUN, SLURM_NTASKS_PER_NODE: undefined, SLURM_TASKS_PER_NODE: '2,0' }, 'SLURM_TASKS_PER_NODE: expected counts like "2(x3),1", found "2,0"'],
    [{ ...SRUN, SLURM_NTASKS_PER_NODE: undefined, SLURM_NODEID: '2' }, 'SLURM_NODEID=2 is out of range for SLURM_TASKS_PER_NODE=2(x2) (2 nodes)'],
    [
      { ...SRUN, SLURM_STEP_NODELIST: undefined, SLURM_JOB_NODELIST: 'node[01-02', SLURM_NODELIST: undefined },
      'SLURM_JOB_NODELIST: expected a Slurm host list like "node[01-03,7]", found "node[01-02" (unclosed "[")',
    ],
    [
      { ...SRUN, SLURM_STEP_NODELIST: undefined, SLURM_JOB_NODELIST: undefined, SLURM_NODELIST: undefined },
      'SLURM_PROCID is set (3) but SLURM_JOB_NODELIST and MASTER_ADDR are not',
    ],
    [{ ...SRUN, MASTER_PORT: '65536' }, 'MASTER_PORT: expected a port in 1..65535, found "65536"'],
    [{ ...SRUN, SLURM_JOB_ID: 'abc' }, 'SLURM_JOB_ID: expected an integer >= 0, found "abc"'],
    [{ ...SRUN, SLURM_RESTART_COUNT: '-1' }, 'SLURM_RESTART_COUNT: expected an integer >= 0, found "-1"'],
  ])('%j', (env, message) => {
    expect(errorOf(env).message).toBe(message);
  });
});

describe('precedence', () => {
  const ALL: Env = { ...SRUN, ...MPIRUN, ...TORCHRUN };

  it('flags over torchrun, OpenMPI and Slurm', () => {
    const world = resolveWorld({ rank: 0, worldSize: 2 }, ALL);
    expect(world).toMatchObject({ contract: 'flags', rank: 0, worldSize: 2, masterAddr: '127.0.0.1', masterPort: 29500, runId: 'none' });
  });

  it('torchrun over OpenMPI and Slurm (srun torchrun ...)', () => {
    expect(resolveWorld({}, ALL)).toMatchObject({ contract: 'torchrun', rank: 3, worldSize: 4, runId: 'job42' });
  });

  it('OpenMPI over Slurm (mpirun inside an sbatch script, whose batch step sets SLURM_PROCID=0)', () => {
    const env: Env = { ...SRUN, SLURM_PROCID: '0', SLURM_LOCALID: '0', SLURM_NODEID: '0', ...MPIRUN, MASTER_ADDR: 'node01' };
    expect(resolveWorld({}, env)).toMatchObject({ contract: 'openmpi', rank: 3, worldSize: 4, masterAddr: 'node01', masterPort: 29500 });
  });

  it('a half-set torchrun environment is an error, not a fall-through to OpenMPI or Slurm', () => {
    expect(errorOf({ ...SRUN, LOCAL_RANK: '1' }).message).toBe('LOCAL_RANK is set (1) but RANK and WORLD_SIZE are not');
  });

  it('--master-addr / --master-port alone override the master of the contract read', () => {
    const world = resolveWorld({ masterAddr: 'head', masterPort: 29700 }, SRUN);
    expect(world).toMatchObject({ contract: 'slurm', rank: 3, masterAddr: 'head', masterPort: 29700 });
    expect(world.describe).toBe(
      'slurm (SLURM_PROCID=3 SLURM_NTASKS=4 SLURM_JOB_ID=4242), local rank 1 of 2, master head:29700 (from --master-addr and --master-port)',
    );
    expect(resolveWorld({ masterPort: 29701 }, TORCHRUN)).toMatchObject({ masterAddr: 'node01', masterPort: 29701 });
    expect(resolveWorld({ masterPort: 29702 }, BASE)).toMatchObject({ contract: 'none', masterPort: 29702 });
  });
});

describe('torchrun with its agent store', () => {
  const base = { RANK: '1', WORLD_SIZE: '2', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' };
  it('takes MASTER_PORT + 1, since the agent\'s TCPStore listens on MASTER_PORT', () => {
    expect(resolveWorld({}, { ...base, TORCHELASTIC_USE_AGENT_STORE: 'True' }).masterPort).toBe(29501);
    expect(resolveWorld({}, base).masterPort).toBe(29500);
  });
  it('RINGTRAIN_MASTER_PORT names the port outright', () => {
    expect(resolveWorld({}, { ...base, TORCHELASTIC_USE_AGENT_STORE: 'True', RINGTRAIN_MASTER_PORT: '31000' }).masterPort).toBe(31000);
  });
});
