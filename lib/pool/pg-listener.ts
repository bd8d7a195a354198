import { escapeIdentifier, type Client, type Notification } from 'pg';
import { Backoff } from './backoff.js';
import { connectToTarget, toError } from './connection-opener.js';
import { inPoolContext } from './detached-context.js';
import { PoolClosedError, PoolTimeoutError, PoolUsageError } from './errors.js';
import type { ResolvedPoolOptions } from './pool-options.js';
import { sessionMismatch, type HostAddress, type TargetSessionAttrs } from './target-session.js';

/** Receives a notification's payload (empty string when NOTIFY sent none) and its channel. */
export type NotificationHandler = (payload: string, channel: string) => void;


/**
 * `LISTEN` on a dedicated connection, never one of the pool's: a listening session must
 * stay open and idle, which a pool would recycle, check or hand to someone else (the
 * seed's "exclusive connection"). Built from the pool's own settings; after the
 * connection is lost it reconnects with the pool's backoff and issues every `LISTEN`
 * again. Channel names are quoted as identifiers, so any string is a safe channel name.
 */
export class PgListener {
  private client: Client | undefined;
  private connecting: Promise<Client> | undefined;
  private readonly handlers = new Map<string, Set<NotificationHandler>>();
  /** The first `LISTEN` of each channel while it runs: a concurrent listen() waits for it. */
  private readonly subscribing = new Map<string, Promise<void>>();
  private retryTimer: NodeJS.Timeout | undefined;
  private readonly backoff: Backoff;
  private closed = false;

  constructor(private readonly options: ResolvedPoolOptions) {
    this.backoff = new Backoff(options.reconnectDelayMs, options.reconnectMaxDelayMs);
  }

  /** Starts listening on `channel`; resolves once `LISTEN` ran, with a function that stops this handler. */
  async listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    if (this.closed) throw new PoolClosedError(this.options.name, 'the listener is closed');
    if (typeof channel !== 'string' || channel.length === 0) {
      throw new PoolUsageError(this.options.name, 'listen: the channel must be a non-empty string');
    }
    if (!this.handlers.has(channel)) {
      let subscribing = this.subscribing.get(channel);
      if (!subscribing) {
        subscribing = this.subscribe(channel).finally(() => this.subscribing.delete(channel));
        this.subscribing.set(channel, subscribing);
      }
      // A second listen() on a channel being subscribed resolves only once LISTEN ran,
      // and fails with the first if it fails.
      await subscribing;
    }
    let set = this.handlers.get(channel);
    if (!set) {
      // Unlistened meanwhile by an unlisten() of every handler: subscribe again.
      return this.listen(channel, handler);
    }
    set.add(handler);
    return () => this.unlisten(channel, handler);
  }

  /**
   * `LISTEN` on a channel, registered only once it succeeded: a failed first listen()
   * leaves nothing behind, so the next one tries again. Registered before the statement
   * is sent, so a reconnect meanwhile listens to it again.
   */
  private async subscribe(channel: string): Promise<void> {
    const client = await this.connection();
    this.handlers.set(channel, new Set());
    try {
      await client.query(`LISTEN ${escapeIdentifier(channel)}`);
    } catch (error) {
      if (this.handlers.get(channel)?.size === 0) this.handlers.delete(channel);
      throw error;
    }
  }

  /** Stops one handler, or every handler of the channel; `UNLISTEN` once none is left. */
  async unlisten(channel: string, handler?: NotificationHandler): Promise<void> {
    const set = this.handlers.get(channel);
    if (!set) return;
    if (handler) set.delete(handler);
    else set.clear();
    if (set.size > 0) return;
    this.handlers.delete(channel);
    await this.client?.query(`UNLISTEN ${escapeIdentifier(channel)}`).catch(() => undefined);
  }

  /** Ends the listening session; no handler runs afterwards. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.handlers.clear();
    const client = this.client ?? (await this.connecting?.catch(() => undefined));
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private connection(): Promise<Client> {
    if (this.client) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /**
   * The listening session goes where the pool writes: through the same host list and
   * `target_session_attrs` as the pool's connections (a standby cannot LISTEN, so a
   * replica pool's listener looks for a primary).
   */
  private async connect(): Promise<Client> {
    const attrs = this.options.target.targetSessionAttrs;
    const wanted: TargetSessionAttrs = attrs === 'any' || attrs === 'read-write' || attrs === 'primary' ? attrs : 'primary';
    // A pool sharing a connection budget counts its LISTEN session in it too.
    const budget = this.options.budget;
    if (budget) {
      await budget.permit(this.options.acquireTimeoutMs).catch((error: Error) => {
        throw new PoolTimeoutError(this.options.name, `the LISTEN session could not be opened: ${error.message}`);
      });
    }
    let client: Client;
    try {
      // In the pool's context: notifications come from the socket, in the context it was made in.
      client = await inPoolContext(() => connectToTarget(this.options, wanted, (host, pass) => this.connectTo(host, pass)));
    } catch (error) {
      budget?.give();
      throw error;
    }
    if (budget) {
      // The permit is the session's until its connection ends, however it ends.
      let given = false;
      client.once('end', () => {
        if (given) return;
        given = true;
        budget.give();
      });
    }
    if (this.closed) {
      await client.end().catch(() => undefined);
      throw new PoolClosedError(this.options.name, 'the listener is closed');
    }
    this.client = client;
    return client;
  }

  private async connectTo(host: HostAddress, wanted: TargetSessionAttrs): Promise<Client> {
    const client = new this.options.Client(this.options.target.configFor(host));
    client.on('notification', (message: Notification) => this.dispatch(message));
    client.on('error', () => this.lost(client));
    client.on('end', () => this.lost(client));
    try {
      await client.connect();
      const mismatch = await sessionMismatch(client, wanted);
      if (mismatch) throw new Error(mismatch);
    } catch (error) {
      client.removeAllListeners();
      client.on('error', () => undefined);
      await client.end().catch(() => undefined);
      throw error;
    }
    return client;
  }

  private dispatch(message: Notification): void {
    for (const handler of this.handlers.get(message.channel) ?? []) {
      try {
        handler(message.payload ?? '', message.channel);
      } catch (error) {
        this.options.logger.error(`pool '${this.options.name}': a notification handler for '${message.channel}' threw: ` +
          `${toError(error).message}`);
      }
    }
  }

  /** The connection died: reconnect with backoff and LISTEN again on every channel. */
  private lost(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    client.end().catch(() => undefined);
    if (!this.closed && this.handlers.size > 0) this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.retryTimer || this.closed) return;
    const delay = this.backoff.next();
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.resubscribe();
    }, delay);
    this.retryTimer.unref();
  }

  private async resubscribe(): Promise<void> {
    try {
      const client = await this.connection();
      for (const channel of this.handlers.keys()) await client.query(`LISTEN ${escapeIdentifier(channel)}`);
      this.backoff.reset();
      this.options.logger.log(`pool '${this.options.name}': listener reconnected, listening on ${this.handlers.size} channel(s) again`);
    } catch (error) {
      this.options.logger.warn(`pool '${this.options.name}': listener cannot reconnect yet: ` +
        this.options.target.redact(toError(error).message));
      if (this.client) {
        const broken = this.client;
        this.client = undefined;
        await broken.end().catch(() => undefined);
      }
      this.scheduleReconnect();
    }
  }
}
