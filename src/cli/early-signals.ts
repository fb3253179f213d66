/**
 * SIGINT and SIGTERM before a command has anything to close (while the modules load, the
 * arguments are parsed): exit at once with 130 / 143, the codes of a run stopped by them.
 * A command with something to close (a training run) takes the signals over while it runs.
 */
export const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

function exitAtOnce(signal: NodeJS.Signals): void {
  process.exit(signal === 'SIGTERM' ? SIGNAL_EXIT_CODES.SIGTERM : SIGNAL_EXIT_CODES.SIGINT);
}

export function exitAtOnceOnSignals(): void {
  process.on('SIGINT', exitAtOnce);
  process.on('SIGTERM', exitAtOnce);
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
