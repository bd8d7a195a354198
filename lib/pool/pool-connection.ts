import type { Client } from 'pg';
import type { HandleConstructor } from './checkout-handle.js';
import type { PooledClient } from './pooled-client.js';
import type { HostAddress } from './target-session.js';

/**
 * Where a connection is in its life. Exactly one of these at a time, and the pool's
 * bookkeeping (the idle deque, the checked-out count) follows it:
 * - `opening`: connecting and running `configure`; not yet the pool's;
 * - `idle`: in the idle deque, ready to hand out;
 * - `checking`: taken out of the deque for a check (on acquire, keepalive or `check()`);
 * - `in-use`: checked out to a client;
 * - `returning`: released, being rolled back / reset before reuse;
 * - `closed`: removed from the pool; never handed out again.
 */
export type PoolConnectionState = 'opening' | 'idle' | 'checking' | 'in-use' | 'returning' | 'closed';

/**
 * The moves a connection may make, and no others: a move outside this table is a bug
 * in the engine, and fails loudly rather than corrupting the pool's bookkeeping.
 */
const NEXT_STATES: Readonly<Record<PoolConnectionState, ReadonlySet<PoolConnectionState>>> = {
  opening: new Set(['idle', 'in-use', 'closed']), // adopted (idle or straight to a waiter), or dropped
  idle: new Set(['checking', 'in-use', 'closed']),
  checking: new Set(['idle', 'in-use', 'closed']),
  'in-use': new Set(['returning', 'closed']),
  returning: new Set(['idle', 'in-use', 'closed']),
  closed: new Set(),
};

/** Why a connection left the pool: the `remove` event's second argument. */
export type RemoveReason =
  | 'broken' // the connection died or failed a check
  | 'released-with-error' // the client called release(err) or release(true)
  | 'reset-failed' // ROLLBACK or the `reset` hook failed on return
  | 'lifetime' // older than maxLifetimeMs
  | 'idle' // idle above min longer than maxIdleMs
  | 'keepalive' // failed a keepalive check
  | 'resize' // the pool shrank below its size
  | 'max-uses' // checked out `maxUses` times
  | 'budget' // idle, given up for another pool waiting for the shared connection budget
  | 'closed'; // the pool closed

/**
 * One server connection as the pool sees it: the pg client and the facts the engine
 * needs about it. The client itself is what users get; this record never leaves the pool.
 */
export class PoolConnection {
  #state: PoolConnectionState = 'opening';
  /** When it last went idle: for `maxIdleMs`. */
  idleSince: number;
  /** The first error the client reported (socket closed, backend terminated). */
  lostWith: Error | undefined;
  /** Bumped at each checkout, so a `release` kept from an earlier checkout is recognised. */
  checkouts = 0;
  checkedOutAt = 0;
  /** Armed at checkout with `leakDetectionMs`: warns if the client is held too long. */
  leakTimer: NodeJS.Timeout | undefined;
  /**
   * Set by a SQLSTATE 25006 (read-only transaction) on a read-write pool: either the
   * user's own `BEGIN READ ONLY`, or a primary demoted by a failover. The pool asks the
   * server which on return, and drops the connection only in the second case.
   */
  suspectReadOnly = false;
  /**
   * A statement that may change the session (SET, RESET, DISCARD, set_config) ran on it
   * since its last return: `resetOnReturn: 'auto'` resets it before the next borrower.
   */
  sessionChanged = false;
  /** A CancelRequest for this connection's statement, until the server has taken it. */
  cancelling: Promise<unknown> | undefined;
  /** Makes this connection's checkout handles; made at its first checkout. */
  Handle: HandleConstructor | undefined;
  /** The current checkout's handle: what the pool's events and `cancelQuery` know it by. */
  handle: PooledClient | undefined;

  constructor(
    readonly client: Client,
    readonly createdAt: number,
    /** `createdAt + maxLifetimeMs` minus up to 5% jitter, so a pool's connections don't all expire together. */
    readonly expiresAt: number,
    /** The server it is connected to. */
    readonly address: HostAddress = { host: '', port: 0 },
  ) {
    this.idleSince = createdAt;
  }

  /** Where the connection is in its life (see `PoolConnectionState`). */
  get state(): PoolConnectionState {
    return this.#state;
  }

  /** Moves the connection on; throws on a move the state table does not allow. */
  moveTo(next: PoolConnectionState): void {
    if (!NEXT_STATES[this.#state].has(next)) {
      throw new Error(`nestjs-pg-pool internal error: a connection cannot go from '${this.#state}' to '${next}'`);
    }
    this.#state = next;
  }

  /** The server it is connected to, as `host:port`. */
  get host(): string {
    return `${this.address.host}:${this.address.port}`;
  }

  /** Dead, or ended by its user (`client.end()` before `release()`): never to be handed out. */
  get isLost(): boolean {
    return this.lostWith !== undefined || (this.client as unknown as { _ending?: boolean })._ending === true;
  }

  /**
   * Fit to hand out: alive, nothing on the wire, outside any transaction. What a check
   * must leave a connection.
   */
  get isReady(): boolean {
    return !this.isLost && !this.isBusy && this.client.getTransactionStatus() === 'I';
  }

  /**
   * Shuts the socket at once, without the Terminate handshake: for a peer that stopped
   * answering (a black-holed server), where `client.end()` would wait forever.
   */
  destroy(): void {
    const stream = (this.client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream;
    stream?.destroy();
  }

  /** Lets the process exit while this connection's socket is all that is left (allowExitOnIdle). */
  unref(): void {
    (this.client as unknown as { unref?(): void }).unref?.();
  }

  /** Undoes `unref()`: a checked-out connection keeps the process alive. */
  ref(): void {
    (this.client as unknown as { ref?(): void }).ref?.();
  }

  /**
   * True while a query is on the wire: pg clears its `readyForQuery` flag when it sends
   * one and sets it at the server's ReadyForQuery. A client released in that window (a
   * query not awaited, or a failed query whose promise pg settles before the
   * ReadyForQuery arrives) has a stale transaction status and is not free to reuse.
   */
  get isBusy(): boolean {
    return (this.client as unknown as { readyForQuery?: boolean }).readyForQuery === false && !this.isLost;
  }

  /** Resolves once the client has nothing in flight (pg's 'drain'), or has died. */
  whenIdle(): Promise<void> {
    if (!this.isBusy) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.client.off('drain', done);
        this.client.off('end', done);
        this.client.off('error', done);
        resolve();
      };
      this.client.on('drain', done);
      this.client.on('end', done);
      this.client.on('error', done);
    });
  }
}
