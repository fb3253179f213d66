/**
 * The frames processes exchange: a 16-byte header (payload length u32, operation u8, three
 * reserved bytes, step i32, sequence u32; little-endian) and the payload. Every operation has a
 * bound on its payload, checked on the header alone, before anything is allocated: a peer that
 * claims more is refused, never trusted.
 */
export const HEADER_BYTES = 16;

/** The largest data segment: chunks go out in segments of at most this (gloo's ring uses 1 MiB too). */
export const SEGMENT_BYTES = 1 << 20;

export const Op = {
  CHALLENGE: 1,
  AUTH: 2,
  AUTH_OK: 3,
  HELLO: 4,
  TABLE: 5,
  REJECT: 6,
  RING_HELLO: 7,
  DATA: 8,
  EXCHANGE: 9,
  EXCHANGE_RESULT: 10,
  HEARTBEAT: 11,
  ABORT: 12,
  BYE: 13,
} as const;
export type OpCode = (typeof Op)[keyof typeof Op];

const KIB = 1024;
/** Largest payload of each operation. */
export const MAX_PAYLOAD: Readonly<Record<OpCode, number>> = {
  [Op.CHALLENGE]: 64,
  [Op.AUTH]: 256,
  [Op.AUTH_OK]: 64,
  [Op.HELLO]: 64 * KIB,
  [Op.TABLE]: 1024 * KIB,
  [Op.REJECT]: 4 * KIB,
  [Op.RING_HELLO]: 256,
  [Op.DATA]: SEGMENT_BYTES,
  [Op.EXCHANGE]: 1024 * KIB,
  [Op.EXCHANGE_RESULT]: 4096 * KIB,
  [Op.HEARTBEAT]: 0,
  [Op.ABORT]: 4 * KIB,
  [Op.BYE]: 0,
};

export function opName(op: number): string {
  const name = Object.entries(Op).find(([, code]) => code === op)?.[0];
  return name ? name.toLowerCase().replace('_', '-') : `unknown operation ${op}`;
}

export interface FrameHeader {
  length: number;
  op: OpCode;
  step: number;
  seq: number;
}

export function encodeHeader(op: OpCode, step: number, seq: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32LE(length, 0);
  header.writeUInt8(op, 4);
  header.writeUInt8(0, 5);
  header.writeUInt16LE(0, 6);
  header.writeInt32LE(step, 8);
  header.writeUInt32LE(seq >>> 0, 12);
  return header;
}

/** Reads and checks a header; throws a one-line error for an unknown operation or an oversized length. */
export function decodeHeader(bytes: Buffer): FrameHeader {
  const length = bytes.readUInt32LE(0);
  const op = bytes.readUInt8(4);
  const bound = MAX_PAYLOAD[op as OpCode];
  if (bound === undefined) throw new Error(`protocol violation: unknown operation ${op}`);
  if (length > bound) throw new Error(`protocol violation: a ${opName(op)} frame of ${length} bytes exceeds its bound of ${bound} bytes`);
  return { length, op: op as OpCode, step: bytes.readInt32LE(8), seq: bytes.readUInt32LE(12) };
}
