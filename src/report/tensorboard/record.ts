/**
 * TFRecord framing, as TensorFlow's record writer (and TensorBoard's own, record_writer.py)
 * writes each event of an event file:
 *
 *   uint64 little-endian  length of the data
 *   uint32 little-endian  masked CRC32C of those 8 length bytes
 *   bytes                 the data (one encoded Event)
 *   uint32 little-endian  masked CRC32C of the data
 *
 * The mask (rotate right by 15 bits, add 0xa282ead8) keeps a CRC of data that contains CRCs
 * from being a CRC of itself.
 */
import { crc32c } from '../../checkpoint/crc32c.js';

const MASK_DELTA = 0xa282ead8;

export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return ((((crc >>> 15) | (crc << 17)) >>> 0) + MASK_DELTA) >>> 0;
}

export function frameRecord(data: Uint8Array): Uint8Array {
  const record = new Uint8Array(8 + 4 + data.length + 4);
  const view = new DataView(record.buffer);
  view.setBigUint64(0, BigInt(data.length), true);
  view.setUint32(8, maskedCrc32c(record.subarray(0, 8)), true);
  record.set(data, 12);
  view.setUint32(12 + data.length, maskedCrc32c(data), true);
  return record;
}
