import { monotonicNow } from './clock.js';
import { TimeoutError } from './with-timeout.js';

/**
 * What a pool is to the budget it shares: something that may want a connection, and
 * that may give an idle one up for another pool.
 */
export interface BudgetMember {
  /** The pool's name, for the budget's stats and errors. */
  readonly name: string;
  /** Connections the pool keeps open whatever the demand: the pools' mins must fit in the budget together. */
  readonly min: number;
  /** When the pool last handed out a connection (monotonic ms): who gives up idle ones first. */
  readonly lastUsedAt: number;
  /**
   * The budget holds a permit for this pool, which queued for one: returns true if the
   * pool opens a connection with it (the permit is then the pool's until that connection
   * closes or the attempt fails), false if it no longer needs one.
   */
  grant(): boolean;
  /**
   * Another pool waits for the budget: close one idle connection if this pool can spare
   * one (above its `min`, nobody of its own waiting). Returns whether it did; the
   * connection's permit is then back in the budget, which hands it on.
   */
  yieldIdle(): boolean;
}

/** A snapshot of a budget, for health checks and stats. */
export interface ConnectionBudgetStats {
  /** The most connections the pools sharing the budget may have open (and being opened) together. */
  max: number;
  /** Permits held now: connections open or being opened by the pools sharing it. */
  inUse: number;
  /** Pools waiting for a permit now, in the order they asked. */
  waiting: number;
  /** Idle connections closed so far to let another pool open one. */
  reclaimed: number;
}

/**
 * One bound on the connections of several pools together: every connection a pool opens
 * takes a permit first and gives it back when it closes, so the pools sharing a budget
 * never hold more than `max` connections to the server, however many of them are busy.
 * What the server sees is bounded by the budget, not by pools x max (a database per
 * tenant, where `Map<tenant, pg.Pool>` opens `tenants x max`).
 *
 * A pool that finds the budget spent queues for a permit, FIFO among pools, while its
 * requests keep waiting in its own FIFO queue under their own `acquireTimeoutMs`: waiting
 * for the budget is waiting for a connection, and times out the same way. To make room,
 * the budget asks the other pools, least recently used first, to close an idle
 * connection, and a pool whose connection comes back while another pool waits for the
 * budget closes it rather than keeping it idle: connections move to where the demand is.
 *
 * Taking and giving are O(1); only reclaiming, the slow path that precedes opening a new
 * connection anyway, scans the members.
 */
export class ConnectionBudget {
  /** The most connections the pools sharing this budget may have open (or being opened) together. */
  readonly max: number;
  private held = 0;
  private reclaimedCount = 0;
  /** Pools waiting for a permit, each at most once, in the order they asked, with when they asked. */
  private readonly queue = new Map<BudgetMember, number>();
  private readonly members = new Set<BudgetMember>();
  /** Set while permits are handed on, so a grant that gives one back does not recurse. */
  private granting = false;

  constructor(max: number) {
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError(`ConnectionBudget: max must be an integer >= 1, not ${String(max)}`);
    }
    this.max = max;
  }

  /** Permits held now. */
  get inUse(): number {
    return this.held;
  }

  /** Whether some pool waits for a permit: a pool then gives up a connection rather than keep it idle. */
  get hasWaiters(): boolean {
    return this.queue.size > 0;
  }

  /**
   * Since when the first pool in the queue has waited (monotonic ms), if one waits: a
   * returned connection goes to it rather than to a later request of its own pool, so
   * requests are served first come first served across the pools, and none starves.
   */
  waitingSince(): number | undefined {
    for (const since of this.queue.values()) return since;
    return undefined;
  }

  /** A snapshot: max, permits in use, pools waiting, connections reclaimed so far. */
  stats(): ConnectionBudgetStats {
    return { max: this.max, inUse: this.held, waiting: this.queue.size, reclaimed: this.reclaimedCount };
  }

  /**
   * A pool joins the budget (when it opens). Returns why it may not, if the pools' `min`
   * would no longer fit in the budget together: a pool sitting on idle `min` connections
   * would leave the others nothing.
   */
  join(member: BudgetMember): string | undefined {
    const refusal = this.admits(member, member.min);
    if (refusal === undefined) this.members.add(member);
    return refusal;
  }

  /** Why `member` may not keep `min` connections open in this budget, if it may not. */
  admits(member: BudgetMember, min: number): string | undefined {
    let others = 0;
    for (const m of this.members) if (m !== member) others += m.min;
    if (others + min <= this.max) return undefined;
    return `min ${min} does not fit in the shared connection budget (max ${this.max}, of which the other pools keep ${others} open ` +
      'with their own min); lower min (0 suits pools sharing a budget) or raise the budget';
  }

  /** A pool leaves the budget (when it closes): it no longer waits, nor is asked for connections. */
  leave(member: BudgetMember): void {
    this.members.delete(member);
    this.queue.delete(member);
  }

  /**
   * A permit for a connection a pool opens outside its lending (its LISTEN session):
   * waits its turn, first come first served with the pools, up to `timeoutMs`; rejects
   * with a `TimeoutError` then. The caller gives it back with `give()` when the session ends.
   */
  permit(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      let timer: NodeJS.Timeout | undefined;
      const waiter: BudgetMember = {
        name: 'permit',
        min: 0,
        lastUsedAt: Number.POSITIVE_INFINITY,
        grant: () => {
          if (settled) return false;
          settled = true;
          clearTimeout(timer);
          resolve();
          return true;
        },
        yieldIdle: () => false,
      };
      if (this.take(waiter)) {
        settled = true;
        resolve();
        return;
      }
      timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        this.queue.delete(waiter);
        reject(new TimeoutError(`no connection permit within ${timeoutMs} ms: the shared connection budget (max ${this.max}) was spent`));
      }, timeoutMs);
    });
  }

  /**
   * A permit for one connection, now, if one is free and no pool queued before this one;
   * otherwise the pool queues (once) for `grant()`, and the budget asks the others for room.
   */
  take(member: BudgetMember): boolean {
    if (this.held < this.max && this.queue.size === 0) {
      this.held++;
      return true;
    }
    if (!this.queue.has(member)) this.queue.set(member, monotonicNow());
    this.reclaim(member);
    return false;
  }

  /** A connection (or an attempt) that held a permit has ended: the permit goes to the first pool waiting. */
  give(): void {
    this.held--;
    this.handOn();
  }

  /** Free permits to queued pools, first come first served; a pool that no longer needs one passes. */
  private handOn(): void {
    if (this.granting) return;
    this.granting = true;
    try {
      while (this.held < this.max && this.queue.size > 0) {
        const first = this.queue.keys().next().value as BudgetMember;
        this.queue.delete(first);
        this.held++;
        if (!first.grant()) this.held--;
      }
    } finally {
      this.granting = false;
    }
  }

  /**
   * Asks the least recently used pools, other than the one waiting, for an idle
   * connection: one per pool waiting beyond what free permits cover.
   */
  private reclaim(waiting: BudgetMember): void {
    let needed = this.queue.size - (this.max - this.held);
    if (needed <= 0) return this.handOn();
    const donors = [...this.members].filter((m) => m !== waiting).sort((a, b) => a.lastUsedAt - b.lastUsedAt);
    for (const donor of donors) {
      if (needed <= 0) break;
      // Its permit comes back through give(), which hands it to the first pool waiting.
      while (needed > 0 && donor.yieldIdle()) {
        this.reclaimedCount++;
        needed--;
      }
    }
  }
}
