/**
 * Reading a socket into one reused buffer (net's `onread` option) instead of a fresh Buffer per
 * read, for the ring connection a rank receives data on. Node's default allocates a buffer for
 * every read; on the VMs we measured, the pages of each fresh buffer fault on first touch, and
 * that cost more than the ring's transfer and sum together (BENCHMARKS.md, "Several processes":
 * the same ring 4-10x faster from 256 KiB to 16 MiB with reads into one buffer).
 *
 * `onread` exists only for sockets this process opens, so each rank dials the rank it receives
 * from (rendezvous.ts). A view handed to the reader is valid only during the call: whoever keeps
 * bytes for later must copy them (connection.ts does). Until a reader is set (during
 * authentication), each read is copied and emitted as an ordinary 'data' event.
 */
import { connect, type Socket } from 'node:net';

/** The kernel hands over at most this much per read; the ring's segments are 1 MiB. */
export const READ_BUFFER_BYTES = 1 << 20;

export class ReusedReads {
  private readonly buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  private socket: Socket | undefined;
  private reader: ((view: Buffer) => void) | undefined;

  /** Opens a connection whose reads go through this object. */
  connect(host: string, port: number): Socket {
    this.socket = connect({
      host,
      port,
      onread: {
        buffer: this.buffer,
        callback: (bytes: number): boolean => {
          this.deliver(bytes);
          return true;
        },
      },
    });
    return this.socket;
  }

  /** From now on every read goes to `reader` as a view of the reused buffer. */
  setReader(reader: (view: Buffer) => void): void {
    this.reader = reader;
  }

  private deliver(bytes: number): void {
    const view = this.buffer.subarray(0, bytes);
    if (this.reader) this.reader(view);
    else this.socket?.emit('data', Buffer.from(view));
  }
}
