import { connect, createServer, type Server, type Socket } from 'node:net';
import { freePort } from './postgres-server.js';

/** What the proxy does with traffic. */
export type ProxyMode =
  | 'pass' // forward both ways
  | 'refuse' // stop listening: new connections get ECONNREFUSED
  | 'blackhole'; // accept and keep connections, forward nothing, answer nothing

/**
 * A TCP proxy between a pool and the test server, for fault injection: it can pass,
 * refuse, black-hole (a network partition: sockets stay up, nothing arrives), cut every
 * open connection, and add latency in each direction. Loopback only.
 */
export class FaultProxy {
  private mode: ProxyMode = 'pass';
  private latency = 0;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket | undefined }>();
  private server: Server;

  private constructor(private readonly targetHost: string, private readonly targetPort: number, readonly port: number) {
    this.server = this.createServer();
  }

  static async start(target: { host: string; port: number }): Promise<FaultProxy> {
    const proxy = new FaultProxy(target.host, target.port, await freePort());
    await proxy.listen();
    return proxy;
  }

  /** How many client connections are open through the proxy. */
  get openConnections(): number {
    return this.pairs.size;
  }

  async setMode(mode: ProxyMode): Promise<void> {
    if (mode === this.mode) return;
    const wasListening = this.mode !== 'refuse';
    this.mode = mode;
    if (mode === 'refuse' && wasListening) await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (mode !== 'refuse' && !wasListening) {
      this.server = this.createServer();
      await this.listen();
    }
  }

  /** Adds this delay to every chunk, in both directions (order is kept). */
  setLatency(ms: number): void {
    this.latency = ms;
  }

  /** Destroys every open connection at once, as a network failure would. */
  cutAll(): number {
    const count = this.pairs.size;
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream?.destroy();
    }
    this.pairs.clear();
    return count;
  }

  async close(): Promise<void> {
    this.cutAll();
    if (this.mode !== 'refuse') await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private createServer(): Server {
    return createServer((client) => this.accept(client));
  }

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, '127.0.0.1', () => resolve());
    });
  }

  private accept(client: Socket): void {
    const pair: { client: Socket; upstream: Socket | undefined } = { client, upstream: undefined };
    this.pairs.add(pair);
    const drop = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      pair.upstream?.destroy();
    };
    client.on('error', drop);
    client.on('close', drop);
    if (this.mode === 'blackhole') {
      // Accepted, never answered; read and dropped, so that the proxy sees its peer go.
      client.resume();
      return;
    }
    const upstream = connect(this.targetPort, this.targetHost);
    pair.upstream = upstream;
    upstream.on('error', drop);
    upstream.on('close', drop);
    this.forward(client, upstream);
    this.forward(upstream, client);
  }

  private forward(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.mode === 'blackhole') return; // a partition drops packets, it does not close
      if (this.latency === 0) {
        to.write(chunk);
        return;
      }
      setTimeout(() => { if (!to.destroyed) to.write(chunk); }, this.latency);
    });
  }
}
