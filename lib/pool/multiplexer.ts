import type { Client, QueryConfig, QueryResult } from 'pg';
import { connectionOf } from './checkout-handle.js';
import { monotonicNow } from './clock.js';
import { PoolTimeoutError, TooManyRequestsError } from './errors.js';
import type { PooledClient } from './pooled-client.js';
import type { PoolCounters } from './pool-stats.js';

/** How statement-level work shares connections (the `multiplex` option, resolved). */
export interface MultiplexSettings {
  /** Statements written on one shared connection and not yet answered, at most. */
  depth: number;
  /** Shared connections at most (they count towards `max`, as checkouts do); undefined: `max`. */
  connections: number | undefined;
  /** A statement outstanding longer than this marks its connection slow: new ones go elsewhere. */
  slowMs: number;
}

/** What the multiplexer needs of its pool. */
export interface MultiplexedPool {
  readonly name: string;
  readonly acquireTimeoutMs: number;
  readonly maxWaiting: number;
  readonly counters: PoolCounters;
  /** The pool's `max` now (the default bound on shared connections). */
  readonly max: number;
  /** A checkout, as any borrower's: the shared connections wait in the same FIFO line. */
  acquire(): Promise<PooledClient>;
  /** Requests waiting for a connection now, the multiplexer's own included. */
  waitingCount(): number;
  /** Runs a statement the plain way: a connection of its own for its duration. */
  runAlone(config: QueryConfig): Promise<QueryResult>;
  /** Idle connections now: a shared connection can be had at once. */
  idleCount(): number;
  /** Whether another pool waits for the connection budget this pool shares: lanes then go back. */
  budgetWanted(): boolean;
}

/**
 * One shared connection: a checked-out client in pg's pipeline mode, on which statements
 * are written without waiting for the ones before them (each with its own Sync, so an
 * error fails its own statement only).
 */
class Lane {
  inFlight = 0;
  /** When each outstanding statement was written, oldest first (answers come in order). */
  readonly sentAt: number[] = [];
  /** The text of each outstanding statement, in the same order: to learn how long each kind takes. */
  readonly texts: string[] = [];
  /** Whether each outstanding statement was counted in `slowOutstanding` when written. */
  readonly slowFlags: boolean[] = [];
  /** Outstanding statements known to be slow (see `Multiplexer.durations`). */
  slowOutstanding = 0;
  /** When the last answer came: the next statement's service began then, or when it was sent. */
  lastAnswerAt = 0;
  /** No new statements: given back once its last one is answered. */
  draining = false;
  broken: Error | undefined;
  /** Its listener on the client's `error`, removed when the lane goes back. */
  onError: ((error: Error) => void) | undefined;

  constructor(readonly handle: PooledClient, readonly client: Client) {}

  /** How busy it looks to a new statement: a slow statement at its head counts as a full lane. */
  load(now: number, settings: MultiplexSettings): number {
    const slow = this.slowOutstanding > 0 || (this.sentAt.length > 0 && now - Math.max(this.sentAt[0], this.lastAnswerAt) > settings.slowMs);
    return slow ? this.inFlight + settings.depth : this.inFlight;
  }
}

interface Pending {
  config: QueryConfig;
  resolve: (result: QueryResult) => void;
  reject: (error: Error) => void;
  deadline: number;
}

/** Statements whose last service time was below this pipeline onto busy shared connections; others spread first. */
const PIPELINE_BELOW_MS = 0.75;

/** How many statement texts the multiplexer remembers the duration of. */
const MAX_TEXTS_REMEMBERED = 1_000;

/** Statements that may share a connection: they change no session or transaction state. */
const SHAREABLE = new Set(['select', 'insert', 'update', 'delete', 'with', 'values', 'table', 'merge']);

/**
 * The first keyword of a statement, past whitespace, line comments and opening parentheses:
 * what decides whether it may go on a shared connection.
 */
export function firstKeyword(text: string): string {
  // Block comments are not skipped: PostgreSQL nests them, and a statement hidden behind
  // one (`/* a /* b */ SELECT */ SET ...`) must not pass for a SELECT. Such text is not shared.
  const match = /^(?:\s|\(|--[^\n]*(?:\n|$))*([A-Za-z]+)/.exec(text);
  return match ? match[1].toLowerCase() : '';
}

/**
 * Whether `pool.query()` may put this statement on a shared connection: plain
 * statement-level SQL (SELECT, INSERT, UPDATE, DELETE, WITH, VALUES, TABLE, MERGE), not a
 * cursor, not `rows`, not a named statement. Everything else (BEGIN, SET, LISTEN, COPY,
 * CALL, DO...) gets a connection of its own, where its effect cannot reach anyone else.
 */
export function isShareable(config: QueryConfig & { rows?: unknown; callback?: unknown }): boolean {
  return typeof config.text === 'string' && config.name === undefined && config.rows === undefined && config.callback === undefined &&
    SHAREABLE.has(firstKeyword(config.text)) && !SEVERAL_COMMANDS.test(config.text);
}

/**
 * A `;` before the end: perhaps several commands (`SELECT 1; SET ROLE x`), which the simple
 * protocol would run, one of them able to change the shared session. Such text goes to a
 * connection of its own (a `;` inside a string literal is sent there too: safe, if slower).
 */
const SEVERAL_COMMANDS = /;\s*\S/;

/**
 * Multiplexing (the `multiplex` option): `pool.query()` statements written onto a few
 * shared connections, pipelined, each to the connection with the least outstanding work.
 * Shared connections are checkouts of the pool's like any other: they count towards
 * `max`, wait in its FIFO line, go through its return checks, and are given back as soon
 * as a checkout is waiting for a connection and their last statement is answered.
 */
export class Multiplexer {
  private readonly lanes: Lane[] = [];
  private readonly queue: Pending[] = [];
  /** Shared connections being acquired. */
  private opening = 0;
  private queueTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /**
   * How long each statement text took the server last time (its service time, not its
   * wait in the pipeline), for the texts seen lately: a statement known to be slow marks
   * its lane slow from the moment it is written, so fast ones are not queued behind it.
   */
  private readonly durations = new Map<string, number>();
  /** Statements running alone (see `run`). */
  private alone = 0;

  constructor(private readonly pool: MultiplexedPool, private readonly settings: MultiplexSettings) {}

  /** Shared connections held now. */
  get connections(): number {
    return this.lanes.length;
  }

  /** Statements written on shared connections and not yet answered. */
  get inFlight(): number {
    let total = 0;
    for (const lane of this.lanes) total += lane.inFlight;
    return total;
  }

  /** Runs one statement on a shared connection, waiting (FIFO, up to the acquire timeout) for room. */
  run(config: QueryConfig): Promise<QueryResult> {
    // Nothing else in flight: there is nothing to pipeline with, and the plain way (a
    // connection for the statement's duration) is cheaper than setting up a shared one.
    // A statement that comes while this one runs goes onto a shared connection.
    if (this.alone === 0 && this.lanes.length === 0 && this.opening === 0) {
      this.alone++;
      return this.pool.runAlone(config).then((result) => {
        this.alone--;
        return result;
      }, (error: unknown) => {
        this.alone--;
        throw error;
      });
    }
    this.pool.counters.requestsNum++;
    const lane = this.pick(config.text);
    if (lane && this.queue.length === 0) return this.send(lane, config);
    const { maxWaiting } = this.pool;
    if (maxWaiting > 0 && this.queue.length >= maxWaiting) {
      this.pool.counters.requestsErrors++;
      return Promise.reject(new TooManyRequestsError(this.pool.name,
        `${this.queue.length} statements are already waiting for a shared connection (maxWaiting ${maxWaiting})`));
    }
    this.pool.counters.requestsQueued++;
    return new Promise<QueryResult>((resolve, reject) => {
      this.queue.push({ config, resolve, reject, deadline: monotonicNow() + this.pool.acquireTimeoutMs });
      this.armQueueTimer();
      this.grow();
    });
  }

  /** The pool is closing: queued statements fail, shared connections go back once answered. */
  close(error: Error): void {
    this.closed = true;
    clearTimeout(this.queueTimer);
    for (const pending of this.queue.splice(0)) pending.reject(error);
    for (const lane of [...this.lanes]) {
      lane.draining = true;
      this.giveBackIfDone(lane);
    }
  }

  /**
   * The lane for a new statement: the least loaded with room; a lane with nothing in
   * flight at once. Opens another shared connection (in the background) when every
   * lane has work and the bound allows, so load spreads as it grows.
   */
  private pick(text: string): Lane | undefined {
    const now = monotonicNow();
    let best: Lane | undefined;
    let bestLoad = Infinity;
    for (const lane of this.lanes) {
      if (lane.draining || lane.inFlight >= this.settings.depth) continue;
      // Its connection failed and pg has not told us yet, or is about to.
      if (connectionOf(lane.handle)?.isLost) {
        this.retire(lane);
        continue;
      }
      const load = lane.load(now, this.settings);
      if (load < bestLoad) {
        best = lane;
        bestLoad = load;
        if (load === 0) return lane;
      }
    }
    const canGrow = this.canGrow();
    this.grow();
    // A statement not known to be fast spreads before it pipelines: while an idle
    // connection can be had at once, it waits for it (a moment) rather than queue behind
    // others' on a busy one, where it would run only after them. Fast ones (SELECT 1, a
    // row by key) gain more from riding a busy connection's pipeline.
    const known = this.durations.get(text);
    if (canGrow && this.pool.idleCount() > 0 && (known === undefined || known >= PIPELINE_BELOW_MS)) return undefined;
    // A lane whose head is slow is used only when there is no other way.
    if (best && bestLoad >= this.settings.depth && this.opening > 0) return undefined;
    return best;
  }

  private canGrow(): boolean {
    return !this.closed && this.lanes.length + this.opening < (this.settings.connections ?? this.pool.max);
  }

  /** Opens one more shared connection if every lane is busy and the bound allows. */
  private grow(): void {
    if (!this.canGrow()) return;
    // One at a time: a burst does not take every connection from the checkouts at once.
    if (this.opening > 0) return;
    this.opening++;
    this.pool.acquire().then((handle) => {
      this.opening--;
      const client = connectionOf(handle)?.client as Client;
      if (this.closed) {
        handle.release();
        return;
      }
      setPipeline(client, true);
      const lane = new Lane(handle, client);
      lane.onError = (error: Error) => {
        lane.broken = error;
        this.retire(lane);
      };
      client.once('error', lane.onError);
      this.lanes.push(lane);
      this.flush();
      // It came when the burst that asked for it was over: back it goes.
      this.releaseWhenIdle(lane);
    }, (error: Error) => {
      this.opening--;
      // The server is down or the pool closed: statements no lane can take fail with the
      // reason now rather than at their deadline. A timeout says only that the pool was
      // busy: the statements keep their own deadlines, and another shared connection is asked for.
      if (error instanceof PoolTimeoutError) {
        if (this.queue.length > 0) this.grow();
        return;
      }
      if (this.lanes.length === 0) {
        for (const pending of this.queue.splice(0)) {
          this.pool.counters.requestsErrors++;
          pending.reject(error);
        }
      }
    });
  }

  private send(lane: Lane, config: QueryConfig): Promise<QueryResult> {
    lane.inFlight++;
    lane.sentAt.push(monotonicNow());
    lane.texts.push(config.text);
    const slow = (this.durations.get(config.text) ?? 0) > this.settings.slowMs;
    lane.slowFlags.push(slow);
    if (slow) lane.slowOutstanding++;
    const sent = lane.handle.query(config);
    return sent.then((result) => {
      this.answered(lane);
      return result;
    }, (error: unknown) => {
      this.answered(lane);
      throw error;
    });
  }

  private answered(lane: Lane): void {
    lane.inFlight--;
    const now = monotonicNow();
    const sentAt = lane.sentAt.shift() as number;
    const text = lane.texts.shift() as string;
    if (lane.slowFlags.shift()) lane.slowOutstanding--;
    // Answers come in order: this one's service began when it was sent or when the one before was answered.
    this.learn(text, now - Math.max(sentAt, lane.lastAnswerAt));
    lane.lastAnswerAt = now;
    // A checkout (not a shared connection of ours) waits, here or in another pool sharing the
    // budget, or the connection is past its lifetime: this lane takes nothing new and goes back (for the checkout, or to be
    // replaced) once its last statement is answered.
    const connection = connectionOf(lane.handle);
    if (this.pool.waitingCount() > this.opening || this.pool.budgetWanted() || (connection && connection.expiresAt <= monotonicNow())) {
      lane.draining = true;
    }
    this.releaseWhenIdle(lane);
    this.flush();
  }

  /**
   * A lane with nothing in flight and nothing queued goes back to the pool at once, where
   * idle limits, lifetimes and acquire checks apply, as a plain `pool.query()`'s
   * connection would: a caller issuing one statement at a time sees the plain pool's
   * behaviour, and pipelining happens only when statements overlap.
   */
  private releaseWhenIdle(lane: Lane): void {
    if (lane.inFlight === 0 && this.queue.length === 0) lane.draining = true;
    this.giveBackIfDone(lane);
  }

  private learn(text: string, serviceMs: number): void {
    // Bounded: an app with endless distinct texts (values spliced into SQL) forgets and starts over.
    if (this.durations.size >= MAX_TEXTS_REMEMBERED && !this.durations.has(text)) this.durations.clear();
    this.durations.set(text, serviceMs);
  }

  /** Queued statements onto lanes with room, in order. */
  private flush(): void {
    while (this.queue.length > 0) {
      const lane = this.pick(this.queue[0].config.text);
      if (!lane) return;
      const pending = this.queue.shift() as Pending;
      this.send(lane, pending.config).then(pending.resolve, pending.reject);
    }
    if (this.queue.length === 0) {
      clearTimeout(this.queueTimer);
      this.queueTimer = undefined;
    }
  }

  /** A lane that is draining or broken goes back to the pool once nothing is in flight on it. */
  private giveBackIfDone(lane: Lane): boolean {
    if (!(lane.draining || lane.broken) || lane.inFlight > 0) return false;
    const index = this.lanes.indexOf(lane);
    if (index < 0) return false;
    this.lanes.splice(index, 1);
    setPipeline(lane.client, false);
    if (lane.onError) lane.client.off('error', lane.onError);
    lane.handle.release(lane.broken ?? false);
    return true;
  }

  /** A lane whose connection failed: every statement on it has failed (pg fails them); no new ones. */
  private retire(lane: Lane): void {
    lane.draining = true;
    this.giveBackIfDone(lane);
  }

  private armQueueTimer(): void {
    if (this.queueTimer || this.queue.length === 0) return;
    const wait = Math.max(0, this.queue[0].deadline - monotonicNow());
    this.queueTimer = setTimeout(() => {
      this.queueTimer = undefined;
      const now = monotonicNow();
      while (this.queue.length > 0 && this.queue[0].deadline <= now) {
        const pending = this.queue.shift() as Pending;
        this.pool.counters.requestsTimeouts++;
        this.pool.counters.requestsErrors++;
        pending.reject(new PoolTimeoutError(this.pool.name, `timeout exceeded when trying to connect: no room on a shared connection ` +
          `within ${this.pool.acquireTimeoutMs} ms (${this.lanes.length} shared, ${this.inFlight} statements in flight)`));
      }
      this.armQueueTimer();
    }, wait);
    this.queueTimer.unref();
  }
}

/**
 * pg reads `pipeline` at each send, so a client with nothing queued can switch: on while
 * it is a shared connection, off again before it goes back to the pool (where a checkout
 * may use cursors, which pipeline mode refuses). Typed read-only by @types/pg.
 */
function setPipeline(client: Client, on: boolean): void {
  (client as { pipeline: boolean }).pipeline = on;
}
