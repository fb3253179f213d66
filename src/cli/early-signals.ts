/**
 * SIGINT and SIGTERM before a command has anything to close (while the modules load, the
 * arguments are parsed): exit at once with 130 / 143, the codes of a run stopped by them.
 * A command with something to close (a training run) takes the signals over while it runs.
 */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

function exitAtOnce(signal: NodeJS.Signals): void {
  process.exit(SIGNAL_EXIT_CODES[signal === 'SIGTERM' ? 'SIGTERM' : 'SIGINT']);
}

export function exitAtOnceOnSignals(): void {
  process.on('SIGINT', exitAtOnce);
  process.on('SIGTERM', exitAtOnce);
  stopWhenLauncherGoes();
}

/** Set by `--nproc-per-node` (launch/local-launcher.ts) in the processes it starts with an IPC channel. */
export const LAUNCHER_CHANNEL_VAR = 'RINGTRAIN_LAUNCHER_CHANNEL';

/**
 * A process started by ringtrain's own launcher holds an IPC channel to it. When the launcher
 * is gone (killed with SIGKILL, say), the channel closes: the process then stops as on SIGTERM,
 * through whichever SIGTERM handler is current (exit at once, or a run's stop and checkpoint).
 * The channel never keeps the process alive.
 */
function stopWhenLauncherGoes(): void {
  if (process.env[LAUNCHER_CHANNEL_VAR] !== '1' || !process.channel) return;
  process.channel.unref();
  process.once('disconnect', () => process.kill(process.pid, 'SIGTERM'));
}

/** Stops exiting at once on the signals (the caller handles them); returns the undo. */
export function takeOverSignals(): () => void {
  const had = process.listeners('SIGINT').includes(exitAtOnce);
  process.off('SIGINT', exitAtOnce);
  process.off('SIGTERM', exitAtOnce);
  return () => {
    if (had) exitAtOnceOnSignals();
  };
}
