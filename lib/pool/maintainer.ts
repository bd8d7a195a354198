import { Backoff } from './backoff.js';
import { monotonicNow } from './clock.js';
import { connectErrorOf, openConnection } from './connection-opener.js';
import { inPoolContext } from './detached-context.js';
import { raceDeadline, TimeoutError, withTimeout } from './with-timeout.js';
import type { ConnectError } from './errors.js';
import type { Lending } from './lending.js';
import type { PoolConnection, RemoveReason } from './pool-connection.js';
import { workBoundMs, type ReconnectFailedInfo, type ResolvedPoolOptions } from './pool-options.js';

/**
 * What the maintainer asks of its pool beyond the lending core: its size and state, and
 * what to do with the connections it opens, checks and closes. A narrow view rather than
 * the pool itself, so the background work reads as a list of tasks and cannot reach into
 * acquire/release.
 */
export interface MaintainedPool {
  readonly options: ResolvedPoolOptions;
  isOpen(): boolean;
  /** How many connections to keep open: `min`, or 1 while `open({ wait: true })` waits on a `min: 0` pool. */
  floor(): number;
  /** Connections open now (idle, checking, in use, returning); not those being opened. */
  openCount(): number;
  /** Runs the pool's check (checkOnAcquire's, or `SELECT 1`) within connectTimeoutMs; false if it failed. */
  check(connection: PoolConnection): Promise<boolean>;
  /** A new or checked connection: to the oldest waiter, else to the idle deque. */
  adopt(connection: PoolConnection): void;
  /** Closes a connection and forgets it. */
  discard(connection: PoolConnection, reason: RemoveReason): void;
  /** A connection is dead: closes it and counts it lost. */
  discardLost(connection: PoolConnection, reason: RemoveReason): void;
  connectSucceeded(connection: PoolConnection, elapsedMs: number): void;
  connectFailed(error: ConnectError, elapsedMs: number, retryInMs: number | undefined): void;
  /**
   * Whether `open({ wait: true })` is waiting: a failed attempt then fails the open,
   * which closes the pool, so there is no retry to announce.
   */
  isOpening(): boolean;
  /** Reconnecting has failed for `reconnectTimeoutMs`: runs `onReconnectFailed` once. */
  reconnectFailed(info: ReconnectFailedInfo): void;
  onLost(connection: PoolConnection, error: Error): void;
  /**
   * A permit from the shared connection budget for one more connection (true without a
   * budget); false: the pool queued for one and `Maintainer.acceptPermit()` follows.
   */
  takePermit(): boolean;
  /** An attempt that held a permit failed: the permit goes back to the budget. */
  givePermit(): void;
}

/** What the last maintenance run did: for debug logs and the Nest maintenance service. */
export interface MaintenanceRun {
  /** When the pass ran. */
  at: Date;
  /** Connections closed for their lifetime. */
  expired: number;
  /** Idle connections above `min` closed. */
  shrunk: number;
  /** Idle connections checked by keepalive. */
  keepaliveChecked: number;
  /** Of those, the ones that failed and were dropped. */
  keepaliveFailed: number;
  /** Connections being opened after the pass. */
  opening: number;
}

const MIN_TICK_MS = 10;
/**
 * While requests wait on a server that refuses connections, attempts come this often
 * whatever the backoff has grown to: a server back (or a standby promoted) is found
 * within about this long, while an idle pool still backs off to `reconnectMaxDelayMs`.
 */
export const DEMAND_RETRY_MS = 500;
const MAX_TICK_MS = 1_000;

/**
 * The pool's background worker, after psycopg_pool's: it opens connections (to `min`,
 * and one per waiting request up to `max`), retries failed connects with exponential
 * backoff, and on each tick expires old connections, shrinks idle ones above `min`
 * and runs keepalive checks. Acquire and release never open or close a connection
 * themselves; they ask the maintainer with `fill()`.
 */
export class Maintainer {
  private connecting = 0;
  /** Connections being opened now, for abortAttempts(). */
  private readonly inFlight = new Set<PoolConnection>();
  /** The AddConnection tasks running now. */
  private readonly tasks = new Set<Promise<void>>();
  private tickTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  /** When the armed retry fires, and when the last attempt failed (monotonic ms). */
  private retryAt = 0;
  private lastFailureAt = 0;
  private running = false;
  /** Idle connections being checked by keepalive or `checkIdle()` now: at most one. */
  private checking = 0;
  private keepaliveRunning: Promise<void> | undefined;
  /** Backoff state: set while connection attempts keep failing. */
  private failingSince: number | undefined;
  private readonly backoff: Backoff;
  private reconnectFailedReported = false;
  private lastShrinkAt = 0;
  private lastKeepaliveAt = 0;
  private lastError: ConnectError | undefined;
  private lastRunSummary: MaintenanceRun | undefined;
  private capacityChecked = false;

  constructor(
    private readonly pool: MaintainedPool,
    /** The idle connections and waiting requests it tends. */
    private readonly lending: Lending,
  ) {
    this.backoff = new Backoff(pool.options.reconnectDelayMs, pool.options.reconnectMaxDelayMs);
  }

  /** Connections being opened now. */
  get pending(): number {
    return this.connecting;
  }

  /** The error of the last failed connection attempt, while attempts are failing. */
  get failure(): ConnectError | undefined {
    return this.failingSince === undefined ? undefined : this.lastError;
  }

  get lastRun(): MaintenanceRun | undefined {
    return this.lastRunSummary;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.lastShrinkAt = this.lastKeepaliveAt = monotonicNow();
    if (this.pool.options.scheduleMaintenance) {
      // The pool's tasks run in its own async context, never in that of the request that
      // happened to open the pool (a tenant's, created on its first request), whose
      // AsyncLocalStorage stores its hooks and listeners would otherwise see for good.
      this.tickTimer = inPoolContext(() => setInterval(() => void this.runOnce(), this.intervalMs));
      this.tickTimer.unref();
    }
    this.fill();
  }

  /**
   * The pool is closing: cuts short every connection being opened (its socket is
   * destroyed, so a slow or black-holed server cannot keep it) and resolves once every
   * attempt has ended, within `timeoutMs`.
   */
  async abortAttempts(timeoutMs: number): Promise<void> {
    for (const connection of this.inFlight) connection.destroy();
    await raceDeadline(Promise.all(this.tasks), timeoutMs);
  }

  stop(): void {
    this.running = false;
    clearTimeout(this.tickTimer);
    clearTimeout(this.retryTimer);
    this.tickTimer = this.retryTimer = undefined;
  }

  /**
   * Opens what the pool lacks: up to `min`, plus one connection per waiting request
   * not already covered by one being opened, never past `max`. While connecting is
   * failing it does nothing: the backoff timer calls it again.
   */
  fill(): void {
    if (!this.running || !this.pool.isOpen()) return;
    if (this.retryTimer) {
      this.hurryRetryForDemand();
      return;
    }
    const wanted = this.wanted();
    for (let i = 0; i < wanted; i++) {
      if (!this.pool.takePermit()) break;
      this.startAttempt();
    }
  }

  /**
   * The shared budget holds a permit for this pool, which queued for one: opens a
   * connection with it if the pool still lacks one (its waiters may have timed out).
   */
  acceptPermit(): boolean {
    if (!this.running || !this.pool.isOpen() || this.retryTimer || this.wanted() <= 0) return false;
    this.startAttempt();
    // More requests than this connection covers: queue again, behind the pools already waiting.
    this.fill();
    return true;
  }

  private startAttempt(): void {
    const task = inPoolContext(() => this.addConnection()).finally(() => this.tasks.delete(task));
    this.tasks.add(task);
  }

  /** How many connections to open now. */
  private wanted(): number {
    const { max } = this.pool.options;
    const size = this.pool.openCount() + this.connecting;
    let wanted = Math.max(0, this.pool.floor() - size);
    // A connection under a keepalive check comes back within the check's bound: it
    // covers a waiter, so a check never makes the pool grow.
    const uncovered = this.lending.waitingCount - this.lending.idleCount - this.connecting - this.checking;
    if (uncovered > wanted) wanted = uncovered;
    wanted = Math.min(wanted, max - size);
    // While failing, one attempt at a time: a down server gets one probe, not `max`. So too
    // for a pool sharing a budget that has no connection yet: a server that does not answer
    // holds one permit for its connect timeout, not one per waiting request.
    if (this.failingSince !== undefined || (this.pool.options.budget && this.pool.openCount() === 0)) {
      wanted = Math.min(wanted, 1 - this.connecting);
    }
    return wanted;
  }

  /** The `AddConnection` task. */
  private async addConnection(): Promise<void> {
    this.connecting++;
    const startedAt = monotonicNow();
    let connection: PoolConnection;
    try {
      connection = await openConnection(this.pool.options, (c, error) => this.pool.onLost(c, error), this.inFlight);
      if (!this.capacityChecked) {
        this.capacityChecked = true;
        await this.warnIfOverCapacity(connection);
      }
    } catch (error) {
      this.connecting--;
      this.pool.givePermit();
      const failure = connectErrorOf(this.pool.options, error);
      const retryInMs = this.scheduleRetry(failure);
      this.pool.connectFailed(failure, monotonicNow() - startedAt, retryInMs);
      return;
    }
    this.connecting--;
    this.failingSince = undefined;
    this.backoff.reset();
    this.reconnectFailedReported = false;
    this.pool.connectSucceeded(connection, monotonicNow() - startedAt);
    if (!this.pool.isOpen()) {
      this.pool.discard(connection, 'closed');
      return;
    }
    this.pool.adopt(connection);
    this.fill();
  }

  /**
   * Once per pool, on its first connection: warns when `max` exceeds what the server
   * allows (`max_connections` minus the reserved slots), since the pool would then fail
   * with "too many clients" before it ever reached `max`.
   */
  private async warnIfOverCapacity(connection: PoolConnection): Promise<void> {
    const { options } = this.pool;
    const bound = workBoundMs(options);
    try {
      // Bounded like the rest of the set-up: a server that stops answering here would
      // otherwise hold this attempt, and with it the pool's only probe, for ever.
      const { rows } = await withTimeout(connection.client.query<{ max_connections: number; reserved: number }>(
        "SELECT current_setting('max_connections')::int AS max_connections, " +
        "current_setting('superuser_reserved_connections')::int + coalesce(current_setting('reserved_connections', true)::int, 0) AS reserved"),
      bound, `the server did not answer within ${bound} ms after connecting`);
      const row = rows?.[0];
      if (!row) return;
      const allowed = row.max_connections - row.reserved;
      if (options.max > allowed) {
        options.logger.warn(`pool '${options.name}': max (${options.max}) exceeds the connections the server allows ` +
          `(${allowed} = max_connections ${row.max_connections} - ${row.reserved} reserved, for every client together); ` +
          'size pools by the rule of thumb connections = cores x 2 + spindles, or put PgBouncer in front');
      }
    } catch (error) {
      // No answer at all: the connection is of no use; the attempt fails.
      if (error instanceof TimeoutError) {
        connection.destroy();
        throw error;
      }
      // Otherwise sizing advice only: a server that hides its settings still gets a pool.
    }
  }

  /**
   * Exponential backoff: `reconnectDelayMs`, doubling, ±10% jitter, capped at
   * `reconnectMaxDelayMs`. Past `reconnectTimeoutMs` of continuous failure,
   * `onReconnectFailed` runs once and attempts go on at the longest interval.
   * Returns the delay chosen, or undefined when a retry was already scheduled.
   */
  private scheduleRetry(error: ConnectError): number | undefined {
    const now = monotonicNow();
    const { options } = this.pool;
    this.lastError = error;
    this.lastFailureAt = now;
    if (this.failingSince === undefined) this.failingSince = now;
    if (!this.running || !this.pool.isOpen() || this.retryTimer) return undefined;
    const failingForMs = now - this.failingSince;
    if (failingForMs >= options.reconnectTimeoutMs && !this.reconnectFailedReported) {
      this.reconnectFailedReported = true;
      this.backoff.toMax();
      this.pool.reconnectFailed({ name: options.name, lastError: error, failingForMs });
    }
    const backoffMs = this.backoff.next();
    if (this.lending.waitingCount > 0 && backoffMs > DEMAND_RETRY_MS) {
      // Requests are waiting: the next attempt comes soon, whatever the backoff says.
      options.logger.debug?.(`pool '${options.name}': ${error.reason}; requests are waiting, retrying in ${DEMAND_RETRY_MS} ms`);
      this.armRetry(DEMAND_RETRY_MS);
      return DEMAND_RETRY_MS;
    }
    // While open({ wait: true }) waits, the failure is its caller's to report (it fails the open).
    if (!this.pool.isOpening()) options.logger.warn(`pool '${options.name}': ${error.reason}; retrying in ${backoffMs} ms`);
    this.armRetry(backoffMs);
    return backoffMs;
  }

  private armRetry(delayMs: number): void {
    clearTimeout(this.retryTimer);
    this.retryAt = monotonicNow() + delayMs;
    this.retryTimer = inPoolContext(() => setTimeout(() => {
      this.retryTimer = undefined;
      this.fill();
    }, delayMs));
    this.retryTimer.unref();
  }

  /**
   * A request arrived while the pool backs off: bring the armed retry forward to
   * `DEMAND_RETRY_MS` after the last failure, so the time from "the server is back" to
   * "the request is served" does not depend on how long the outage has lasted.
   */
  private hurryRetryForDemand(): void {
    if (this.connecting > 0 || this.lending.waitingCount === 0) return;
    const dueAt = this.lastFailureAt + DEMAND_RETRY_MS;
    if (this.retryAt > dueAt + 1) this.armRetry(Math.max(0, dueAt - monotonicNow()));
  }

  /**
   * The `CheckConnections` task (keepalive, `pool.check()`): checks the connections idle
   * now, one at a time as HikariCP's keepalive does, each taken out of the deque only for
   * its own check. Taking them all at once would leave arriving requests nothing idle,
   * and each would open a connection of its own. A pass already running is joined.
   */
  async checkIdle(): Promise<{ checked: number; failed: number }> {
    const result = { checked: 0, failed: 0 };
    if (this.keepaliveRunning) {
      await this.keepaliveRunning;
      return result;
    }
    const pass = (async () => {
      for (const connection of [...this.lending.idleConnections()]) {
        if (!this.pool.isOpen() || !this.lending.takeForCheck(connection)) continue;
        result.checked++;
        this.checking++;
        let passed: boolean;
        try {
          passed = await this.pool.check(connection);
        } finally {
          this.checking--;
        }
        if (passed) {
          this.pool.adopt(connection);
        } else {
          result.failed++;
          this.pool.discardLost(connection, 'keepalive');
        }
      }
    })();
    this.keepaliveRunning = pass;
    try {
      await pass;
    } finally {
      this.keepaliveRunning = undefined;
    }
    return result;
  }

  /**
   * How often maintenance should run: often enough to honour the shortest of
   * `maxIdleMs`, the lifetime jitter window and `keepaliveIntervalMs`, at most 1 s apart.
   */
  get intervalMs(): number {
    const { maxIdleMs, maxLifetimeMs, keepaliveIntervalMs } = this.pool.options;
    const candidates = [MAX_TICK_MS, maxIdleMs, maxLifetimeMs * 0.05];
    if (keepaliveIntervalMs > 0) candidates.push(keepaliveIntervalMs);
    return Math.max(MIN_TICK_MS, Math.round(Math.min(...candidates)));
  }

  /**
   * One maintenance pass over the idle connections: the `ExpireConnections`,
   * `ShrinkPool` and `CheckConnections` tasks, then `fill()` to replace what went.
   */
  async runOnce(): Promise<MaintenanceRun> {
    const now = monotonicNow();
    const { options } = this.pool;
    const run: MaintenanceRun = { at: new Date(), expired: 0, shrunk: 0, keepaliveChecked: 0, keepaliveFailed: 0, opening: 0 };
    if (!this.pool.isOpen()) return run;

    for (const connection of [...this.lending.idleConnections()]) {
      if (connection.expiresAt <= now && this.lending.takeForCheck(connection)) {
        this.pool.discard(connection, 'lifetime');
        run.expired++;
      }
    }

    // One connection per maxIdleMs period, as psycopg's ShrinkPool: a quiet spell
    // brings the pool down gently, and a new burst finds most connections still there.
    if (now - this.lastShrinkAt >= options.maxIdleMs) {
      this.lastShrinkAt = now;
      if (this.pool.openCount() > options.min) {
        const oldest = this.lending.idleConnections()[Symbol.iterator]().next();
        if (!oldest.done && now - oldest.value.idleSince >= options.maxIdleMs && this.lending.takeForCheck(oldest.value)) {
          this.pool.discard(oldest.value, 'idle');
          run.shrunk++;
        }
      }
    }

    if (options.keepaliveIntervalMs > 0 && now - this.lastKeepaliveAt >= options.keepaliveIntervalMs && !this.keepaliveRunning) {
      this.lastKeepaliveAt = now;
      const result = await this.checkIdle();
      run.keepaliveChecked = result.checked;
      run.keepaliveFailed = result.failed;
    }

    this.fill();
    run.opening = this.connecting;
    this.lastRunSummary = run;
    if (run.expired + run.shrunk + run.keepaliveFailed > 0) {
      options.logger.debug?.(`pool '${options.name}': maintenance expired ${run.expired}, shrank ${run.shrunk}, ` +
        `keepalive ${run.keepaliveChecked} checked / ${run.keepaliveFailed} failed, opening ${run.opening}`);
    }
    return run;
  }
}
