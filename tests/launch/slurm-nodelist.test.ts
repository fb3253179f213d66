import { describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { expandSlurmNodelist, firstSlurmHost } from '../../src/launch/slurm-nodelist.js';

function errorOf(run: () => unknown): UserError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error('expected a UserError, nothing was thrown');
}

describe('expandSlurmNodelist', () => {
  it.each([
    ['node01', ['node01']],
    ['node[01-03,7]', ['node01', 'node02', 'node03', 'node7']],
    ['a[1-2],b3,c[05-06]', ['a1', 'a2', 'b3', 'c05', 'c06']],
    ['gpu-[8-10]', ['gpu-8', 'gpu-9', 'gpu-10']],
    ['gpu-[08-10]', ['gpu-08', 'gpu-09', 'gpu-10']],
    ['cn[001-002],login1', ['cn001', 'cn002', 'login1']],
    ['rack[1-2]-n[1-2]', ['rack1-n1', 'rack1-n2', 'rack2-n1', 'rack2-n2']],
    ['n[1-2].cluster.local', ['n1.cluster.local', 'n2.cluster.local']],
    ['node[3]', ['node3']],
    ['x,y,z', ['x', 'y', 'z']],
  ])('%s', (list, hosts) => {
    expect(expandSlurmNodelist(list)).toEqual(hosts);
    expect(firstSlurmHost(list)).toBe(hosts[0]);
  });

  it('finds the first host of a large range without expanding it', () => {
    expect(firstSlurmHost('node[00001-99999]')).toBe('node00001');
    expect(expandSlurmNodelist('node[00001-99999]')).toHaveLength(99999);
  });

  const expected = 'expected a Slurm host list like "node[01-03,7]"';
  it.each([
    ['node[01-03', 'unclosed "["'],
    ['node01]', 'unmatched "]"'],
    ['node[1-[2]]', 'nested "["'],
    ['node[3-1]', 'range "3-1" runs backwards'],
    ['node[a-b]', 'bad range "a-b"'],
    ['node[]', 'bad range ""'],
    ['node[1,,2]', 'bad range ""'],
    ['node[1-]', 'bad range "1-"'],
    ['a,,b', 'empty host name'],
    ['a,', 'empty host name'],
    [',a', 'empty host name'],
    ['', 'empty'],
    ['node 1', 'blank inside'],
    ['node[0-99999999]', 'expands to more than 1000000 hosts'],
  ])('rejects %j (%s)', (list, reason) => {
    expect(errorOf(() => expandSlurmNodelist(list)).message).toBe(`Slurm host list: ${expected}, found "${list}" (${reason})`);
  });

  it('names the variable it was given', () => {
    expect(() => firstSlurmHost('node[01-03', 'SLURM_JOB_NODELIST')).toThrow(
      /^SLURM_JOB_NODELIST: expected a Slurm host list like "node\[01-03,7\]", found "node\[01-03" \(unclosed "\["\)$/,
    );
  });
});
