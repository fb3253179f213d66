/**
 * Command-line flags: `--rank R --world-size N [--master-addr HOST] [--master-port PORT]`.
 *
 * --rank and --world-size come together (one alone is a UserError); the environment is then not
 * read at all. The master defaults to torchrun's 127.0.0.1:29500.
 * Local rank/size: flags cannot say how many of the processes share this host, so:
 *   - master on loopback (127.x.x.x, localhost, ::1): every process must be on this host (they
 *     reach rank 0 through loopback), so localRank = rank, localWorldSize = worldSize;
 *   - any other master: assume one process per host, localRank 0, localWorldSize 1 (a process
 *     then takes its whole host's cores; start several per host with a launcher instead).
 */
import { UserError } from '../../errors.js';
import { checkFlagInt, checkRank, DEFAULT_MASTER_ADDR, DEFAULT_MASTER_PORT, missingError } from '../vars.js';
import type { LaunchContract } from '../world.js';

export function isLoopback(host: string): boolean {
  return /^127(\.\d{1,3}){3}$/.test(host) || host === 'localhost' || host === '::1' || host === '[::1]';
}

export const flagsContract: LaunchContract = {
  name: 'flags',
  detect: (_env, flags) => flags.rank !== undefined || flags.worldSize !== undefined,
  read(_env, flags) {
    if (flags.worldSize === undefined) throw missingError('--rank', flags.rank!, ['--world-size']);
    if (flags.rank === undefined) throw missingError('--world-size', flags.worldSize, ['--rank']);
    const worldSize = checkFlagInt('--world-size', flags.worldSize, 1);
    const rank = checkFlagInt('--rank', flags.rank, 0);
    checkRank('--rank', rank, '--world-size', worldSize);
    let masterAddr = DEFAULT_MASTER_ADDR;
    if (flags.masterAddr !== undefined) {
      masterAddr = flags.masterAddr.trim();
      if (masterAddr === '') throw new UserError('--master-addr: expected a host name or address, found ""');
    }
    const masterPort = flags.masterPort === undefined ? DEFAULT_MASTER_PORT : checkFlagInt('--master-port', flags.masterPort, 1, 65535);
    const local = isLoopback(masterAddr);
    return {
      contract: 'flags',
      rank,
      worldSize,
      localRank: local ? rank : 0,
      localWorldSize: local ? worldSize : 1,
      masterAddr,
      masterPort,
      runId: 'none',
      restartCount: 0,
      describe: `flags (--rank=${rank} --world-size=${worldSize})`,
    };
  },
};
