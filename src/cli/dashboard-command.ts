/** `ringtrain dashboard [dir]`: serve the runs under a folder on 127.0.0.1 until SIGINT or SIGTERM. */
import { statSync } from 'node:fs';
import { UserError } from '../errors.js';
import { startDashboard } from '../report/dashboard/server.js';
import { takeOverSignals } from './early-signals.js';

export async function dashboardCommand(dir: string, flags: { port?: number }): Promise<void> {
  let isFolder = false;
  try {
    isFolder = statSync(dir).isDirectory();
  } catch {
    throw new UserError(`${dir}: folder not found`, { hint: 'give the folder the runs write into (runs/ by default, or the --out of a run)' });
  }
  if (!isFolder) throw new UserError(`${dir}: is a file, expected a folder of runs`);
  if (flags.port !== undefined && flags.port > 65535) throw new UserError(`--port expects a port number from 0 to 65535, found ${flags.port}`);
  const giveBackSignals = takeOverSignals();
  try {
    let server;
    try {
      server = await startDashboard(dir, { port: flags.port });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'EADDRINUSE' || code === 'EACCES') throw new UserError(`--port ${flags.port}: cannot listen on 127.0.0.1:${flags.port} (${code})`);
      throw error;
    }
    process.stdout.write(`ringtrain dashboard of ${dir}: ${server.url}\n(Ctrl-C to stop)\n`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      const onSignal = (name: NodeJS.Signals) => {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        resolve(name);
      };
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    });
    await server.close();
    process.stderr.write(`${signal}: dashboard stopped\n`);
  } finally {
    giveBackSignals();
  }
}
