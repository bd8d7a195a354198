import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import pg, { type Client, type QueryArrayConfig, type QueryArrayResult, type QueryConfig, type QueryResult, type QueryResultRow, type PoolClient, type Submittable } from 'pg';
import { sendCancelRequest } from './cancel-request.js';
import { withConnectionNow, type LentWork } from './connection-now.js';
import { inPoolContext } from './detached-context.js';
import { connectionOf, fence, handleConstructor, markReturned, returnedOf, type GiveBack } from './checkout-handle.js';
import { monotonicNow } from './clock.js';
import { END_TIMEOUT_MS, endWithin } from './connection-opener.js';
import {
  type ConnectError,
  PoolClosedError,
  PoolConfigError,
  PoolOpenError,
  PoolTimeoutError,
  PoolUnavailableError,
  PoolUsageError,
} from './errors.js';
import { acquiringStack, LeakDetector } from './leak-detector.js';
import { Lending } from './lending.js';
import { DEMAND_RETRY_MS, Maintainer, type MaintainedPool, type MaintenanceRun } from './maintainer.js';
import { PgListener, type NotificationHandler } from './pg-listener.js';
import type { BudgetMember, ConnectionBudget } from './connection-budget.js';
import { PoolConnection, type RemoveReason } from './pool-connection.js';
import { checkSize, defaultCheckFor, resolvePoolOptions, workBoundMs, type ClientConstructor, type ClientHook, type ResolvedPoolOptions } from './pool-options.js';
import type { PgPoolConfig } from './pg-pool-config.js';
import { callBack, isSubmittable, type ConnectCallback, type QueryCallback } from './pg-callbacks.js';
import { zeroCounters, type PoolCounters, type PoolStats } from './pool-stats.js';
import type { PooledClient } from './pooled-client.js';
import { beginStatement, settingsStatement, type TransactionOptions } from './transaction-options.js';
import { ReturnInspector } from './return-inspector.js';
import { runTransaction } from './transaction-runner.js';
import { isShareable, Multiplexer } from './multiplexer.js';
import type { TlsSetting } from './tls.js';
import { LATE, raceDeadline, withTimeout } from './with-timeout.js';

/** `new` until opened; `closing` while `close()` waits for checked-out clients. */
export type PoolState = 'new' | 'open' | 'closing' | 'closed';

/** How `open()` behaves. */
export interface OpenOptions {
  /** Wait until `min` connections are open (at least one), or throw `PoolOpenError`. Default false. */
  wait?: boolean;
  /** How long `wait` may take. Default: `acquireTimeoutMs`. */
  timeoutMs?: number;
}

/** Per-request settings of `acquire()` and the helpers built on it. */
export interface AcquireOptions {
  /** Overrides `acquireTimeoutMs` for this request. */
  timeoutMs?: number;
}

/** What `JSON.stringify(pool)` shows of a pool. */
export interface PoolSummary {
  /** The pool's database id. */
  name: string;
  /** Where the pool is in its life. */
  state: PoolState;
  /** Where it connects, as `host:port/database` (no credentials). */
  target: string;
  /** Its stats now. */
  stats: PoolStats;
}

/** How `close()` behaves. */
export interface CloseOptions {
  /** How long to wait for checked-out clients before closing them anyway. Default 5000. */
  timeoutMs?: number;
}

/** The pool's events, with their arguments. */
export interface PgPoolEvents {
  /** A new connection is open and configured. */
  connect: [client: Client];
  /** A client was handed out. */
  acquire: [client: PooledClient];
  /** A client was released; the error is the one given to `release(err)`, if any. */
  release: [error: Error | undefined, client: PooledClient];
  /** A connection left the pool, and why. */
  remove: [client: Client, reason: RemoveReason];
  /** An idle connection failed (server restart, terminated backend). Never crashes the process. */
  error: [error: Error, client: Client];
  /**
   * A connection attempt failed; `retryInMs` is the backoff delay before the next one
   * (undefined when a retry was already scheduled by a parallel attempt).
   */
  connectError: [error: Error, retryInMs: number | undefined];
}

const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;
const { DatabaseError, Query } = pg;
type Query = InstanceType<typeof Query>;

/**
 * What `pool.query()` does with its connection after an error: a SQL error (the server's
 * answer) says nothing against it, so it is reused; anything else (`query_timeout`'s
 * "Query read timeout", a lost connection) leaves the statement's fate unknown, so it is
 * closed, as pg.Pool does, rather than waited for.
 */
function closesConnection(error: unknown): Error | undefined {
  return error && !(error instanceof DatabaseError) ? (error as Error) : undefined;
}
const NO_OP = (): void => undefined;

/** What the client calls on a submittable besides `submit` (pg's Query, Cursor and QueryStream have them). */
interface SubmittableHooks {
  handleReadyForQuery?(...args: unknown[]): void;
  handleError?(error: Error, ...args: unknown[]): void;
}
const RESOLVED: Promise<void> = Promise.resolve();

/**
 * Closes the cursor or stream (pg-cursor, pg-query-stream) a client is serving, if any.
 * One whose reader went away is suspended between batches: nothing runs on the server for
 * a cancel to stop, and pg serves no other statement on the connection, the ROLLBACK of
 * abandoned work included, until it is closed.
 */
function closeOpenCursor(client: Client): void {
  const active = (client as unknown as { _getActiveQuery?(): unknown })._getActiveQuery?.();
  if (active instanceof Readable) {
    // pg-query-stream: destroying it closes its cursor.
    active.destroy();
    return;
  }
  const cursor = active as { read?: unknown; close?: (callback: () => void) => unknown } | null | undefined;
  if (typeof cursor?.read === 'function' && typeof cursor.close === 'function') cursor.close(NO_OP);
}


/**
 * A PostgreSQL connection pool after the psycopg 3 design: requests wait in a FIFO
 * queue instead of failing, connections are checked on return, a background
 * maintainer keeps the pool at size, and stats say what happened.
 *
 * It is a drop-in for `pg.Pool` where `query`, `connect`, `end` and `on('error')`
 * are what is used (Kysely, drizzle).
 */
export class PgPool extends EventEmitter<PgPoolEvents> {
  // `#private`, not just `private`: the settings lead to the connection target, and
  // nothing of it may show in util.inspect/JSON.stringify of the pool.
  readonly #settings: ResolvedPoolOptions;
  private poolState: PoolState = 'new';
  /** Idle connections and waiting requests: the lending core. */
  private readonly lending: Lending;
  /** What a released connection goes through before reuse. */
  private readonly inspector: ReturnInspector;
  private readonly leaks: LeakDetector;
  /** Every open connection, whatever its state: for close(), stats and resize. */
  private readonly connections = new Set<PoolConnection>();
  private readonly maintainer: Maintainer;
  /** Mutated in place (resetStats() zeroes it), so the pool's parts can share it. */
  private readonly counters: PoolCounters = zeroCounters();
  private openWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];
  private emptied: (() => void) | undefined;
  /** The server of the last connection opened, to count failovers. */
  private lastHost: string | undefined;
  /** The dedicated LISTEN session, created by the first listen(). */
  private listener: PgListener | undefined;
  /** `client.end()` calls still in flight: close() resolves only once every socket is shut. */
  private readonly endings = new Set<Promise<void>>();
  private closing: Promise<void> | undefined;
  /** With the `multiplex` option: shares connections among `pool.query()` statements. */
  private readonly multiplexer: Multiplexer | undefined;
  /** When a connection was last asked for or handed out (monotonic ms): the budget and tenant pools evict the least recently used. */
  private lastUse = monotonicNow();
  /** What this pool is to a shared connection budget (the `budget` option). */
  private readonly budgetMember: BudgetMember;

  /**
   * Takes our options or `pg.Pool`'s config (connection settings at the top level,
   * `idleTimeoutMillis`, `connectionTimeoutMillis`, ...), and pg.Pool's second argument,
   * the client class. With no connection settings, pg's defaults apply: the `PG*`
   * environment variables.
   */
  constructor(config?: PgPoolConfig | null, Client?: ClientConstructor) {
    super();
    this.#settings = resolvePoolOptions(config, Client);
    this.lending = new Lending(this.#settings, this.counters, {
      checkOut: (connection, origin, now) => this.checkOut(connection, origin, now, true),
      isDown: () => this.isDown,
      unavailableError: (waitedMs) => this.unavailableError(waitedMs),
      timeoutError: (timeoutMs, othersWaiting) => this.timeoutError(timeoutMs, othersWaiting),
      demand: () => this.maintainer.fill(),
    });
    this.maintainer = new Maintainer(this.maintainedView(), this.lending);
    this.budgetMember = this.budgetView();
    this.inspector = new ReturnInspector(this.#settings, this.counters, this.checkTimeoutMs);
    this.leaks = new LeakDetector(this.#settings, this.counters);
    const multiplex = this.#settings.multiplex;
    if (multiplex) {
      const settings = this.#settings;
      this.multiplexer = new Multiplexer({
        name: settings.name,
        get acquireTimeoutMs() { return settings.acquireTimeoutMs; },
        get maxWaiting() { return settings.maxWaiting; },
        get max() { return settings.max; },
        counters: this.counters,
        acquire: () => this.acquireShared(),
        waitingCount: () => this.lending.waitingCount,
        idleCount: () => this.lending.idleCount,
        budgetWanted: () => this.#settings.budget?.hasWaiters ?? false,
        runAlone: (config) => this.runQuery(config, undefined) as Promise<QueryResult>,
      }, multiplex);
    }
  }

  /** Listens to one of the pool's events (see `PgPoolEvents`). */
  override on<K extends keyof PgPoolEvents>(event: K, listener: (...args: PgPoolEvents[K]) => void): this;
  /** pg.Pool's typing of the same, so that code typed for `pg.Pool` takes a `PgPool`. */
  override on<K extends 'error' | 'release' | 'connect' | 'acquire' | 'remove'>(
    event: K,
    listener: K extends 'error' | 'release' ? (error: Error, client: PoolClient) => void : (client: PoolClient) => void,
  ): this;
  override on(event: keyof PgPoolEvents, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  /** The pool's database id. */
  get name(): string {
    return this.#settings.name;
  }

  /** Where the pool is in its life: new, open, closing or closed. */
  get state(): PoolState {
    return this.poolState;
  }

  /** The options in force, after defaults. */
  get options(): Readonly<ResolvedPoolOptions> {
    // The password is not in there: the target keeps it in a private field.
    return { ...this.#settings };
  }

  /** Where the pool connects, as `host:port/database` (no credentials). */
  get target(): string {
    return this.#settings.target.describe();
  }

  /** Connections open now (whatever their state), not counting those being opened. */
  get openCount(): number {
    return this.connections.size;
  }

  /** pg.Pool-compatible: connections open now, and those being opened. */
  get totalCount(): number {
    return this.connections.size + this.maintainer.pending;
  }

  /** pg.Pool-compatible: idle connections now. */
  get idleCount(): number {
    return this.lending.idleCount;
  }

  /**
   * pg.Pool-compatible: requests waiting now beyond those a connection is being opened
   * for (pg.Pool does not count a request it is opening a connection for). `getStats()`'s
   * `requestsWaiting` counts every waiting request.
   */
  get waitingCount(): number {
    return Math.max(0, this.lending.waitingCount - this.maintainer.pending);
  }

  /** pg.Pool-compatible: connections past their lifetime, still checked out, to be closed on return. */
  get expiredCount(): number {
    const now = monotonicNow();
    let count = 0;
    for (const connection of this.connections) {
      if (connection.expiresAt <= now) count++;
    }
    return count;
  }

  /**
   * Whether the pool can serve now: open, and either holding connections or not failing
   * to open them. False while its server is down: what replica routing falls back on.
   */
  get available(): boolean {
    return this.poolState === 'open' && (this.connections.size > 0 || this.maintainer.failure === undefined);
  }

  /**
   * Clients checked out now and not yet released, not counting the connections the
   * multiplexer shares (`multiplexConnections` in the stats). O(size): for tests and diagnostics.
   */
  get checkedOutCount(): number {
    let count = 0;
    for (const connection of this.connections) {
      if (connection.state === 'in-use') count++;
    }
    return count - (this.multiplexer?.connections ?? 0);
  }

  /** When a connection was last asked of the pool or handed out by it (monotonic ms, `performance.now()`'s clock). */
  get lastUsedAt(): number {
    return this.lastUse;
  }

  /** pg.Pool-compatible: true once `close()`/`end()` was called. */
  get ending(): boolean {
    return this.poolState === 'closing' || this.poolState === 'closed';
  }

  /** pg.Pool-compatible: true once the pool is closed. */
  get ended(): boolean {
    return this.poolState === 'closed';
  }

  /**
   * Starts the pool: the maintainer opens `min` connections in the background.
   * With `wait: true`, resolves once they are open, or fails fast with a `PoolOpenError`
   * carrying the server's reason (bad password, unknown database, refused) and leaves
   * the pool closed, so an app does not start against a wrong URL.
   */
  async open(options: OpenOptions = {}): Promise<void> {
    if (this.poolState === 'closing' || this.poolState === 'closed') {
      throw new PoolClosedError(this.name, 'cannot open a pool that was closed; create a new PgPool');
    }
    if (this.poolState === 'new') this.start();
    if (!options.wait) return;
    const timeoutMs = options.timeoutMs ?? this.#settings.acquireTimeoutMs;
    try {
      await this.waitUntilReady(timeoutMs);
    } catch (error) {
      await this.close({ timeoutMs: 0 });
      throw error;
    }
  }

  /** new → open: joins the shared budget (if the pools' mins still fit) and starts the maintainer. */
  private start(): void {
    const refusal = this.#settings.budget?.join(this.budgetMember);
    if (refusal) throw new PoolConfigError(this.name, refusal);
    this.poolState = 'open';
    this.maintainer.start();
  }

  private waitUntilReady(timeoutMs: number): Promise<void> {
    const target = Math.max(this.#settings.min, 1);
    if (this.connections.size >= target) return Promise.resolve();
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.openWaiters = this.openWaiters.filter((w) => w !== entry);
        reject(new PoolOpenError(this.name, `could not open ${target} connection(s) to ${this.target} within ${timeoutMs} ms: ` +
          (this.maintainer.failure?.reason ?? (this.maintainer.pending > 0
            // No attempt has failed: they are still waiting for the server to answer.
            ? `connect timeout after ${timeoutMs} ms (the server did not complete the connection: TCP, TLS or authentication)`
            : 'no connection attempt completed'))));
      }, timeoutMs);
      const entry = {
        resolve: () => { clearTimeout(timer); resolve(); },
        reject: (error: Error) => { clearTimeout(timer); reject(error); },
      };
      this.openWaiters.push(entry);
    });
    // With min = 0 the maintainer opens one connection for an open() that waits (see
    // `floor`): `wait` would prove nothing otherwise.
    this.maintainer.fill();
    return ready;
  }

  /**
   * Hands out a connection: an idle one at once if no one is waiting, else waits in
   * FIFO order until one is returned or opened, up to `timeoutMs`.
   * A pool that was never opened opens itself first, as `pg.Pool` does.
   */
  acquire(options: AcquireOptions = {}): Promise<PooledClient> {
    const timeoutMs = options.timeoutMs ?? this.#settings.acquireTimeoutMs;
    if (typeof timeoutMs !== 'number' || !(timeoutMs >= 0)) {
      return Promise.reject(new PoolUsageError(this.name, `acquire: \`timeoutMs\` must be a number >= 0, not ${String(timeoutMs)}`));
    }
    if (this.poolState === 'new') {
      try {
        this.start();
      } catch (error) {
        return Promise.reject(error);
      }
    }
    if (this.poolState !== 'open') return this.refuseClosed();
    this.counters.requestsNum++;
    // With leak detection on, where the client was asked for: the caller's stack, now.
    const origin = this.leaks.enabled ? acquiringStack() : undefined;
    if (this.lending.waitingCount === 0 && this.lending.idleCount > 0) {
      if (this.#settings.checkOnAcquire) return this.acquireChecked(timeoutMs, origin);
      return Promise.resolve(this.checkOut(this.lending.takeIdle(), origin));
    }
    // A request that waits counts as use from now (checkOut stamps the others): one clock
    // reading for that and the wait.
    const now = monotonicNow();
    this.lastUse = now;
    return this.waitForConnection(timeoutMs, origin, false, now);
  }

  /** acquire() with `checkOnAcquire`: idle connections that fail the check are dropped, the next is tried. */
  private async acquireChecked(timeoutMs: number, origin: string | undefined): Promise<PooledClient> {
    // The request waits for the checks only until its own deadline: a black-holed server
    // must not hold the caller past it. A check keeps its own bound, though: one that
    // outlives the request's patience says nothing against the connection, which goes
    // back to the pool if it passes.
    const deadline = monotonicNow() + timeoutMs;
    while (this.lending.idleCount > 0) {
      const connection = this.lending.takeIdle();
      const check = this.passesCheck(connection);
      // At least 1 ms: a timeout of 0 means "do not wait for a connection", not "skip the idle one".
      const passed = await raceDeadline(check, Math.max(1, deadline - monotonicNow()));
      if (passed === LATE) {
        void check.then((ok) => {
          if (ok) this.adopt(connection);
        });
        // close() came before the deadline: the request ends with the pool, as waiters do.
        if (this.poolState !== 'open') return this.refuseClosed();
        // Its time is up: it fails now rather than queue, with nothing left to wait.
        this.counters.requestsTimeouts++;
        this.counters.requestsErrors++;
        throw this.isDown ? this.unavailableError(timeoutMs) : this.timeoutError(timeoutMs, this.lending.waitingCount);
      }
      // close() ran during the check: the connection is closed with the pool.
      if (this.poolState !== 'open') break;
      if (passed) return this.checkOut(connection, origin);
      // Others came while this request checked: they get the next connections in turn,
      // and this request waits ahead of them.
      if (this.lending.waitingCount > 0) break;
    }
    return this.waitForConnection(Math.max(0, deadline - monotonicNow()), origin, true);
  }

  /** A shared connection for the multiplexer: not a request of its own (the statements it serves are). */
  private acquireShared(): Promise<PooledClient> {
    const acquired = this.acquire();
    this.counters.requestsNum--;
    // The pool's own holding, not a user's: never reported as a leak.
    return acquired.then((handle) => {
      const connection = connectionOf(handle);
      if (connection) this.leaks.clear(connection);
      return handle;
    });
  }

  /**
   * `pg.Pool`-compatible alias of `acquire()`. With a callback, as pg.Pool:
   * `callback(err, client, done)`, where `done(err?)` releases the client.
   */
  connect(): Promise<PooledClient>;
  connect(callback: ConnectCallback): void;
  connect(callback?: ConnectCallback): Promise<PooledClient> | void {
    const acquired = this.acquire();
    if (callback === undefined) return acquired;
    if (typeof callback !== 'function') {
      void acquired.then((client) => client.release());
      throw new PoolUsageError(this.name, `connect: the argument must be a callback (err, client, done), not ${typeof callback}`);
    }
    acquired.then(
      (client) => callBack(() => callback(undefined, client, (destroy?: Error | boolean) => client.release(destroy))),
      (error: Error) => callBack(() => callback(error, undefined, NO_OP)),
    );
  }

  /** `acquire()` for `await using client = await pool.connection()`. */
  connection(options?: AcquireOptions): Promise<PooledClient> {
    return this.acquire(options);
  }

  /** A request to a pool that is closing or closed: counted as failed, refused. */
  private refuseClosed(): Promise<never> {
    this.counters.requestsErrors++;
    return Promise.reject(new PoolClosedError(this.name, `the pool is ${this.poolState} and hands out no connections ` +
      '(Cannot use a pool after calling end on the pool)'));
  }

  private waitForConnection(timeoutMs: number, origin?: string, first = false, now?: number): Promise<PooledClient> {
    if (this.poolState !== 'open') return this.refuseClosed();
    return this.lending.wait(timeoutMs, origin, first, now);
  }

  private timeoutError(timeoutMs: number, othersWaiting: number): PoolTimeoutError {
    const failure = this.maintainer.failure;
    // pg.Pool's wording first: callers match on it.
    return new PoolTimeoutError(this.name,
      `timeout exceeded when trying to connect: no connection available within ${timeoutMs} ms (acquire timeout; ` +
      `${this.connections.size}/${this.#settings.max} in use or opening, ` +
      `${othersWaiting} others waiting)` + this.budgetNote() + (failure ? `; last connection error: ${failure.reason}` : ''));
  }

  /** For a timeout: whether the shared budget was what the request waited for. */
  private budgetNote(): string {
    const budget = this.#settings.budget;
    if (!budget || this.connections.size + this.maintainer.pending >= this.#settings.max) return '';
    const { max, inUse, waiting } = budget.stats();
    return inUse >= max || waiting > 0
      ? `; the shared connection budget was spent (${inUse}/${max} connections of all its pools, ${waiting} pool(s) waiting for it)`
      : '';
  }

  /** The pool holds no connection and its latest attempt to open one failed: the server is down. */
  private get isDown(): boolean {
    return this.connections.size === 0 && this.maintainer.failure !== undefined;
  }

  private unavailableError(waitedMs: number): PoolUnavailableError {
    const failure = this.maintainer.failure;
    return new PoolUnavailableError(this.name,
      `the database is unavailable: no connection could be opened to ${this.target} (waited ${waitedMs} ms)` +
      (failure ? `: ${failure.reason}` : ''), { cause: failure, retryAfterMs: DEMAND_RETRY_MS, code: failure?.code });
  }

  /** Runs the acquire-time check on a connection taken from the deque; false if it was dropped. */
  private async passesCheck(connection: PoolConnection, timeoutMs = this.checkTimeoutMs): Promise<boolean> {
    connection.moveTo('checking');
    try {
      if (connection.isLost) throw connection.lostWith;
      await this.runCheck(connection, this.#settings.checkOnAcquire ?? defaultCheckFor(this.#settings.target.targetSessionAttrs), timeoutMs);
      if (!connection.isReady) throw connection.lostWith;
      return true;
    } catch {
      this.discardLost(connection, 'broken');
      return false;
    }
  }

  /** See `workBoundMs`. */
  private get checkTimeoutMs(): number {
    return workBoundMs(this.#settings);
  }

  /**
   * Runs a check (checkOnAcquire, keepalive) on a connection the pool holds, within
   * `connectTimeoutMs` at most: a server that stopped answering fails the check instead
   * of hanging it.
   */
  private async runCheck(connection: PoolConnection, check: ClientHook, timeoutMs: number): Promise<void> {
    const limit = Math.min(timeoutMs, this.checkTimeoutMs);
    await withTimeout(Promise.resolve(check(connection.client)), limit, `check timed out after ${limit} ms`);
  }

  private checkOut(connection: PoolConnection, origin?: string, now = monotonicNow(), waited = false): PooledClient {
    connection.moveTo('in-use');
    if (this.#settings.allowExitOnIdle) connection.ref();
    connection.checkedOutAt = this.lastUse = now;
    const checkout = ++connection.checkouts;
    connection.Handle ??= handleConstructor(connection.client, connection, this.giveBack, this.#settings.resetOnReturn === 'auto');
    const handle = new connection.Handle();
    connection.handle = handle;
    if (origin !== undefined) this.leaks.watch(connection, checkout, origin);
    // A waiter is served where a connection came back: in the code of whoever released it.
    // Its 'acquire' listeners run in the pool's own context instead, not in another request's.
    if (waited && this.listenerCount('acquire') > 0) inPoolContext(() => this.emit('acquire', handle));
    else this.emit('acquire', handle);
    return handle;
  }

  /**
   * A handle's `release()` (strict: a second one throws) and `[Symbol.asyncDispose]()`
   * (a second one resolves with the first's outcome). The handle is fenced off for good,
   * whoever gets the connection next.
   */
  private readonly giveBack: GiveBack = (handle, destroy, strict) => {
    const returned = returnedOf(handle);
    if (returned) {
      if (!strict) return returned;
      throw new PoolUsageError(this.name, 'Release called on client which has already been released to the pool; ' +
        'release each client exactly once (withConnection() does it for you)');
    }
    fence(handle, this.usedAfterRelease);
    const connection = connectionOf(handle) as PoolConnection;
    const released = this.release(connection, destroy, handle);
    markReturned(handle, released);
    return released;
  };

  /**
   * The `ReturnConnection` task: a released connection is inspected before anyone else
   * gets it. Broken: closed (the maintainer replaces it). Left inside a transaction:
   * `ROLLBACK`, counted in `returnsBad`. Then the `reset` hook. Resolves once it is back.
   */
  private release(connection: PoolConnection, destroy: Error | boolean | undefined, handle: PooledClient): Promise<void> {
    this.leaks.clear(connection);
    connection.handle = undefined;
    // Closed by close() after its timeout while still checked out: nothing to return.
    if (connection.state === 'closed') return RESOLVED;
    const wasCheckedOut = connection.state === 'in-use';
    // One clock reading for the whole hand-over (usage, lifetime, wait, next checkout).
    const now = monotonicNow();
    connection.moveTo('returning');
    if (wasCheckedOut) {
      this.counters.usageMs += now - connection.checkedOutAt;
      this.emit('release', destroy instanceof Error ? destroy : undefined, handle);
    }
    if (destroy) {
      // Released with the error that killed it: a lost connection, counted as one.
      if (connection.isLost) this.discardLost(connection, 'broken');
      else this.discard(connection, 'released-with-error');
      return RESOLVED;
    }
    // The common case, with nothing to wait for: back at once, no promise chain.
    if (this.inspector.isClean(connection)) {
      this.reuse(connection, now);
      return RESOLVED;
    }
    return this.inspect(connection);
  }

  /** The slow half of ReturnConnection: the inspector decides, the pool acts. */
  private async inspect(connection: PoolConnection): Promise<void> {
    const verdict = await this.inspector.inspect(connection);
    if (verdict.reuse) return this.reuse(connection);
    if (verdict.lost) return this.discardLost(connection, verdict.reason);
    this.discard(connection, verdict.reason);
  }

  /** A returned connection that passed inspection: replaced if past its lifetime, else handed on. */
  private reuse(connection: PoolConnection, now = monotonicNow()): void {
    if (connection.expiresAt <= now) return this.discard(connection, 'lifetime');
    if (connection.checkouts >= this.#settings.maxUses) return this.discard(connection, 'max-uses');
    this.adopt(connection, now);
  }

  /** A ready connection goes to the oldest waiter, else to the idle deque. */
  private adopt(connection: PoolConnection, now = monotonicNow()): void {
    if (this.poolState !== 'open') return this.discard(connection, 'closed');
    if (connection.isLost) return this.discardLost(connection, 'broken');
    if (this.connections.size > this.#settings.max) return this.discard(connection, 'resize');
    // Another pool waits for the shared budget and none of this one's requests do: the
    // connection goes to where the demand is rather than idle here.
    if (this.#settings.budget?.hasWaiters && this.connections.size > this.#settings.min && this.yieldsToBudget(this.#settings.budget)) {
      return this.discard(connection, 'budget');
    }
    this.lending.offer(connection, now);
    // Idle now (no waiter took it): with allowExitOnIdle its socket lets the process exit.
    if (this.#settings.allowExitOnIdle && connection.state === 'idle') connection.unref();
  }

  /**
   * Another pool waits for the shared budget: a returned connection goes to it if none of
   * this pool's requests waits, or if that pool has waited longer than this pool's oldest
   * request (first come first served across the pools: a busy pool cannot starve another).
   */
  private yieldsToBudget(budget: ConnectionBudget): boolean {
    const mine = this.lending.oldestWaitingSince();
    if (mine === undefined) return true;
    const theirs = budget.waitingSince();
    return theirs !== undefined && theirs < mine;
  }

  /** Closes a connection and forgets it; the maintainer replaces it if the pool needs one. */
  private discard(connection: PoolConnection, reason: RemoveReason): void {
    if (connection.state === 'closed') return;
    if (connection.state === 'idle') this.lending.remove(connection);
    connection.moveTo('closed');
    this.connections.delete(connection);
    const budget = this.#settings.budget;
    let cancelled: Promise<unknown> = RESOLVED;
    // With a statement in flight the Terminate handshake waits for the statement: shut
    // the socket at once instead (a check cut short by close(), a black-holed server).
    if (connection.isBusy) {
      // The server runs the statement on after the socket is gone: under a budget, cancel
      // it, so the session ends before its permit lets another pool open one.
      if (budget) cancelled = this.sendCancel(connection).catch(() => false);
      connection.destroy();
    }
    const ending = endWithin(connection, END_TIMEOUT_MS);
    this.endings.add(ending);
    void ending.finally(() => this.endings.delete(ending));
    // The permit is handed on once the session has ended, never while the server still holds it.
    if (budget) void Promise.all([ending, cancelled]).finally(() => budget.give());
    this.emit('remove', connection.client, reason);
    this.notifyIfEmpty();
    this.maintainer.fill();
  }

  /** close() waits for this: every connection closed and none being opened. */
  private notifyIfEmpty(): void {
    if (this.emptied && this.connections.size === 0 && this.maintainer.pending === 0) this.emptied();
  }

  private discardLost(connection: PoolConnection, reason: RemoveReason): void {
    if (connection.state === 'closed') return;
    this.counters.connectionsLost++;
    this.discard(connection, reason);
  }

  /** An error on a connection. Idle: removed now. Checked out: removed when released. */
  private onLost(connection: PoolConnection, error: Error): void {
    if (connection.state !== 'idle') return;
    const message = this.#settings.target.redact(error.message);
    this.#settings.logger.warn(`pool '${this.name}': an idle connection was lost (${message}); replacing it`);
    this.discardLost(connection, 'broken');
    // pg.Pool re-emits this and crashes the process when nobody listens; we only
    // re-emit to listeners, since the pool has already handled it.
    if (this.listenerCount('error') > 0) this.emit('error', error, connection.client);
  }

  /** What a handle's `query` does once its user released it (see checkout-handle.ts). */
  private readonly usedAfterRelease = (): never => {
    throw new PoolUsageError(this.name, 'client.query() called after release(): the client is back in the pool ' +
      'and may belong to another request now; keep using it only until you release it');
  };

  /** What `client.query` does once the work holding the client was abandoned. */
  private readonly usedAfterAbandon = (): never => {
    throw new PoolUsageError(this.name, 'client.query() called after the work holding this client was abandoned ' +
      '(its HTTP client disconnected or its subscriber went away); its transaction is rolled back');
  };

  /**
   * The work holding this checked-out client was abandoned (an HTTP client gone, an
   * unsubscribed Observable): cancels the statement in flight and fences the client
   * off from that work, whose further queries throw `PoolUsageError`. Without the
   * fence, a handler that goes on after its request was given up could run a statement
   * after the pool's ROLLBACK, in autocommit. The client stays checked out until
   * released; `withTransaction` still rolls back.
   */
  abandon(client: PooledClient): void {
    const connection = connectionOf(client);
    if (!connection || connection.handle !== client || connection.state !== 'in-use') return;
    void this.cancelQuery(client);
    closeOpenCursor(connection.client);
    fence(client, this.usedAfterAbandon);
  }

  /**
   * Runs `fn` with a connection and releases it however `fn` ends; resolves with `fn`'s
   * value once the connection is back (or rejects with its error, or the release's).
   * Written with `then` rather than async/await: on the path of every `@UseConnection`
   * request, and each await is a promise and a turn of the microtask queue.
   */
  withConnection<T>(fn: (client: PooledClient) => PromiseLike<T> | T, options?: AcquireOptions): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.acquire(options).then((client) => this.runAndGiveBack(client, fn, resolve, reject), reject);
    });
  }

  /**
   * `withConnection` for the Nest binding, which has a promise of its own already and
   * needs none per step: `work` ends by calling `returned` with its value or `failed`
   * with its error (the first call counts; a throw from `work` counts as `failed`). Then,
   * once the connection is back, `onDone` hears the value, `onError` the error (or the
   * release's). With an idle connection there for the taking (no one waiting, no check on
   * acquire), `work` runs on it at once, before this returns, without the promise and the
   * turn that `acquire()` costs; a request that waits runs `work` when served, in its own
   * async context.
   */
  [withConnectionNow]<T>(work: (client: PooledClient, returned: (value: T) => void, failed: (error: unknown) => void) => void, options: AcquireOptions | undefined,
    onDone: (value: T) => void, onError: (error: unknown) => void): void {
    const client = this.takeIdleNow(options);
    if (client !== undefined) return this.lend(client, work, onDone, onError);
    this.acquire(options).then((acquired) => this.lend(acquired, work, onDone, onError), onError);
  }

  /** Runs `work` on a checked-out client; once it reports its end, gives the client back, then tells `onDone` or `onError`. */
  private lend<T>(client: PooledClient, work: LentWork<T>, onDone: (value: T) => void, onError: (error: unknown) => void): void {
    let ended = false;
    const end = (ok: boolean, outcome: unknown): void => {
      if (ended) return;
      ended = true;
      const tell = (): void => (ok ? onDone(outcome as T) : onError(outcome));
      // A release with nothing to inspect is back at once (RESOLVED): no promise to wait for.
      const back = client[Symbol.asyncDispose]();
      if (back === RESOLVED) tell();
      else back.then(tell, onError);
    };
    try {
      work(client, (value) => end(true, value), (error) => end(false, error));
    } catch (error) {
      end(false, error);
    }
  }

  /**
   * What `acquire()` hands out without waiting: an idle connection, checked out, when no
   * one waits and none needs a check; else undefined, and `acquire()` decides (it also
   * refuses bad options and a pool that is not open).
   */
  private takeIdleNow(options: AcquireOptions | undefined): PooledClient | undefined {
    if (this.poolState !== 'open' || this.#settings.checkOnAcquire || this.lending.waitingCount > 0 || this.lending.idleCount === 0) return undefined;
    const timeoutMs = options?.timeoutMs;
    if (timeoutMs !== undefined && !(typeof timeoutMs === 'number' && timeoutMs >= 0)) return undefined;
    this.counters.requestsNum++;
    return this.checkOut(this.lending.takeIdle(), this.leaks.enabled ? acquiringStack() : undefined);
  }

  /**
   * Runs `fn` on a checked-out client and gives the client back however `fn` ends; then
   * `onDone` with its value, or `onError` with its error (or the release's).
   */
  private runAndGiveBack<T>(client: PooledClient, fn: (client: PooledClient) => PromiseLike<T> | T,
    onDone: (value: T) => void, onError: (error: unknown) => void): void {
    this.lend(client, (lent, returned, failed) => {
      Promise.resolve(fn(lent)).then(returned, failed);
    }, onDone, onError);
  }

  /**
   * Runs `fn` inside `BEGIN … COMMIT`, or `ROLLBACK` if it throws. If PostgreSQL turns the
   * COMMIT into a rollback (a statement failed and `fn` swallowed the error), this rejects.
   */
  async withTransaction<T>(fn: (client: PooledClient) => PromiseLike<T> | T, options: TransactionOptions & AcquireOptions = {}): Promise<T> {
    const begin = beginStatement(this.name, options);
    const settings = settingsStatement(this.name, options.settings);
    return this.withConnection((client) => runTransaction(this.name, client, fn, begin, settings), options);
  }

  /**
   * Acquires, runs one query, releases: `pg.Pool.query`-compatible (text or QueryConfig,
   * `rowMode: 'array'`, a callback `(err, result)` in place of the promise). A
   * submittable (`pg-cursor`, `pg-query-stream`) runs on a connection of its own, released
   * once it ends or fails.
   */
  query<T extends Submittable>(submittable: T): T;
  query<R extends unknown[] = unknown[]>(config: QueryArrayConfig, values?: unknown[]): Promise<QueryArrayResult<R>>;
  query<R extends QueryResultRow = QueryResultRow>(textOrConfig: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
  query<R extends unknown[] = unknown[]>(config: QueryArrayConfig, callback: QueryCallback<QueryArrayResult<R>>): void;
  query<R extends QueryResultRow = QueryResultRow>(textOrConfig: string | QueryConfig, callback: QueryCallback<QueryResult<R>>): void;
  query<R extends QueryResultRow = QueryResultRow>(text: string | QueryConfig, values: unknown[] | undefined, callback: QueryCallback<QueryResult<R>>): void;
  query(
    textOrConfig: string | QueryConfig | QueryArrayConfig | Submittable,
    valuesOrCallback?: unknown[] | QueryCallback<QueryResult>,
    callback?: QueryCallback<QueryResult>,
  ): Promise<QueryResult | QueryArrayResult> | Submittable | void {
    if (typeof textOrConfig === 'function') {
      const misuse = new PoolUsageError(this.name, 'query: the first argument must be SQL text or a QueryConfig, not a function ' +
        '(Passing a function as the first parameter to pool.query is not supported)');
      // As pg.Pool: through the callback the function was meant to be.
      setImmediate(() => (textOrConfig as unknown as (error: Error) => void)(misuse));
      return Promise.reject(misuse);
    }
    // A pg.Query is run as any statement (a promise of its result, as pg.Pool gives);
    // other submittables (cursors, streams) are handed back to read from.
    if (textOrConfig instanceof Query) return this.runPgQuery(textOrConfig);
    if (isSubmittable(textOrConfig)) return this.submit(textOrConfig);
    let values = valuesOrCallback;
    if (typeof values === 'function') {
      callback = values;
      values = undefined;
    }
    // A callback inside the QueryConfig (pg accepts one there): the callback form.
    const configCallback = typeof textOrConfig === 'object' ? (textOrConfig as { callback?: unknown }).callback : undefined;
    if (typeof configCallback === 'function' && callback === undefined) {
      callback = configCallback as QueryCallback<QueryResult>;
      textOrConfig = { ...(textOrConfig as QueryConfig), callback: undefined } as QueryConfig;
    }
    const result = this.multiplexer && this.poolState !== 'closing' && this.poolState !== 'closed'
      ? this.shareOrRun(this.multiplexer, textOrConfig, values)
      : this.runQuery(textOrConfig, values);
    if (callback === undefined) return result;
    if (typeof callback !== 'function') {
      throw new PoolUsageError(this.name, `query: the last argument must be a callback (err, result), not ${typeof callback}`);
    }
    const done = callback;
    result.then((value) => callBack(() => done(undefined, value as QueryResult)), (error: Error) => callBack(() => done(error, undefined)));
  }

  /** With `multiplex`: a shareable statement goes to the multiplexer, any other the plain way. */
  private shareOrRun(multiplexer: Multiplexer, textOrConfig: string | QueryConfig | QueryArrayConfig, values: unknown[] | undefined): Promise<QueryResult | QueryArrayResult> {
    const config: QueryConfig = typeof textOrConfig === 'string' ? { text: textOrConfig, values } : values === undefined ? textOrConfig : { ...textOrConfig, values };
    return isShareable(config) ? multiplexer.run(config) : this.runQuery(textOrConfig, values);
  }

  private runQuery(textOrConfig: string | QueryConfig | QueryArrayConfig, values: unknown[] | undefined): Promise<QueryResult | QueryArrayResult> {
    // Released as soon as the result is in, not after the caller's continuation: the
    // next waiter's statement goes out in the same turn (pg.Pool does the same).
    return this.acquire().then((client) => {
      let sent: Promise<QueryResult>;
      try {
        sent = client.query(textOrConfig as QueryConfig, values);
      } catch (error) {
        // pg refused the arguments before sending anything (a null query, a bad value).
        client.release();
        throw error;
      }
      return sent.then(
        (result) => {
          client.release();
          return result;
        },
        (error: unknown) => {
          client.release(closesConnection(error));
          throw error;
        },
      );
    });
  }

  /** A `pg.Query` given to `pool.query()`: its result, and the connection released, whatever its own callback does. */
  private runPgQuery(query: Query): Promise<QueryResult> {
    return this.acquire().then((client) => new Promise<QueryResult>((resolve, reject) => {
      const own = (query as Query & { callback?: (error: Error | null, result?: QueryResult) => void }).callback;
      (query as Query & { callback: (error: Error | null, result?: QueryResult) => void }).callback = (error, result) => {
        client.release(closesConnection(error));
        own?.(error, result);
        if (error) reject(error);
        else resolve(result as QueryResult);
      };
      try {
        client.query(query);
      } catch (error) {
        client.release();
        reject(error as Error);
      }
    }));
  }

  /**
   * A cursor or stream given to `pool.query()`: run on a connection of its own, released
   * when the server is done with it (its ReadyForQuery) or the connection fails. pg.Pool
   * never releases one (its callback is never called).
   */
  private submit<T extends Submittable>(submittable: T): T {
    const query = submittable as T & SubmittableHooks;
    this.acquire().then((client) => {
      let released = false;
      const finish = (error?: Error): void => {
        if (released) return;
        released = true;
        client.off('error', finish);
        client.release(error ?? false);
      };
      // Own properties over the prototype's methods, for this run only. pg calls one of
      // them last: handleReadyForQuery when the submittable is done, handleError when it
      // failed (pg then forgets it; the return check waits for the ReadyForQuery).
      const { handleReadyForQuery, handleError } = query;
      query.handleReadyForQuery = function readyForQuery(this: SubmittableHooks, ...args: unknown[]): void {
        handleReadyForQuery?.apply(this, args);
        // After pg has finished its own bookkeeping of this message.
        queueMicrotask(() => finish());
      };
      query.handleError = function failed(this: SubmittableHooks, error: Error, ...args: unknown[]): void {
        handleError?.call(this, error, ...args);
        queueMicrotask(() => finish());
      };
      client.on('error', finish);
      try {
        client.query(query);
      } catch (error) {
        finish(error as Error);
        query.handleError?.(error as Error);
      }
    }, (error: Error) => query.handleError?.(error));
    return submittable;
  }

  /**
   * `LISTEN` on `channel`: `handler(payload, channel)` runs for each notification. The
   * session is a dedicated connection built from this pool's settings (not one of its
   * connections), re-established with the pool's backoff and `LISTEN`ed again after a
   * server restart. Resolves once listening, with a function that stops this handler.
   */
  listen(channel: string, handler: NotificationHandler): Promise<() => Promise<void>> {
    if (this.poolState === 'closing' || this.poolState === 'closed') {
      return Promise.reject(new PoolClosedError(this.name, 'the pool is closed'));
    }
    this.listener ??= new PgListener(this.#settings);
    return this.listener.listen(channel, handler);
  }

  /** Stops one handler, or every handler, of a channel. */
  unlisten(channel: string, handler?: NotificationHandler): Promise<void> {
    return this.listener?.unlisten(channel, handler) ?? RESOLVED;
  }

  /** `NOTIFY channel, payload` through the pool (`pg_notify`, with parameters: no quoting to get wrong). */
  async notify(channel: string, payload = ''): Promise<void> {
    await this.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  /** A snapshot of the pool's gauges and counters (psycopg_pool's names). */
  getStats(): PoolStats {
    return {
      poolMin: this.#settings.min,
      poolMax: this.#settings.max,
      poolSize: this.connections.size + this.maintainer.pending,
      poolAvailable: this.lending.idleCount,
      requestsWaiting: this.lending.waitingCount,
      multiplexConnections: this.multiplexer?.connections ?? 0,
      multiplexInFlight: this.multiplexer?.inFlight ?? 0,
      ...this.counters,
    };
  }

  /**
   * What `JSON.stringify(pool)` shows: name, state, target and stats. Never the
   * credentials, and no trip through the pool's sockets and timers.
   */
  toJSON(): PoolSummary {
    return { name: this.name, state: this.poolState, target: this.target, stats: this.getStats() };
  }

  /** Returns the stats and zeroes the counters (psycopg_pool's `pop_stats()`). */
  resetStats(): PoolStats {
    const stats = this.getStats();
    Object.assign(this.counters, zeroCounters());
    return stats;
  }

  /** The last maintenance run's summary, if one has run. */
  get lastMaintenance(): MaintenanceRun | undefined {
    return this.maintainer.lastRun;
  }

  /** Runs a maintenance pass now (expire, shrink, keepalive, top up). */
  runMaintenance(): Promise<MaintenanceRun> {
    return this.maintainer.runOnce();
  }

  /** How often maintenance runs (or should, when `scheduleMaintenance` is false), in ms. */
  get maintenanceIntervalMs(): number {
    return this.maintainer.intervalMs;
  }

  /**
   * Cancels the statement running on a checked-out client, from a separate short-lived
   * connection (`pg_cancel_backend`): the statement fails with "canceling statement due
   * to user request" and the client stays checked out. Resolves false if nothing ran.
   */
  async cancelQuery(client: PooledClient): Promise<boolean> {
    const connection = connectionOf(client);
    // Only the current checkout's handle: a stale one must not cancel the next user's statement.
    if (!connection || connection.handle !== client || connection.state !== 'in-use' || !connection.isBusy) return false;
    const request = this.sendCancel(connection);
    // Recorded on the connection: its return waits for this to settle (see inspect).
    connection.cancelling = request;
    const delivered = await request;
    if (!delivered) this.#settings.logger.warn(`pool '${this.name}': could not deliver a cancel request to ${connection.host}`);
    return delivered;
  }

  /** Sends a CancelRequest for the statement running on this connection; false if it cannot be sent. */
  private sendCancel(connection: PoolConnection): Promise<boolean> {
    const { processID, secretKey } = connection.client as unknown as { processID?: number | null; secretKey?: number | null };
    if (typeof processID !== 'number' || typeof secretKey !== 'number') return Promise.resolve(false);
    // The session's own TLS settings, as pg resolved them (from `ssl`, or PGSSLMODE).
    const { ssl, sslNegotiation } = connection.client as unknown as { ssl?: TlsSetting; sslNegotiation?: string };
    return sendCancelRequest(connection.address, processID, secretKey, this.checkTimeoutMs, { ssl, negotiation: sslNegotiation });
  }

  /**
   * Changes the pool's size. Idle connections above the new `max` close at once, and
   * checked-out ones as they come back; resolves once the new `min` is open (rejects with
   * `PoolOpenError` if that fails within `acquireTimeoutMs`).
   */
  async resize(min: number, max: number = Math.max(min, 1)): Promise<void> {
    checkSize(min, max, (message) => {
      throw new PoolConfigError(this.name, `resize: ${message}`);
    });
    const refusal = this.#settings.budget?.admits(this.budgetMember, min);
    if (refusal) throw new PoolConfigError(this.name, `resize: ${refusal}`);
    this.#settings.min = min;
    this.#settings.max = max;
    while (this.connections.size > max && this.lending.idleCount > 0) {
      this.discard(this.lending.takeOldest(), 'resize');
    }
    this.maintainer.fill();
    if (this.poolState === 'open' && this.connections.size < min) await this.waitUntilReady(this.#settings.acquireTimeoutMs);
  }

  /** Checks every idle connection now and drops those that fail; the maintainer replaces them. */
  async check(): Promise<void> {
    await this.maintainer.checkIdle();
  }

  /**
   * Stops handing out connections, fails the waiters with `PoolClosedError`, waits up to
   * `timeoutMs` for checked-out clients to come back, then closes every connection.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.poolState === 'closed') return Promise.resolve();
    this.closing ??= this.shutDown(options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS);
    return this.closing;
  }

  /**
   * `pg.Pool`-compatible alias of `close()`; with a callback, calls it once closed. Unlike
   * pg.Pool, a second `end()` does not fail: it waits for the same close.
   */
  end(): Promise<void>;
  end(callback: (error?: Error) => void): void;
  end(callback?: (error?: Error) => void): Promise<void> | void {
    const closed = this.close();
    if (callback === undefined) return closed;
    closed.then(() => callBack(() => callback()), (error: Error) => callBack(() => callback(error)));
  }

  private async shutDown(timeoutMs: number): Promise<void> {
    this.poolState = 'closing';
    this.#settings.budget?.leave(this.budgetMember);
    this.multiplexer?.close(new PoolClosedError(this.name, 'the pool was closed while this statement waited'));
    this.maintainer.stop();
    this.lending.close();
    const closed = new PoolClosedError(this.name, 'the pool was closed while it was being opened');
    for (const waiter of this.openWaiters.splice(0)) waiter.reject(closed);
    // Attempts in flight would add connections after close() resolved: cut them short.
    await this.maintainer.abortAttempts(END_TIMEOUT_MS);
    for (const connection of this.lending.drainIdle()) this.discard(connection, 'closed');
    // Connections taken out for a check (acquire's, keepalive's) are not checked out:
    // closed now, which fails their check at once rather than at its timeout.
    for (const connection of [...this.connections]) {
      if (connection.state === 'checking') this.discard(connection, 'closed');
    }
    if (this.connections.size > 0 || this.maintainer.pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.emptied = resolve;
        timer = setTimeout(resolve, timeoutMs);
      });
      clearTimeout(timer);
      this.emptied = undefined;
    }
    for (const connection of [...this.connections]) {
      this.#settings.logger.warn(`pool '${this.name}': closing a connection still checked out after ${timeoutMs} ms`);
      this.discard(connection, 'closed');
    }
    await Promise.all(this.endings);
    await this.listener?.close();
    this.poolState = 'closed';
  }

  private connectSucceeded(connection: PoolConnection, elapsedMs: number): void {
    // A new connection on another server than the last one, hosts tried in order: the
    // pool failed over (the old primary is gone or read-only).
    if (this.#settings.target.hosts.length > 1 && !this.#settings.target.loadBalanceHosts) {
      if (this.lastHost !== undefined && this.lastHost !== connection.host) {
        this.counters.failovers++;
        this.#settings.logger.warn(`pool '${this.name}': failed over from ${this.lastHost} to ${connection.host}`);
      }
      this.lastHost = connection.host;
    }
    this.counters.connectionsNum++;
    this.counters.connectionsMs += elapsedMs;
    this.connections.add(connection);
    this.emit('connect', connection.client);
    if (this.openWaiters.length > 0 && this.connections.size >= Math.max(this.#settings.min, 1)) {
      for (const waiter of this.openWaiters.splice(0)) waiter.resolve();
    }
  }

  private connectFailed(error: ConnectError, elapsedMs: number, retryInMs: number | undefined): void {
    // An attempt close() cut short is no failure of the server's.
    if (this.poolState !== 'open') return this.notifyIfEmpty();
    this.counters.connectionsErrors++;
    this.counters.connectionsMs += elapsedMs;
    this.notifyIfEmpty();
    this.emit('connectError', error, retryInMs);
    if (this.isDown && this.lending.waitingCount > 0) this.lending.failWaitersWhileDown();
    if (this.openWaiters.length > 0) {
      const failure = new PoolOpenError(this.name, error.reason, { cause: error });
      for (const waiter of this.openWaiters.splice(0)) waiter.reject(failure);
    }
  }

  /** The budget's view of the pool: it grants permits and asks for idle connections. */
  private budgetView(): BudgetMember {
    const pool = this;
    return {
      get name() { return pool.name; },
      get min() { return pool.#settings.min; },
      get lastUsedAt() { return pool.lastUse; },
      grant: () => this.maintainer.acceptPermit(),
      yieldIdle: () => {
        if (this.poolState !== 'open' || this.lending.waitingCount > 0 || this.lending.idleCount === 0 ||
          this.connections.size <= this.#settings.min) return false;
        this.discard(this.lending.takeOldest(), 'budget');
        return true;
      },
    };
  }

  private maintainedView(): MaintainedPool {
    return {
      takePermit: () => this.#settings.budget?.take(this.budgetMember) ?? true,
      givePermit: () => this.#settings.budget?.give(),
      options: this.#settings,
      isOpen: () => this.poolState === 'open',
      isOpening: () => this.openWaiters.length > 0,
      floor: () => (this.openWaiters.length > 0 ? Math.max(this.#settings.min, 1) : this.#settings.min),
      openCount: () => this.connections.size,
      check: (connection) => this.runCheck(connection, this.#settings.checkOnAcquire ?? defaultCheckFor(this.#settings.target.targetSessionAttrs), this.checkTimeoutMs)
        .then(() => connection.isReady, () => false),
      adopt: (connection) => this.adopt(connection),
      discard: (connection, reason) => this.discard(connection, reason),
      discardLost: (connection, reason) => this.discardLost(connection, reason),
      connectSucceeded: (connection, elapsedMs) => this.connectSucceeded(connection, elapsedMs),
      connectFailed: (error, elapsedMs, retryInMs) => this.connectFailed(error, elapsedMs, retryInMs),
      reconnectFailed: (info) => {
        if (this.#settings.onReconnectFailed) return this.#settings.onReconnectFailed(this, info);
        this.#settings.logger.error(`pool '${this.name}': reconnecting has failed for ${info.failingForMs} ms; ` +
          `still trying every ${this.#settings.reconnectMaxDelayMs} ms. Last error: ${info.lastError?.reason}`);
      },
      onLost: (connection, error) => this.onLost(connection, error),
    };
  }
}
