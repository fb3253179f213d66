#!/usr/bin/env node
/**
 * The `ringtrain` command's entry: SIGINT/SIGTERM are handled from the first moment (loading
 * the modules takes seconds on a busy machine), then the program is loaded and run (program.ts).
 */
import { exitAtOnceOnSignals } from './early-signals.js';

exitAtOnceOnSignals();
const { main } = await import('./program.js');
process.exitCode = await main(process.argv);
