/**
 * One TensorBoard event file (one writer, as Keras's TensorBoard callback has one for `train/`
 * and one for `validation/`): `events.out.tfevents.<seconds>.<host>.<pid>.<n>.v2`, named as
 * TensorFlow 2 names them, whose first record says `file_version: "brain.Event:2"`. Each event is
 * written at once, so a run that is killed keeps what it logged.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { makeFolder, writingFile } from '../../util/fs-errors.js';
import { frameRecord } from './record.js';
import { encodeEvent, FILE_VERSION, type SummaryValue } from './summaries.js';

let filesOpened = 0;

export class EventFile {
  readonly file: string;
  private fd: number | undefined;

  constructor(dir: string) {
    writingFile(dir, 'create the TensorBoard folder', () => makeFolder(dir));
    const now = Date.now();
    this.file = join(dir, `events.out.tfevents.${String(Math.floor(now / 1000)).padStart(10, '0')}.${hostname()}.${process.pid}.${filesOpened++}.v2`);
    this.fd = writingFile(this.file, 'create the TensorBoard event file', () => openSync(this.file, 'wx'));
    this.writeRecord(encodeEvent({ wallTime: now / 1000, fileVersion: FILE_VERSION, sourceMetadata: { writer: 'ringtrain' } }));
  }

  /** One event of `values` at `step`. */
  write(step: number, values: SummaryValue[], wallTime = Date.now() / 1000): void {
    if (values.length > 0) this.writeRecord(encodeEvent({ wallTime, step, values }));
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    writingFile(this.file, 'close the TensorBoard event file', () => closeSync(fd));
  }

  private writeRecord(data: Uint8Array): void {
    const fd = this.fd;
    if (fd === undefined) throw new Error(`${this.file} is closed`);
    const record = frameRecord(data);
    writingFile(this.file, 'write to the TensorBoard event file', () => {
      for (let done = 0; done < record.length; ) done += writeSync(fd, record, done, record.length - done);
    });
  }
}
