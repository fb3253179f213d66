#!/usr/bin/env node
/**
 * The `ringtrain` command's entry: SIGINT/SIGTERM are handled from the first moment (loading
 * the modules takes seconds on a busy machine), then the program is loaded and run (program.ts).
 */
import { exitAtOnceOnSignals } from './early-signals.js';

exitAtOnceOnSignals();
const { main } = await import('./program.js');
process.exitCode = await main(process.argv);
// A finished command exits even if something still holds the event loop (a write stuck in the
// kernel on a hung mount, a download of a stopped run): 5 s later, never sooner.
setTimeout(() => process.exit(), 5_000).unref();
