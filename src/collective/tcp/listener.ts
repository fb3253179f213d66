/**
 * A listening socket that hands over only authenticated, expected peers. Every connection must
 * finish the handshake (auth.ts) within a deadline; one that fails, or that proves a rank the
 * owner does not expect, is closed and logged. Few handshakes run at once, so a flood of
 * strangers costs a bounded amount of memory.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { authenticateIncoming, type Purpose } from './auth.js';
import { AuthError } from './errors.js';

const MAX_PENDING_HANDSHAKES = 16;
const HANDSHAKE_TIMEOUT_MS = 10_000;

export interface ListenerOptions {
  host: string;
  port: number;
  token: string;
  /** This process's rank, proven to connectors. */
  rank: number;
  /** Why (rank, purpose) is refused, or undefined to take it; taking it reserves it. */
  admit(rank: number, purpose: Purpose): string | undefined;
  /** An admitted peer; the socket is paused, `leftover` holds its first bytes. */
  onPeer(rank: number, purpose: Purpose, socket: Socket, leftover: Buffer | undefined): void;
  log(line: string): void;
  handshakeTimeoutMs?: number;
}

export class Listener {
  private readonly pending = new Set<Socket>();
  private closed = false;

  private constructor(
    private readonly server: Server,
    private readonly options: ListenerOptions,
    readonly port: number,
  ) {
    server.on('connection', (socket) => this.accept(socket));
  }

  /** Resolves once listening; rejects with the system's reason (e.g. EADDRINUSE). */
  static open(options: ListenerOptions): Promise<Listener> {
    return new Promise((resolve, reject) => {
      const server = createServer({ pauseOnConnect: true });
      server.once('error', reject);
      server.listen({ host: options.host, port: options.port, exclusive: true }, () => {
        server.off('error', reject);
        // After listen, errors are per connection; keep the process alive whatever happens.
        server.on('error', (error) => options.log(`listener on ${options.host}:${options.port}: ${error.message}`));
        resolve(new Listener(server, options, (server.address() as { port: number }).port));
      });
    });
  }

  /** Stops listening and drops handshakes in progress; accepted peers are not affected. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    for (const socket of this.pending) socket.destroy();
    this.pending.clear();
  }

  private accept(socket: Socket): void {
    const from = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('error', () => undefined);
    if (this.closed) {
      socket.destroy();
      return;
    }
    if (this.pending.size >= MAX_PENDING_HANDSHAKES) {
      this.options.log(`refused connection from ${from}: too many handshakes in progress`);
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    this.pending.add(socket);
    const deadline = Date.now() + (this.options.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS);
    authenticateIncoming(socket, { token: this.options.token, rank: this.options.rank, deadline, admit: this.options.admit }).then(
      ({ rank, purpose, leftover }) => {
        this.pending.delete(socket);
        if (this.closed) {
          socket.destroy();
          return;
        }
        this.options.onPeer(rank, purpose, socket, leftover);
      },
      (error: Error) => {
        this.pending.delete(socket);
        socket.destroy();
        if (!this.closed || !(error instanceof AuthError)) this.options.log(`refused connection from ${from}: ${error.message}`);
      },
    );
  }
}
