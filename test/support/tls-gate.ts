import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './postgres-server.js';

/** How a connection to the gate began. */
export type Opening = 'ssl-request' | 'direct-tls' | 'cancel-in-clear' | 'in-clear';

/**
 * A TCP proxy in front of a TLS server that lets through only connections that begin
 * with TLS (an SSLRequest, or a TLS ClientHello for direct negotiation), and records how
 * each one began. Needed for cancel requests: PostgreSQL takes a CancelRequest before it
 * consults pg_hba.conf, so a `hostssl`-only server still honours one sent in clear, and
 * only a path that refuses clear text shows whether a cancel went over TLS. The TLS
 * itself is end to end (the gate never decrypts), so certificates are checked as usual.
 */
export class TlsGate {
  /** How each connection began, in arrival order. */
  readonly openings: Opening[] = [];
  private readonly sockets = new Set<Socket>();

  private constructor(private readonly server: Server, private readonly target: number, readonly port: number) {}

  static async start(targetPort: number): Promise<TlsGate> {
    const port = await freePort();
    let gate: TlsGate | undefined;
    const server = createServer((client) => gate?.accept(client));
    gate = new TlsGate(server, targetPort, port);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return gate;
  }

  /** How many connections began with each kind of opening. */
  count(kind: Opening): number {
    return this.openings.filter((opening) => opening === kind).length;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }

  private accept(client: Socket): void {
    this.track(client);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      // A TLS record starts with 0x16 (handshake); the protocol's packets with a length.
      if (head[0] !== 0x16 && head.length < 8) return;
      client.off('data', onData);
      client.pause();
      const kind = classify(head);
      this.openings.push(kind);
      if (kind !== 'ssl-request' && kind !== 'direct-tls') {
        client.destroy();
        return;
      }
      const upstream = connect(this.target, '127.0.0.1');
      this.track(upstream);
      upstream.once('connect', () => {
        upstream.write(head);
        client.pipe(upstream);
        upstream.pipe(client);
        client.resume();
      });
      upstream.once('close', () => client.destroy());
      client.once('close', () => upstream.destroy());
    };
    client.on('data', onData);
  }
}

function classify(head: Buffer): Opening {
  if (head[0] === 0x16) return 'direct-tls';
  const code = head.readInt32BE(4);
  if (code === 80877103) return 'ssl-request';
  if (code === 80877102) return 'cancel-in-clear';
  return 'in-clear';
}
