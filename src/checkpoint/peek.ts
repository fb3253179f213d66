/**
 * A checkpoint's small facts (position, history, when and by how many replicas it was written)
 * read without its tensors: the header, then the payload's top-level fields one by one, reading
 * the small ones and seeking past the parameter and optimizer tensors. Nothing is verified (the
 * CRCs cover the whole payload): this is for showing a run's checkpoints (the dashboard), never
 * for loading one (readCheckpointFile does that).
 */
import { open, type FileHandle } from 'node:fs/promises';
import protobuf from 'protobufjs';
import { CHECKPOINT_HEADER_BYTES, CHECKPOINT_MAGIC, HEADER, historyFromJson } from './format.js';

export interface CheckpointPeek {
  /** The next step to run is (epoch, stepInEpoch); globalStep updates were applied. */
  position: { epoch: number; stepInEpoch: number; globalStep: number; samplesSeen: number };
  createdAt?: string;
  replicas?: number;
  ringtrainVersion?: string;
  /** The history's last record (the last finished epoch, or the sums of a partial one). */
  lastRecord?: Record<string, unknown>;
}

/** Field numbers of `Checkpoint` in proto/checkpoint.proto. */
const FIELD = { ringtrainVersion: 3, position: 9, historyJson: 12, replicas: 13, createdAt: 14 } as const;
/** The small fields read; anything longer (a tensor, a config, a history past this) is skipped. */
const MAX_FIELD_BYTES = 4 << 20;
/** Top-level fields looked at, at most (a checkpoint has 14). */
const MAX_FIELDS = 64;

/** Reads the facts of the checkpoint `file`; throws an Error saying what is wrong when it is not one. */
export async function peekCheckpoint(file: string): Promise<CheckpointPeek> {
  const handle = await open(file, 'r');
  try {
    const size = (await handle.stat()).size;
    if (size < CHECKPOINT_HEADER_BYTES) throw new Error(`${file}: not a ringtrain checkpoint (${size} bytes, shorter than the header)`);
    const header = await readAt(handle, 0, CHECKPOINT_HEADER_BYTES, file);
    if (Buffer.from(header.subarray(HEADER.magic, HEADER.magic + CHECKPOINT_MAGIC.length)).toString('latin1') !== CHECKPOINT_MAGIC) throw new Error(`${file}: not a ringtrain checkpoint (no magic)`);
    const payloadLength = Number(new DataView(header.buffer, header.byteOffset).getBigUint64(HEADER.payloadLength, true));
    const end = CHECKPOINT_HEADER_BYTES + payloadLength;
    if (size < end) throw new Error(`${file}: cut short: ${size} bytes, its header says ${end}`);
    let position: CheckpointPeek['position'] | undefined;
    const peek: Omit<CheckpointPeek, 'position'> = {};
    let at = CHECKPOINT_HEADER_BYTES;
    for (let fields = 0; at < end && fields < MAX_FIELDS; fields++) {
      // A tag and a length are two varints of at most 10 bytes each.
      const head = await readAt(handle, at, Math.min(20, end - at), file);
      const reader = protobuf.Reader.create(head);
      const tag = reader.uint32();
      const wireType = tag & 7;
      const field = tag >>> 3;
      if (wireType === 0) {
        const value = reader.uint32();
        if (field === FIELD.replicas) peek.replicas = value;
        at += reader.pos;
        continue;
      }
      if (wireType !== 2) throw new Error(`${file}: unexpected wire type ${wireType} of field ${field}`);
      const length = reader.uint32();
      const start = at + reader.pos;
      at = start + length;
      if (length > MAX_FIELD_BYTES || !Object.values(FIELD).includes(field as never)) continue;
      const bytes = await readAt(handle, start, length, file);
      const text = () => Buffer.from(bytes).toString('utf8');
      if (field === FIELD.ringtrainVersion) peek.ringtrainVersion = text();
      else if (field === FIELD.createdAt) peek.createdAt = text();
      else if (field === FIELD.position) position = decodePosition(bytes);
      else if (field === FIELD.historyJson) {
        const history = historyFromJson(text());
        const last = history.at(-1);
        if (last !== undefined) peek.lastRecord = last as Record<string, unknown>;
      }
    }
    if (!position) throw new Error(`${file}: no position in the checkpoint`);
    return { ...peek, position };
  } finally {
    await handle.close();
  }
}

function decodePosition(bytes: Uint8Array): CheckpointPeek['position'] {
  const position = { epoch: 0, stepInEpoch: 0, globalStep: 0, samplesSeen: 0 };
  const names = ['', 'epoch', 'stepInEpoch', 'globalStep', 'samplesSeen'] as const;
  const reader = protobuf.Reader.create(bytes);
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const name = names[tag >>> 3];
    if ((tag & 7) === 0 && name) position[name] = Number(reader.uint64().toString());
    else reader.skipType(tag & 7);
  }
  return position;
}

async function readAt(handle: FileHandle, at: number, length: number, file: string): Promise<Uint8Array> {
  const bytes = new Uint8Array(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await handle.read(bytes, got, length - got, at + got);
    if (bytesRead === 0) throw new Error(`${file}: the file ends at byte ${at + got}, inside a field that should run to byte ${at + length}`);
    got += bytesRead;
  }
  return bytes;
}
