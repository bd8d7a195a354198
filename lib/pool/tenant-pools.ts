import { ConnectionBudget, type ConnectionBudgetStats } from './connection-budget.js';
import { monotonicNow } from './clock.js';
import { PoolConfigError, PoolTimeoutError, UnknownPoolError } from './errors.js';
import { TimeoutError, withTimeout } from './with-timeout.js';
import { PgPool } from './pg-pool.js';
import type { PgPoolConfig } from './pg-pool-config.js';
import { defaultPoolLogger, type PoolLogger } from './pool-logger.js';
import type { PoolStats } from './pool-stats.js';

/** From a database id to its pool's options; `undefined` or `null`: no such database. */
export type TenantResolver = (id: string) => PgPoolConfig | undefined | null | Promise<PgPoolConfig | undefined | null>;

/** How `TenantPools` creates, bounds and evicts pools. */
export interface TenantPoolsOptions {
  /**
   * The options of the pool for a database id, asked the first time the id is used (and
   * again after its pool was evicted). The pool's `name` is the id; `min` defaults to 0.
   */
  resolve: TenantResolver;
  /** Tenant pools open at most; the least recently used idle one is closed to make room. Default 100. */
  maxPools?: number;
  /** A tenant pool not used for this long, with nothing checked out, is closed. Default 300000 (5 min). */
  idleCloseMs?: number;
  /**
   * The most connections all tenant pools may hold together: a number, or a
   * `ConnectionBudget` shared with other pools too. Default: no shared bound (each pool's `max`).
   */
  connectionBudget?: number | ConnectionBudget;
  /** How long `resolve(id)` may take before the request fails with a `PoolTimeoutError`. Default 10000. */
  resolveTimeoutMs?: number;
  /** How long closing an evicted pool waits for checked-out clients (none, normally). Default 10000. */
  closeTimeoutMs?: number;
  /** Where the manager's own lines go (opened, evicted); each pool gets the logger its options give. */
  logger?: PoolLogger;
}

/** The tenant pools as a whole: what a health check reports, without one entry per tenant. */
export interface TenantPoolsHealth {
  /** Tenant pools open now. */
  openPools: number;
  /** `maxPools`. */
  maxPools: number;
  /** The shared budget, if there is one: its max, permits in use, pools waiting. */
  budget: ConnectionBudgetStats | undefined;
  /** Tenant pools whose connection attempts are failing now, at most 10 of them by id. */
  failing: string[];
  /** How many tenant pools are failing now. */
  failingCount: number;
}

interface Entry {
  pool: PgPool;
  /** Last `get()` for it (monotonic ms): what eviction and idle closing go by. */
  usedAt: number;
}

const DEFAULTS = { maxPools: 100, idleCloseMs: 300_000, closeTimeoutMs: 10_000, resolveTimeoutMs: 10_000 };

/**
 * A pool handed out by `get()` and not used since is kept from eviction this long: its
 * caller is about to acquire from it. Past this, the caller is taken to have let it be.
 */
const HANDED_OUT_GRACE_MS = 5_000;

/** A creation waiting for room looks again this often, besides being woken by releases and evictions. */
const ROOM_POLL_MS = 25;

/**
 * The seed's pools manager, finished: a pool per database id, created on first use from
 * what `resolve(id)` says, at most `maxPools` of them (the least recently used idle one is
 * closed to make room), each closed after `idleCloseMs` unused, all under one connection
 * budget. For a database (or a role) per tenant, where a hand-rolled
 * `Map<tenant, pg.Pool>` grows without bound and opens `tenants x max` connections.
 *
 * A tenant whose database fails (missing, password refused) fails only its own requests:
 * its pool stays, reconnecting with its own backoff, and answers its requests with the
 * server's reason (`PoolUnavailableError`); the other pools never wait for it.
 */
export class TenantPools {
  /** Tenant pools open at most. */
  readonly maxPools: number;
  /** A pool unused this long, with nothing checked out, is closed. */
  readonly idleCloseMs: number;
  /** The budget the tenant pools share, if any. */
  readonly budget: ConnectionBudget | undefined;
  private readonly resolve: TenantResolver;
  private readonly closeTimeoutMs: number;
  private readonly resolveTimeoutMs: number;
  private readonly logger: PoolLogger;
  private readonly entries = new Map<string, Entry>();
  /** First uses in progress: concurrent first requests for an id create its pool once. */
  private readonly creating = new Map<string, Promise<PgPool>>();
  /** Pools being closed (evicted, idle): the budget and `close()` wait for them. */
  private readonly closing = new Set<Promise<void>>();
  /** Creations waiting for a pool to become idle so it can be evicted, in arrival order. */
  private roomWaiters: Array<() => void> = [];
  /** Creations that have their room but are not entered yet: they count towards `maxPools`. */
  private reserved = 0;
  private readonly idleTimer: NodeJS.Timeout;
  private closed = false;
  /** Rejects once `close()` is called: a creation waiting on its resolver stops waiting. */
  private readonly closedSignal: Promise<never>;
  private signalClosed: (error: Error) => void = () => undefined;

  constructor(options: TenantPoolsOptions) {
    const fail = (message: string): never => {
      throw new PoolConfigError('tenants', message);
    };
    if (typeof options?.resolve !== 'function') fail('`resolve` must be a function from a database id to pool options');
    const {
      maxPools = DEFAULTS.maxPools, idleCloseMs = DEFAULTS.idleCloseMs, closeTimeoutMs = DEFAULTS.closeTimeoutMs,
      resolveTimeoutMs = DEFAULTS.resolveTimeoutMs,
    } = options;
    if (!(resolveTimeoutMs > 0)) fail(`\`resolveTimeoutMs\` must be a number of milliseconds > 0, not ${String(resolveTimeoutMs)}`);
    if (!Number.isInteger(maxPools) || maxPools < 1) fail(`\`maxPools\` must be an integer >= 1, not ${String(maxPools)}`);
    if (!(idleCloseMs > 0)) fail(`\`idleCloseMs\` must be a number of milliseconds > 0, not ${String(idleCloseMs)}`);
    const budget = options.connectionBudget;
    if (budget !== undefined && !(budget instanceof ConnectionBudget) && !(Number.isInteger(budget) && budget >= 1)) {
      fail(`\`connectionBudget\` must be an integer >= 1 or a ConnectionBudget, not ${String(budget)}`);
    }
    this.resolve = options.resolve;
    this.maxPools = maxPools;
    this.idleCloseMs = idleCloseMs;
    this.closeTimeoutMs = closeTimeoutMs;
    this.resolveTimeoutMs = resolveTimeoutMs;
    this.logger = options.logger ?? defaultPoolLogger;
    this.budget = typeof budget === 'number' ? new ConnectionBudget(budget) : budget;
    this.closedSignal = new Promise<never>((_resolve, reject) => {
      this.signalClosed = reject;
    });
    this.closedSignal.catch(() => undefined);
    this.idleTimer = setInterval(() => this.closeIdle(), Math.max(10, Math.min(this.idleCloseMs / 2, 5_000)));
    this.idleTimer.unref();
  }

  /** The ids of the tenant pools open now. */
  ids(): string[] {
    return [...this.entries.keys()];
  }

  /** Tenant pools open now. */
  get size(): number {
    return this.entries.size;
  }

  /** The pool of this id if it is open now (and marks it used); never creates one. */
  peek(id: string): PgPool | undefined {
    const entry = this.entries.get(id);
    if (entry) entry.usedAt = monotonicNow();
    return entry?.pool;
  }

  /**
   * The pool of this id, created (and opened) on first use. Concurrent first requests
   * for an id share one creation. `UnknownPoolError` if `resolve(id)` returns no options;
   * `PoolTimeoutError` if all `maxPools` pools stay busy for the pool's `acquireTimeoutMs`.
   */
  get(id: string): Promise<PgPool> {
    const open = this.peek(id);
    if (open) return Promise.resolve(open);
    if (this.closed) return Promise.reject(new PoolConfigError(id, 'the tenant pools are closed'));
    let creation = this.creating.get(id);
    if (!creation) {
      creation = this.create(id).finally(() => this.creating.delete(id));
      this.creating.set(id, creation);
    }
    return creation;
  }

  /** One tenant's stats, if its pool is open: on demand, never a list of every tenant's. */
  stats(id: string): PoolStats | undefined {
    return this.entries.get(id)?.pool.getStats();
  }

  /** The tenant pools as a whole: open pools, the budget, failing tenants. */
  health(): TenantPoolsHealth {
    const failing: string[] = [];
    let failingCount = 0;
    for (const [id, { pool }] of this.entries) {
      if (pool.available) continue;
      failingCount++;
      if (failing.length < 10) failing.push(id);
    }
    return { openPools: this.entries.size, maxPools: this.maxPools, budget: this.budget?.stats(), failing, failingCount };
  }

  /** Every tenant pool open now. */
  pools(): PgPool[] {
    return [...this.entries.values()].map((entry) => entry.pool);
  }

  /** Closes one tenant's pool (it is created again on its next use). */
  async evict(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    this.entries.delete(id);
    this.wakeRoomWaiters();
    await this.track(entry.pool.close({ timeoutMs: this.closeTimeoutMs }));
  }

  /** Closes every tenant pool; later `get()`s fail. */
  async close(): Promise<void> {
    this.closed = true;
    this.signalClosed(new PoolConfigError('tenants', 'the tenant pools were closed while this pool was being created'));
    clearInterval(this.idleTimer);
    for (const wake of this.roomWaiters.splice(0)) wake();
    await Promise.allSettled(this.creating.values());
    await Promise.all([...this.ids().map((id) => this.evict(id)), ...this.closing]);
  }

  private async create(id: string): Promise<PgPool> {
    const resolving = withTimeout(Promise.resolve().then(() => this.resolve(id)), this.resolveTimeoutMs,
      `resolve('${id}') did not answer within ${this.resolveTimeoutMs} ms`).catch((error: unknown) => {
      if (error instanceof TimeoutError) throw new PoolTimeoutError(id, `${error.message} (resolveTimeoutMs)`);
      throw error;
    });
    const config = await Promise.race([resolving, this.closedSignal]);
    if (config === undefined || config === null) {
      throw new UnknownPoolError(id, `no such database id: resolve('${id}') returned no pool options for it`);
    }
    if (typeof config !== 'object') throw new PoolConfigError(id, `resolve('${id}') must return pool options, not ${typeof config}`);
    const pool = new PgPool({ min: 0, ...config, name: id, ...(this.budget ? { budget: this.budget } : {}) });
    await this.makeRoom(id, pool.options.acquireTimeoutMs);
    this.reserved--;
    if (this.closed) {
      await pool.close();
      throw new PoolConfigError(id, 'the tenant pools were closed while this pool was being created');
    }
    // Returning clients may free room for creations waiting on a full set of pools.
    pool.on('release', () => this.wakeRoomWaiters());
    this.entries.set(id, { pool, usedAt: monotonicNow() });
    // Not waiting for `min`: the first request waits as any request does, and a failing
    // database fails that request with the server's reason, not the creation.
    await pool.open();
    this.logger.debug?.(`tenant pools: opened '${id}' (${this.entries.size} of ${this.maxPools} open)`);
    return pool;
  }

  /**
   * Waits until fewer than `maxPools` pools are open, evicting the least recently used
   * idle one, and reserves the room (the caller enters its pool, or gives the room back).
   */
  private async makeRoom(id: string, timeoutMs: number): Promise<void> {
    const deadline = monotonicNow() + timeoutMs;
    while (!this.closed && this.entries.size + this.reserved >= this.maxPools) {
      const victim = this.leastRecentlyUsedIdle();
      if (victim) {
        this.logger.debug?.(`tenant pools: closing '${victim}', the least recently used idle pool, to make room for '${id}'`);
        void this.evict(victim);
        continue;
      }
      const left = deadline - monotonicNow();
      if (left <= 0) {
        throw new PoolTimeoutError(id, `timeout exceeded when trying to connect: no room for this tenant's pool within ${timeoutMs} ms; ` +
          `all ${this.maxPools} tenant pools (maxPools) had clients checked out or requests waiting. Raise maxPools, or lower idleCloseMs`);
      }
      await new Promise<void>((resolve) => {
        // A pool turns idle without an event too (its waiters gave up, a slow return ended): look again soon.
        const timer = setTimeout(wake, Math.min(left, ROOM_POLL_MS));
        function wake(): void {
          clearTimeout(timer);
          resolve();
        }
        this.roomWaiters.push(wake);
      });
    }
    this.reserved++;
  }

  private wakeRoomWaiters(): void {
    if (this.roomWaiters.length === 0) return;
    for (const wake of this.roomWaiters.splice(0)) wake();
  }

  private leastRecentlyUsedIdle(): string | undefined {
    let victim: string | undefined;
    let oldest = Number.POSITIVE_INFINITY;
    const now = monotonicNow();
    for (const [id, entry] of this.entries) {
      const usedAt = lastUse(entry);
      if (usedAt < oldest && this.evictable(entry, now)) {
        oldest = usedAt;
        victim = id;
      }
    }
    return victim;
  }

  /**
   * Nothing checked out, nobody waiting, and not just handed out by `get()` to a caller
   * that has not acquired from it yet: closing it costs no request anything.
   */
  private evictable(entry: Entry, now: number): boolean {
    if (!isIdle(entry.pool)) return false;
    return entry.pool.lastUsedAt >= entry.usedAt || now - entry.usedAt >= HANDED_OUT_GRACE_MS;
  }

  /** The idle timer: closes pools unused for `idleCloseMs` with nothing checked out. */
  private closeIdle(): void {
    const now = monotonicNow();
    for (const [id, entry] of this.entries) {
      const usedAt = lastUse(entry);
      if (now - usedAt >= this.idleCloseMs && this.evictable(entry, now)) {
        this.logger.debug?.(`tenant pools: closing '${id}', unused for ${Math.round(now - usedAt)} ms`);
        void this.evict(id);
      }
    }
  }

  private track(closing: Promise<void>): Promise<void> {
    const tracked = closing.catch((error: Error) => this.logger.warn(`tenant pools: closing a pool failed: ${error.message}`));
    this.closing.add(tracked);
    void tracked.finally(() => this.closing.delete(tracked));
    return tracked;
  }
}

/** When a tenant's pool was last used: handed out by `get()`, or a connection checked out of it. */
function lastUse(entry: Entry): number {
  return Math.max(entry.usedAt, entry.pool.lastUsedAt);
}

/** Nothing checked out, nobody waiting. */
function isIdle(pool: PgPool): boolean {
  // totalCount includes connections being opened (so requests they are for), waitingCount
  // the requests beyond those: both read off the pool, with no stats snapshot to build.
  return pool.totalCount === pool.idleCount && pool.waitingCount === 0;
}
