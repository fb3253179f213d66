/**
 * torchrun's error file: where TORCHELASTIC_ERROR_FILE points, a failing worker writes its
 * error as JSON, which the elastic agent reads to report the root cause of a failed group
 * (torch.distributed.elastic.multiprocessing.errors, ErrorHandler.record_exception).
 */
import { writeFileSync } from 'node:fs';

export function writeTorchElasticError(file: string, error: Error): void {
  const record = {
    message: {
      message: `${error.name}: ${error.message}`,
      extraInfo: { py_callstack: error.stack ?? `${error.name}: ${error.message}`, timestamp: String(Math.floor(Date.now() / 1000)) },
    },
  };
  try {
    writeFileSync(file, JSON.stringify(record));
  } catch (writeError) {
    process.stderr.write(`ringtrain: could not write the error file ${file}: ${(writeError as Error).message}\n`);
  }
}
