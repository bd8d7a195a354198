import { monotonicNow } from './clock.js';
import { Deque } from './deque.js';
import { PoolClosedError, type PoolError, TooManyRequestsError } from './errors.js';
import type { PoolConnection } from './pool-connection.js';
import type { ResolvedPoolOptions } from './pool-options.js';
import type { PoolCounters } from './pool-stats.js';
import type { PooledClient } from './pooled-client.js';
import { Waiter, WaitingQueue } from './waiting-queue.js';

/** What the lending core asks of its pool: to check a connection out, and why a waiter failed. */
export interface LendingPool {
  /** Hands a connection to a request: the checkout's client, with its `release()`. */
  checkOut(connection: PoolConnection, origin: string | undefined, now: number): PooledClient;
  /** The server is down: no connection open, and the latest attempt failed. */
  isDown(): boolean;
  /** The error for a request that gave up while the server was down. */
  unavailableError(waitedMs: number): PoolError;
  /** The error for a request that waited its whole timeout. */
  timeoutError(timeoutMs: number, othersWaiting: number): PoolError;
  /** A request waits: the maintainer may open a connection for it. */
  demand(): void;
}

/**
 * The lending core, HikariCP's `ConcurrentBag` in our terms: idle connections on a
 * deque, requests waiting in a FIFO queue, and the timers that give up on them. A
 * connection offered back goes to the oldest waiter, else to the idle deque. O(1)
 * throughout: no scan on acquire, release or timeout.
 */
export class Lending {
  private readonly idle = new Deque<PoolConnection>();
  private readonly waiting = new WaitingQueue<PooledClient>();
  /** The one timer for waiters on the default `acquireTimeoutMs` (see armQueueTimer). */
  private queueTimer: NodeJS.Timeout | undefined;
  /** Fails the waiters that have waited `unavailableTimeoutMs` while the server is down. */
  private downTimer: NodeJS.Timeout | undefined;
  private downTimerAt = 0;

  constructor(
    private readonly settings: ResolvedPoolOptions,
    private readonly counters: PoolCounters,
    private readonly pool: LendingPool,
  ) {}

  /** Idle connections now. */
  get idleCount(): number {
    return this.idle.length;
  }

  /** Requests waiting now. */
  get waitingCount(): number {
    return this.waiting.length;
  }

  /** When the oldest request still waiting began to wait (monotonic ms); undefined if none waits. */
  oldestWaitingSince(): number | undefined {
    for (const waiter of this.waiting) return waiter.enqueuedAt;
    return undefined;
  }

  /** Idle connections, the longest idle first. */
  idleConnections(): Iterable<PoolConnection> {
    return this.idle;
  }

  /** The next idle connection, for a request: the oldest returned with 'fifo', the latest with 'lifo'. */
  takeIdle(): PoolConnection {
    return (this.settings.order === 'fifo' ? this.idle.popFront() : this.idle.popBack()) as PoolConnection;
  }

  /** The connection idle the longest, out of the deque (to close it). */
  takeOldest(): PoolConnection {
    return this.idle.popFront() as PoolConnection;
  }

  /** Takes this idle connection out of the deque (for a check, to close it); false if it is not there. */
  remove(connection: PoolConnection): boolean {
    return this.idle.remove(connection);
  }

  /** Takes an idle connection out of the deque for a check or to close it; false if it is no longer idle. */
  takeForCheck(connection: PoolConnection): boolean {
    if (connection.state !== 'idle' || !this.idle.remove(connection)) return false;
    connection.moveTo('checking');
    return true;
  }

  /** Empties the idle deque (the pool is closing). */
  drainIdle(): PoolConnection[] {
    return this.idle.drain();
  }

  /** A ready connection: to the oldest waiter, checked out, else back to the idle deque. */
  offer(connection: PoolConnection, now: number): void {
    const waiter = this.waiting.shift();
    if (waiter) {
      if (waiter.timer) clearTimeout(waiter.timer);
      this.disarmTimersIfIdle();
      this.counters.requestsWaitMs += now - waiter.enqueuedAt;
      waiter.resolve(this.pool.checkOut(connection, waiter.origin, now));
      return;
    }
    connection.moveTo('idle');
    connection.idleSince = now;
    this.idle.pushBack(connection);
  }

  /**
   * Queues a request until a connection is offered, it times out, or the server is found
   * down. A request `first` in line is one that had an idle connection which failed its
   * check: it was admitted before anyone now waiting, so it goes ahead of them and
   * `maxWaiting` does not turn it away.
   */
  wait(timeoutMs: number, origin: string | undefined, first = false, now = monotonicNow()): Promise<PooledClient> {
    const { maxWaiting } = this.settings;
    if (!first && maxWaiting > 0 && this.waiting.length >= maxWaiting) {
      this.counters.requestsErrors++;
      return Promise.reject(new TooManyRequestsError(this.settings.name,
        `${this.waiting.length} requests are already waiting for a connection (maxWaiting ${maxWaiting}); ` +
        'the database is saturated: lower the load or raise max / maxWaiting'));
    }
    this.counters.requestsQueued++;
    return new Promise<PooledClient>((resolve, reject) => {
      const waiter = new Waiter<PooledClient>(now, now + timeoutMs, resolve, reject);
      waiter.origin = origin;
      if (first) this.waiting.pushFront(waiter);
      else this.waiting.push(waiter);
      // The shared timer serves waiters in deadline order, which only the default
      // timeout keeps, queued at the back.
      if (!first && timeoutMs === this.settings.acquireTimeoutMs) {
        this.armQueueTimer(waiter.deadline);
      } else {
        waiter.timer = setTimeout(() => this.timeOut(waiter), timeoutMs);
      }
      if (this.pool.isDown()) this.armDownTimer(now + this.settings.unavailableTimeoutMs);
      this.pool.demand();
    });
  }

  /** The pool is closing: every waiter fails with `PoolClosedError`, every timer stops. */
  close(): void {
    const closed = new PoolClosedError(this.settings.name, 'the pool was closed while this request waited');
    for (const waiter of this.waiting.drain()) {
      clearTimeout(waiter.timer);
      this.counters.requestsErrors++;
      waiter.reject(closed);
    }
    this.disarmTimersIfIdle();
  }

  /**
   * While the server is down, a waiter gives up after `unavailableTimeoutMs` with the
   * pool's `unavailableError` (the server's reason), instead of waiting its whole acquire
   * timeout: a web app answers 503 at once. A restart shorter than that is ridden out,
   * since the maintainer's attempts come often while requests wait. Called when an
   * attempt fails, and by the down timer.
   */
  failWaitersWhileDown(): void {
    const bound = this.settings.unavailableTimeoutMs;
    if (bound <= 0 || !this.pool.isDown()) return;
    const now = monotonicNow();
    // A scan, not a stop at the first waiter still in time: one put back first in line
    // may be younger than those behind it. Only while the server is down.
    let nextDueAt = Infinity;
    for (const waiter of this.waiting) {
      const dueAt = waiter.enqueuedAt + bound;
      if (dueAt > now) {
        nextDueAt = Math.min(nextDueAt, dueAt);
        continue;
      }
      this.waiting.remove(waiter);
      clearTimeout(waiter.timer);
      this.counters.requestsErrors++;
      this.counters.requestsWaitMs += now - waiter.enqueuedAt;
      waiter.reject(this.pool.unavailableError(Math.round(now - waiter.enqueuedAt)));
    }
    if (nextDueAt !== Infinity) this.armDownTimer(nextDueAt);
    this.disarmTimersIfIdle();
  }

  private armDownTimer(at: number): void {
    if (this.settings.unavailableTimeoutMs <= 0) return;
    if (this.downTimer && this.downTimerAt <= at) return;
    clearTimeout(this.downTimer);
    this.downTimerAt = at;
    // Only the timer's own callback forgets it: a failed attempt that calls
    // failWaitersWhileDown while it is armed must find it, or it is orphaned, runs on
    // and keeps the process alive after close().
    this.downTimer = setTimeout(() => {
      this.downTimer = undefined;
      this.failWaitersWhileDown();
    }, Math.max(0, at - monotonicNow()));
  }

  /**
   * One timer for every waiter on the default timeout, not one each: they join the FIFO
   * queue in deadline order, so the first of them is always the next to expire. A timer
   * per waiter costs an object and a timer-list insert and removal per wait, which shows
   * as a slower pool once thousands wait. Waiters with a timeout of their own keep a timer.
   */
  private armQueueTimer(deadline: number): void {
    if (this.queueTimer) return;
    this.queueTimer = setTimeout(() => this.expireWaiters(), Math.max(0, deadline - monotonicNow()));
  }

  /** The queue timer fired: time out the default waiters past their deadline, re-arm for the next. */
  private expireWaiters(): void {
    this.queueTimer = undefined;
    const now = monotonicNow();
    for (const waiter of this.waiting) {
      if (waiter.timer) continue;
      if (waiter.deadline > now) return this.armQueueTimer(waiter.deadline);
      this.timeOut(waiter);
    }
  }

  /**
   * No one waits: a timer left armed would keep the process alive for nothing (the down
   * timer too: waiters served or cancelled while the server is down leave it armed).
   */
  private disarmTimersIfIdle(): void {
    if (this.waiting.length !== 0) return;
    if (this.queueTimer) {
      clearTimeout(this.queueTimer);
      this.queueTimer = undefined;
    }
    if (this.downTimer) {
      clearTimeout(this.downTimer);
      this.downTimer = undefined;
    }
  }

  private timeOut(waiter: Waiter<PooledClient>): void {
    if (!this.waiting.remove(waiter)) return;
    this.disarmTimersIfIdle();
    const now = monotonicNow();
    this.counters.requestsTimeouts++;
    this.counters.requestsErrors++;
    this.counters.requestsWaitMs += now - waiter.enqueuedAt;
    waiter.reject(this.pool.isDown()
      ? this.pool.unavailableError(Math.round(now - waiter.enqueuedAt))
      : this.pool.timeoutError(Math.round(waiter.deadline - waiter.enqueuedAt), this.waiting.length));
  }
}
