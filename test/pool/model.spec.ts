import { performance as hostPerformance } from 'node:perf_hooks';
import { jest } from '@jest/globals';
import fc from 'fast-check';
import {
  PgPool,
  PoolClosedError,
  PoolOpenError,
  PoolTimeoutError,
  PoolUnavailableError,
  PoolUsageError,
  TooManyRequestsError,
  type PooledClient,
  type PoolStats,
  type RemoveReason,
} from '../../lib/index.js';
import { FaultServer, type FaultClient, type StatementFault } from '../support/fault-client.js';

/**
 * Model-based randomized test of the pool engine (fast-check `fc.commands`), against the
 * fake server of test/support/fault-client.ts whose faults the commands control. Each
 * step does one thing a user, the clock or the server does; after every step the pool is
 * held to what a user relies on:
 *
 * - size: no connection attempt ever takes the pool above `max`; after `resize` lowers
 *   it, the excess goes as soon as it is neither checked out nor still being opened;
 * - waiters: none served or failed more than SLACK_MS past its deadline, none timed out
 *   before it, FIFO among those that queued with the same timeout, none refused by
 *   `maxWaiting` unless that many were waiting, none waiting while a connection idles;
 * - hand-out: no client dead, ended, busy (`readyForQuery` false), inside a transaction,
 *   or already checked out;
 * - accounting: `checkedOutCount` equals what users hold, a second release() throws, the
 *   counters add up and never go back, a connection is removed only for a reason that
 *   holds (lifetime and idle time by the monotonic clock; never a healthy one as broken),
 *   a keepalive pass never takes every idle connection at once;
 * - bounds: the pool's own work (checks, return inspection, configure) ends within
 *   `connectTimeoutMs` (10 s when 0), close() within its timeout plus 1 s per socket
 *   (docs/engine.md), with nothing left open and every waiter failed with PoolClosedError;
 * - recovery: once the server heals, the pool serves a query again and gets back to min.
 *
 * Time is jest's fake clock (timers, `Date`, `performance.now`); the wall clock is also
 * stepped alone (NTP), which must change nothing. Nothing sleeps, and the engine's
 * Math.random is seeded per run, so a seed replays a run exactly.
 *
 * Budget: CI_RUNS runs per property, or FUZZ_RUNS (`npm run fuzz`: 10,000). A failure
 * prints the seed, path and replay path: replay it with FUZZ_SEED, FUZZ_PATH and
 * FUZZ_REPLAY_PATH (fast-check needs the last one to replay a shrunk command list).
 */

/** How late past a deadline a waiter may still be served or failed: the fake network's latencies are 0-3 ms. */
const SLACK_MS = 5;
/** `close()` gives each socket this long to shut after its Terminate, then destroys it (docs/engine.md). */
const END_BOUND_MS = 1_000;
/** The bound on the pool's own work when `connectTimeoutMs` is 0 (docs/engine.md: "bounded by 10 s"). */
const DEFAULT_WORK_BOUND_MS = 10_000;
/** The fake wall clock starts here; only differences of the monotonic clock matter. */
const EPOCH = Date.UTC(2030, 0, 1);
/**
 * CI budget: runs per property. About 15 s for the file alone on this 2-core machine (a
 * run is 5-10 ms of real time); well under 40 s with the rest of the suite beside it.
 */
const CI_RUNS = { calm: 800, faults: 1_200 };
const NULL_LOGGER = { log(): void {}, warn(): void {}, error(): void {}, debug(): void {} };

/** The statements the test's users and hooks send, so faults can target them. */
const SQL = {
  user: "SELECT 'user'",
  boom: "SELECT 'boom'",
  probe: "SELECT 'probe'",
  check: 'SELECT 1',
  rollback: 'ROLLBACK',
  reset: 'DISCARD ALL',
  configure: "SET application_name = 'model'",
};

// ---------------------------------------------------------------------------------------
// The scenario: one pool's configuration and the fake network's latencies.
// ---------------------------------------------------------------------------------------

type ConfigureHook = 'none' | 'set' | 'set-tolerant' | 'begin';
type ResetHook = 'none' | 'discard' | 'discard-tolerant' | 'begin';

interface Scenario {
  min: number;
  max: number;
  acquireTimeoutMs: number;
  maxWaiting: number;
  maxLifetimeMs: number;
  maxIdleMs: number;
  keepaliveIntervalMs: number;
  connectTimeoutMs: number;
  reconnectDelayMs: number;
  reconnectMaxDelayMs: number;
  unavailableTimeoutMs: number;
  leakDetectionMs: number;
  checkOnAcquire: boolean;
  order: 'fifo' | 'lifo';
  /** configure: nothing, one SET, one SET whose failure is ignored, or a BEGIN left open (a user bug the pool must catch). */
  configure: ConfigureHook;
  /** reset: nothing, DISCARD ALL, DISCARD ALL whose failure is ignored, or a BEGIN left open. */
  reset: ResetHook;
  scheduleMaintenance: boolean;
  opening: 'lazy' | 'open' | 'open-wait';
  connectMs: number;
  queryMs: number;
  readyAfterErrorMs: number;
  closeAfterFatalMs: number;
  randomSeed: number;
}

function scenarioArb(withFaults: boolean): fc.Arbitrary<Scenario> {
  return fc.record({
    max: fc.integer({ min: 1, max: 4 }),
    min: fc.integer({ min: 0, max: 4 }),
    acquireTimeoutMs: fc.constantFrom(0, 20, 50, 200),
    maxWaiting: fc.constantFrom(0, 0, 2),
    maxLifetimeMs: fc.constantFrom(300, 2_000, 3_600_000),
    maxIdleMs: fc.constantFrom(100, 1_000, 600_000),
    keepaliveIntervalMs: fc.constantFrom(0, 50, 300),
    connectTimeoutMs: fc.constantFrom(0, 30, 200),
    reconnectDelayMs: fc.constantFrom(5, 50),
    reconnectMaxDelayMs: fc.constantFrom(50, 200),
    unavailableTimeoutMs: fc.constantFrom(0, 30, 3_000),
    leakDetectionMs: fc.constantFrom(0, 0, 100),
    checkOnAcquire: fc.boolean(),
    order: fc.constantFrom('fifo' as const, 'lifo' as const),
    configure: withFaults ? fc.constantFrom<ConfigureHook>('none', 'set', 'set-tolerant', 'begin') : fc.constantFrom<ConfigureHook>('none', 'set'),
    reset: withFaults ? fc.constantFrom<ResetHook>('none', 'discard', 'discard-tolerant', 'begin') : fc.constantFrom<ResetHook>('none', 'discard'),
    scheduleMaintenance: fc.boolean(),
    opening: fc.constantFrom('lazy' as const, 'open' as const, 'open-wait' as const),
    connectMs: fc.constantFrom(0, 1, 3),
    queryMs: fc.constantFrom(0, 1, 2),
    readyAfterErrorMs: fc.constantFrom(0, 1),
    closeAfterFatalMs: fc.constantFrom(0, 2),
    randomSeed: fc.integer(),
  }).map((s) => ({ ...s, min: Math.min(s.min, s.max), reconnectMaxDelayMs: Math.max(s.reconnectMaxDelayMs, s.reconnectDelayMs) }));
}

/** A small seeded PRNG (mulberry32): the engine's jitter replays with the run. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

const ignore = (): void => undefined;

// ---------------------------------------------------------------------------------------
// The world: the pool, its fake server, and the reference model of what users saw.
// ---------------------------------------------------------------------------------------

interface RequestRecord {
  seq: number;
  timeoutMs: number;
  issuedAt: number;
  /** It joined the waiting queue when made (stats.requestsQueued moved): FIFO applies to it. */
  queuedAtIssue: boolean;
  outcome: 'pending' | 'served' | 'failed';
  settledAt?: number;
  error?: Error;
}

interface Checkout {
  request: RequestRecord;
  client: PooledClient;
  fake: FaultClient;
  servedAt: number;
  /** When the user released it, or close() took the connection from under them. */
  endedAt?: number;
}

interface BackgroundTask {
  what: string;
  startedAt: number;
  /** How long it may run. */
  boundMs: number;
  settled: boolean;
}

const COUNTERS = ['requestsNum', 'requestsQueued', 'requestsWaitMs', 'requestsErrors', 'requestsTimeouts', 'returnsBad',
  'connectionsNum', 'connectionsMs', 'connectionsErrors', 'connectionsLost', 'usageMs', 'leaksDetected', 'failovers'] as const;

/** Why a client must not be handed out, if it must not. */
function unfitness(fake: FaultClient): string | undefined {
  if (fake._ending || fake._ended) return 'it had been ended (client.end())';
  if (fake.reportedDead) return `it had reported its own death (${fake.troubles.map((t) => t.what).join('; ') || 'error/end'})`;
  if (fake.sessionState !== 'connected') return `its session is ${fake.sessionState}`;
  if (fake.readyForQuery !== true) return 'a statement was still in flight on it (readyForQuery false)';
  const status = fake.getTransactionStatus();
  if (status !== 'I') return `it was inside a transaction (status ${status})`;
  return undefined;
}

class World {
  readonly server: FaultServer;
  readonly pool: PgPool;
  readonly requests: RequestRecord[] = [];
  held: Checkout[] = [];
  /** Every checkout ever, for leak accounting. */
  private readonly checkouts: Checkout[] = [];
  min: number;
  max: number;
  closeCall: { at: number; timeoutMs: number; resolvedAt?: number } | undefined;
  private readonly violations: string[] = [];
  private readonly tasks: BackgroundTask[] = [];
  private readonly removed = new Map<FaultClient, RemoveReason>();
  private readonly lastReleasedAt = new Map<FaultClient, number>();
  private readonly releasedWithError = new Set<FaultClient>();
  /** Clients their user ended (client.end()) before releasing them. */
  readonly userEnded = new Set<FaultClient>();
  /**
   * Clients released twice after release() handed them on at once: the second call was
   * their next user's release (docs/engine.md). That checkout is recorded as released.
   */
  readonly strayReleased = new Set<FaultClient>();
  /** Checkouts released by someone else's stray second release(), for the command to judge. */
  readonly strayVictims: Checkout[] = [];
  private countedRequests = 0;
  private failedCount = 0;
  private timeoutCount = 0;
  private unavailableCount = 0;
  private usageBoundMs = 0;
  private previous: PoolStats;
  private step = 'setup';
  private readonly restoreGlobals: () => void;

  private constructor(readonly scenario: Scenario) {
    jest.useFakeTimers({ now: EPOCH, doNotFake: ['nextTick', 'queueMicrotask'] });
    // Jest fakes the test context's global `performance`, not node:perf_hooks' (the
    // engine may read either): that one follows the fake clock too while the run lasts.
    const fakePerformance = globalThis.performance;
    if (fakePerformance === hostPerformance) throw new Error('jest did not fake performance.now()');
    const hostNow = jest.spyOn(hostPerformance, 'now').mockImplementation(() => fakePerformance.now());
    // The engine's jitter (lifetimes, backoff) replays with the run's seed.
    const random = jest.spyOn(Math, 'random').mockImplementation(seededRandom(scenario.randomSeed));
    this.restoreGlobals = () => {
      hostNow.mockRestore();
      random.mockRestore();
    };
    this.min = scenario.min;
    this.max = scenario.max;
    this.server = new FaultServer({
      connectMs: scenario.connectMs,
      queryMs: scenario.queryMs,
      readyAfterErrorMs: scenario.readyAfterErrorMs,
      closeAfterFatalMs: scenario.closeAfterFatalMs,
    });
    this.pool = new PgPool({
      name: 'model',
      connection: { host: 'fault-server.invalid', port: 5432, user: 'model', database: 'model' },
      Client: this.server.Client,
      min: scenario.min,
      max: scenario.max,
      acquireTimeoutMs: scenario.acquireTimeoutMs,
      maxWaiting: scenario.maxWaiting,
      maxLifetimeMs: scenario.maxLifetimeMs,
      maxIdleMs: scenario.maxIdleMs,
      keepaliveIntervalMs: scenario.keepaliveIntervalMs,
      connectTimeoutMs: scenario.connectTimeoutMs,
      reconnectDelayMs: scenario.reconnectDelayMs,
      reconnectMaxDelayMs: scenario.reconnectMaxDelayMs,
      unavailableTimeoutMs: scenario.unavailableTimeoutMs,
      leakDetectionMs: scenario.leakDetectionMs,
      checkOnAcquire: scenario.checkOnAcquire,
      order: scenario.order,
      configure: configureHook(scenario.configure),
      reset: resetHook(scenario.reset),
      scheduleMaintenance: scenario.scheduleMaintenance,
      logger: NULL_LOGGER,
    });
    this.previous = this.pool.getStats();
    this.server.onConnectAttempt = () => this.onConnectAttempt();
    this.pool.on('remove', (client, reason) => this.onRemove(this.fakeOf(client), reason));
  }

  static async start(scenario: Scenario): Promise<World> {
    const world = new World(scenario);
    if (scenario.opening === 'open') await world.pool.open();
    if (scenario.opening === 'open-wait') await world.openAndWait();
    world.check();
    return world;
  }

  get now(): number {
    return performance.now();
  }

  /**
   * The bound the pool puts on its own work on a connection (a check, waiting for a
   * released client's statement, ROLLBACK, reset): `connectTimeoutMs`, 10 s when that is 0.
   */
  get workBoundMs(): number {
    return this.scenario.connectTimeoutMs > 0 ? this.scenario.connectTimeoutMs : DEFAULT_WORK_BOUND_MS;
  }

  private violate(message: string): void {
    this.violations.push(message);
  }

  // ---- time ----

  /**
   * Lets everything due now happen: promise continuations, ticks and timers due now.
   * (A zero-delay timer set from inside another timer is due 1 ms later: fake-timers'
   * guard against loops, so a chain of them takes fake milliseconds, as I/O would.)
   */
  async settle(): Promise<void> {
    await jest.advanceTimersByTimeAsync(0);
    await jest.advanceTimersByTimeAsync(0);
  }

  async advance(ms: number): Promise<void> {
    await jest.advanceTimersByTimeAsync(ms);
    await this.settle();
  }

  /** Advances `totalMs` in steps of `stepMs`, checking the invariants after each, until `done()`. */
  async advanceChecking(totalMs: number, stepMs: number, done: () => boolean = () => false): Promise<void> {
    for (let elapsed = 0; elapsed < totalMs && !done(); elapsed += stepMs) {
      await this.advance(stepMs);
      this.check();
    }
  }

  private async openAndWait(): Promise<void> {
    let outcome: 'ok' | Error | undefined;
    this.pool.open({ wait: true, timeoutMs: 1_000 }).then(() => { outcome = 'ok'; }, (error: unknown) => { outcome = toError(error); });
    await this.advanceChecking(200, 5, () => outcome !== undefined);
    if (outcome === 'ok') return;
    // A configure hook that leaves a transaction open makes every connection unusable:
    // the pool refuses them, so open() fails fast, and closes the pool.
    if (this.scenario.configure === 'begin' && outcome instanceof PoolOpenError) {
      this.closeCall = { at: this.now, timeoutMs: 0, resolvedAt: this.now };
      return;
    }
    throw new Error(`open({ wait: true }) against a healthy server did not resolve within 200 ms: ${String(outcome)}`);
  }

  // ---- requests and checkouts ----

  acquire(timeoutMs: number | undefined): RequestRecord {
    const { pool } = this;
    const stateBefore = pool.state;
    const waitingBefore = pool.getStats().requestsWaiting;
    const queuedBefore = pool.getStats().requestsQueued;
    const request: RequestRecord = {
      seq: this.requests.length + 1,
      timeoutMs: timeoutMs ?? this.scenario.acquireTimeoutMs,
      issuedAt: this.now,
      queuedAtIssue: false,
      outcome: 'pending',
    };
    this.requests.push(request);
    const promise = pool.acquire(timeoutMs === undefined ? undefined : { timeoutMs });
    request.queuedAtIssue = pool.getStats().requestsQueued > queuedBefore;
    if (stateBefore === 'new' || stateBefore === 'open') this.countedRequests++;
    promise.then((client) => this.onServed(request, client), (error: unknown) => this.onFailed(request, toError(error)));
    // What must happen at once, whatever else the pool does.
    const { maxWaiting } = this.scenario;
    const mustRefuse = (stateBefore === 'new' || stateBefore === 'open') && maxWaiting > 0 && waitingBefore >= maxWaiting;
    void promise.catch((error: unknown) => {
      if (error instanceof TooManyRequestsError && !mustRefuse) {
        this.violate(`request #${request.seq} got TooManyRequestsError with ${waitingBefore} waiting (maxWaiting ${maxWaiting})`);
      }
      if (mustRefuse && !(error instanceof TooManyRequestsError)) {
        this.violate(`request #${request.seq} failed with ${toError(error).name}, not TooManyRequestsError, with ${waitingBefore} already waiting`);
      }
      if ((stateBefore === 'closing' || stateBefore === 'closed') && !(error instanceof PoolClosedError)) {
        this.violate(`request #${request.seq} on a ${stateBefore} pool failed with ${toError(error).name}, not PoolClosedError`);
      }
    });
    if (mustRefuse) void promise.then(() => this.violate(`request #${request.seq} was served although ${waitingBefore} were waiting (maxWaiting ${maxWaiting})`), ignore);
    if (stateBefore === 'closing' || stateBefore === 'closed') {
      void promise.then(() => this.violate(`request #${request.seq} was served by a ${stateBefore} pool`), ignore);
    }
    return request;
  }

  /**
   * The fake session behind what the pool handed out: the client itself, or a handle of
   * one checkout on it (its fields read through, its identity its own). Found by its id.
   */
  fakeOf(handed: object): FaultClient {
    const id = (handed as { id?: unknown }).id;
    const fake = typeof id === 'number' ? this.server.clients[id - 1] : undefined;
    if (!fake) throw new Error('the pool handed out something that is not a client of its server');
    return fake;
  }

  private onServed(request: RequestRecord, client: PooledClient): void {
    const now = this.now;
    request.outcome = 'served';
    request.settledAt = now;
    const fake = this.fakeOf(client);
    const tag = `request #${request.seq} (timeout ${request.timeoutMs} ms)`;
    if (now - request.issuedAt > request.timeoutMs + SLACK_MS) {
      this.violate(`${tag} was served ${Math.round(now - request.issuedAt)} ms after it was made, past its deadline`);
    }
    if (request.queuedAtIssue) {
      for (const earlier of this.requests) {
        if (earlier.seq >= request.seq) break;
        if (earlier.queuedAtIssue && earlier.timeoutMs === request.timeoutMs && earlier.outcome === 'pending') {
          this.violate(`FIFO: ${tag} was served while request #${earlier.seq}, queued before it with the same timeout, still waits`);
        }
      }
    }
    const unfit = unfitness(fake);
    if (unfit) this.violate(`${tag} was handed ${fake}, but ${unfit}`);
    const holder = this.held.find((checkout) => checkout.fake === fake);
    if (holder) this.violate(`${tag} was handed ${fake}, still checked out by request #${holder.request.seq}`);
    if (this.removed.has(fake)) this.violate(`${tag} was handed ${fake}, which the pool had removed (${this.removed.get(fake)})`);
    const checkout: Checkout = { request, client, fake, servedAt: now };
    this.checkouts.push(checkout);
    if (this.strayReleased.delete(fake)) {
      // Released by the previous user's stray second release() before this user saw it.
      this.noteReleased(checkout, false);
      this.strayVictims.push(checkout);
      return;
    }
    this.held.push(checkout);
  }

  private onFailed(request: RequestRecord, error: Error): void {
    const now = this.now;
    request.outcome = 'failed';
    request.settledAt = now;
    request.error = error;
    this.failedCount++;
    const waited = now - request.issuedAt;
    const tag = `request #${request.seq} (timeout ${request.timeoutMs} ms)`;
    if (error instanceof PoolTimeoutError || error instanceof PoolUnavailableError) {
      if (error instanceof PoolTimeoutError) this.timeoutCount++;
      else this.unavailableCount++;
      // While the server is down a waiter may give up after unavailableTimeoutMs, earlier than its own timeout.
      const { unavailableTimeoutMs } = this.scenario;
      const earliest = error instanceof PoolUnavailableError && unavailableTimeoutMs > 0
        ? Math.min(request.timeoutMs, unavailableTimeoutMs) : request.timeoutMs;
      if (waited < earliest - 1) this.violate(`${tag} failed with ${error.name} after ${waited} ms, before its time was up`);
      if (waited > request.timeoutMs + SLACK_MS) this.violate(`${tag} failed with ${error.name} only after ${Math.round(waited)} ms`);
      if (this.closeCall) this.violate(`${tag} failed with ${error.name} after close() was called: it should get PoolClosedError`);
      if (error instanceof PoolUnavailableError && this.pool.openCount > 0) {
        this.violate(`${tag} got PoolUnavailableError while the pool holds ${this.pool.openCount} connection(s)`);
      }
    } else if (error instanceof PoolClosedError) {
      if (!this.closeCall) this.violate(`${tag} got PoolClosedError but close() was never called`);
    } else if (!(error instanceof TooManyRequestsError)) {
      this.violate(`${tag} failed with an unexpected ${error.name}: ${error.message}`);
    }
  }

  /** Takes the `pick`-th held checkout out of the model (the caller releases it). */
  takeHeld(pick: number): Checkout {
    const checkout = this.held[pick % this.held.length];
    this.held = this.held.filter((c) => c !== checkout);
    return checkout;
  }

  /** Picks a held checkout without releasing it. */
  peekHeld(pick: number): Checkout {
    return this.held[pick % this.held.length];
  }

  noteReleased(checkout: Checkout, withError: boolean): void {
    const now = this.now;
    checkout.endedAt ??= now;
    this.usageBoundMs += now - checkout.servedAt;
    this.lastReleasedAt.set(checkout.fake, now);
    if (withError) this.releasedWithError.add(checkout.fake);
  }

  track(what: string, work: Promise<unknown>, boundMs: number): void {
    const task: BackgroundTask = { what, startedAt: this.now, boundMs, settled: false };
    this.tasks.push(task);
    work.then(() => { task.settled = true; }, (error: unknown) => {
      task.settled = true;
      this.violate(`${what} rejected: ${toError(error).message}`);
    });
  }

  close(timeoutMs: number): void {
    const call: { at: number; timeoutMs: number; resolvedAt?: number } = { at: this.now, timeoutMs };
    this.closeCall = call;
    this.pool.close({ timeoutMs }).then(() => {
      call.resolvedAt = this.now;
      const open = this.server.openSessions();
      if (open.length > 0) {
        this.violate(`close() resolved with ${open.length} session(s) still open on the server: ${open.join(', ')}`);
      }
      if (this.pool.state !== 'closed') this.violate(`close() resolved with the pool ${this.pool.state}`);
    }, (error: unknown) => this.violate(`close() rejected: ${toError(error).message}`));
  }

  // ---- the pool's own events ----

  private onConnectAttempt(): void {
    const stats = this.pool.getStats();
    if (stats.poolSize > this.max) this.violate(`a connection attempt took the pool to ${stats.poolSize} connections, above max ${this.max}`);
    if (this.closeCall) this.violate('a connection attempt was made after close() was called');
  }

  private onRemove(fake: FaultClient, reason: RemoveReason): void {
    const now = this.now;
    this.removed.set(fake, reason);
    // A connection close() took from its user is no longer checked out, for leak detection.
    for (const checkout of this.held) if (checkout.fake === fake) checkout.endedAt ??= now;
    const { scenario } = this;
    const tag = `${fake} was removed as '${reason}'`;
    switch (reason) {
      case 'lifetime': {
        const age = now - fake.createdAt;
        if (age < scenario.maxLifetimeMs * 0.95 - 1) this.violate(`${tag} at age ${Math.round(age)} ms (maxLifetimeMs ${scenario.maxLifetimeMs})`);
        break;
      }
      case 'idle': {
        const idleSince = Math.max(fake.createdAt, this.lastReleasedAt.get(fake) ?? -Infinity);
        if (now - idleSince < scenario.maxIdleMs - 1) this.violate(`${tag} after at most ${Math.round(now - idleSince)} ms idle (maxIdleMs ${scenario.maxIdleMs})`);
        if (this.pool.openCount < this.min) this.violate(`${tag}, leaving ${this.pool.openCount} below min ${this.min}`);
        break;
      }
      case 'resize':
        if (this.pool.openCount < this.max) this.violate(`${tag}, leaving ${this.pool.openCount} below max ${this.max}`);
        break;
      case 'released-with-error':
        if (!this.releasedWithError.has(fake)) this.violate(`${tag}, but its user did not release it with an error`);
        break;
      case 'closed':
        if (this.pool.state !== 'closing' && this.pool.state !== 'closed') this.violate(`${tag} while the pool is ${this.pool.state}`);
        break;
      case 'broken':
      case 'keepalive':
      case 'reset-failed': {
        // A session may be dropped for what happened to it: a fault, its death, its user
        // ending it, a reset hook that leaves a transaction open, or a statement slower
        // than the bound the pool puts on its own work. Never for nothing. (Not `_ending`:
        // the pool's own end() sets that before it says why.)
        const bound = this.workBoundMs;
        const excused = fake.reportedDead || this.userEnded.has(fake) ||
          fake.troubles.some((t) => t.slowMs === undefined || t.slowMs > bound) ||
          (reason === 'reset-failed' && scenario.reset === 'begin');
        if (!excused) this.violate(`${tag}, but nothing was wrong with it (${fake.troubles.map((t) => t.what).join('; ') || 'no fault applied'})`);
        break;
      }
    }
  }

  // ---- the invariants ----

  /** Checks what must hold after every step; throws with everything that does not. */
  check(): void {
    const { pool, server } = this;
    const now = this.now;
    const problems = this.violations.splice(0);
    const stats = pool.getStats();
    const opening = stats.poolSize - pool.openCount;

    // Above max (after resize lowered it) only while the excess is checked out, or still
    // being opened from before: no attempt starts above max (see onConnectAttempt).
    if (stats.poolSize > this.max && stats.poolAvailable > 0 && opening === 0) {
      problems.push(`${stats.poolSize} connections, ${stats.poolAvailable} of them idle, above max ${this.max}`);
    }
    if (pool.idleCount + pool.checkedOutCount > pool.openCount) {
      problems.push(`idle ${pool.idleCount} + checked out ${pool.checkedOutCount} exceed the ${pool.openCount} open`);
    }
    if (pool.getStats().requestsWaiting > 0 && pool.idleCount > 0) {
      problems.push(`${pool.getStats().requestsWaiting} request(s) wait while ${pool.idleCount} connection(s) sit idle`);
    }
    const holding = this.held.filter((checkout) => !this.removed.has(checkout.fake)).length;
    if (pool.checkedOutCount !== holding) problems.push(`checkedOutCount is ${pool.checkedOutCount}, but users hold ${holding}`);

    for (const request of this.requests) {
      if (request.outcome === 'pending' && now - request.issuedAt > request.timeoutMs + SLACK_MS) {
        problems.push(`request #${request.seq} (timeout ${request.timeoutMs} ms) still waits ${Math.round(now - request.issuedAt)} ms after it was made`);
      }
    }

    for (const key of COUNTERS) {
      if (!(stats[key] >= 0)) problems.push(`counter ${key} is ${stats[key]}`);
      if (stats[key] < this.previous[key]) problems.push(`counter ${key} went back from ${this.previous[key]} to ${stats[key]}`);
    }
    if (stats.requestsNum !== this.countedRequests) problems.push(`requestsNum is ${stats.requestsNum}, but ${this.countedRequests} requests were made to an open pool`);
    if (stats.requestsErrors !== this.failedCount) {
      const failures = this.requests.filter((r) => r.outcome === 'failed').map((r) => `#${r.seq} ${r.error?.name}`);
      problems.push(`requestsErrors is ${stats.requestsErrors}, but ${this.failedCount} requests failed (${failures.join(', ')})`);
    }
    if (stats.requestsTimeouts < this.timeoutCount || stats.requestsTimeouts > this.timeoutCount + this.unavailableCount) {
      problems.push(`requestsTimeouts is ${stats.requestsTimeouts}, but ${this.timeoutCount} requests timed out (and ${this.unavailableCount} found the server unavailable)`);
    }
    // Every attempt ends counted as a success or an error, or is still opening; except
    // that attempts close() cuts short count as neither (also the close() of a failed
    // open({ wait: true })).
    const accounted = stats.connectionsNum + stats.connectionsErrors + opening;
    if (pool.ending ? accounted > server.connectAttempts : accounted !== server.connectAttempts) {
      problems.push(`connectionsNum ${stats.connectionsNum} + connectionsErrors ${stats.connectionsErrors} + opening ${opening} ` +
        `!= the ${server.connectAttempts} connection attempts the server saw`);
    }
    // leakDetectionMs: each checkout held longer than the limit is counted once, none held less.
    const { leakDetectionMs } = this.scenario;
    const heldFor = (c: Checkout): number => (c.endedAt ?? now) - c.servedAt;
    const mustLeak = leakDetectionMs > 0 ? this.checkouts.filter((c) => heldFor(c) > leakDetectionMs + 1).length : 0;
    const mayLeak = leakDetectionMs > 0 ? this.checkouts.filter((c) => heldFor(c) >= leakDetectionMs - 1).length : 0;
    if (stats.leaksDetected < mustLeak || stats.leaksDetected > mayLeak) {
      problems.push(`leaksDetected is ${stats.leaksDetected}, but ${mustLeak} to ${mayLeak} checkouts were held past leakDetectionMs ${leakDetectionMs}`);
    }
    const released = this.requests.length;
    if (stats.usageMs > this.usageBoundMs + 1e-6 * (released + 1)) {
      problems.push(`usageMs is ${stats.usageMs}, more than the ${this.usageBoundMs} ms users held clients`);
    }
    const waitBound = this.requests.reduce((sum, r) => sum + ((r.settledAt ?? now) - r.issuedAt), 0);
    if (stats.requestsWaitMs > waitBound + 1e-6 * (released + 1)) {
      problems.push(`requestsWaitMs is ${stats.requestsWaitMs}, more than the ${waitBound} ms requests waited`);
    }

    // A session the server keeps that the pool neither holds nor is opening: leaked.
    const live = server.openSessions().filter((client) => !client._ending);
    if (live.length > pool.openCount + opening) {
      problems.push(`the server has ${live.length} live session(s) but the pool holds ${pool.openCount} and opens ${opening}: ${live.join(', ')}`);
    }

    const close = this.closeCall;
    if (close && close.resolvedAt === undefined && now - close.at > close.timeoutMs + END_BOUND_MS + SLACK_MS) {
      problems.push(`close({ timeoutMs: ${close.timeoutMs} }) still pending ${Math.round(now - close.at)} ms after it was called`);
    }
    if (close?.resolvedAt !== undefined) {
      const pending = this.requests.filter((r) => r.outcome === 'pending');
      if (pending.length > 0) problems.push(`close() resolved with request(s) ${pending.map((r) => `#${r.seq}`).join(', ')} still pending`);
      if (pool.openCount !== 0) problems.push(`close() resolved with ${pool.openCount} connection(s) in the pool`);
    }
    for (const task of this.tasks) {
      if (!task.settled && now - task.startedAt > task.boundMs + SLACK_MS) {
        problems.push(`${task.what} still running ${Math.round(now - task.startedAt)} ms after it started (bound ${task.boundMs} ms)`);
      }
    }

    this.previous = stats;
    if (problems.length > 0) {
      throw new Error(`after ${this.step}:\n  - ${problems.join('\n  - ')}\n  stats: ${JSON.stringify(stats)}`);
    }
  }

  async afterStep(step: string): Promise<void> {
    this.step = step;
    await this.settle();
    this.check();
  }

  // ---- the end of a run ----

  /**
   * The end of every run: the server heals, users give everything back, the pool must
   * serve a query again (unless its own configure hook refuses every connection), and
   * close() must leave nothing open.
   */
  async finish(): Promise<void> {
    this.step = 'finish';
    if (!this.closeCall) {
      this.server.start();
      this.server.heal();
      this.releaseEverything();
      await this.afterStep('finish: heal, release everything');
      if (this.scenario.configure !== 'begin') await this.recover();
      this.step = 'finish: close({ timeoutMs: 200 })';
      this.close(200);
    } else {
      this.step = 'finish: waiting for close()';
    }
    await this.advanceChecking(200 + END_BOUND_MS + 2 * SLACK_MS, 10, () => this.closeCall?.resolvedAt !== undefined);
    if (this.closeCall?.resolvedAt === undefined) throw new Error('close() did not resolve');
    // Anything the pool left behind (a connect in flight) shows once it settles.
    this.step = 'finish: after close()';
    await this.advanceChecking(Math.max(this.scenario.connectTimeoutMs, 10) + 50, 10);
    const open = this.server.openSessions();
    if (open.length > 0) throw new Error(`after close: ${open.length} session(s) still open on the server: ${open.join(', ')}`);
  }

  /** Users give back everything they hold (requests still waiting may be served later: given back then). */
  private releaseEverything(): void {
    for (const checkout of [...this.held]) {
      this.held = this.held.filter((c) => c !== checkout);
      try {
        checkout.client.release();
      } catch (error) {
        this.violate(`releasing ${checkout.fake} at the end threw: ${toError(error).message}`);
      }
      this.noteReleased(checkout, false);
    }
  }

  /** After the server healed: the pool serves a request and its query, within backoff and retry bounds. */
  private async recover(): Promise<void> {
    // Time enough for the backoff to come round, and for the pool to give up on work a
    // silent peer never answers (each piece bounded by workBoundMs).
    const budgetMs = 2 * this.scenario.reconnectMaxDelayMs + 3 * this.workBoundMs + 1_000;
    const stepMs = Math.max(25, Math.round(budgetMs / 80));
    // Requests made before the end are served or fail meanwhile; what they get is given back.
    for (let elapsed = 0; elapsed < budgetMs / 2; elapsed += stepMs) {
      await this.advance(stepMs);
      this.releaseEverything();
      await this.afterStep('finish: waiting for earlier requests');
    }
    const probe = this.acquire(budgetMs);
    await this.advanceChecking(budgetMs, stepMs, () => probe.outcome !== 'pending');
    if (probe.outcome !== 'served') {
      throw new Error(`the pool did not recover after the server healed: probe request ${probe.outcome}` +
        (probe.error ? ` with ${probe.error.name}: ${probe.error.message}` : '') + `; stats ${JSON.stringify(this.pool.getStats())}`);
    }
    const checkout = this.held[this.held.length - 1];
    let answered: unknown;
    checkout.client.query(SQL.probe).then(() => { answered = true; }, (error: unknown) => { answered = toError(error); });
    await this.advanceChecking(100, 5, () => answered !== undefined);
    if (answered !== true) throw new Error(`the recovered pool's client could not run a query: ${String(answered)}`);
    this.held = this.held.filter((c) => c !== checkout);
    checkout.client.release();
    this.noteReleased(checkout, false);
    await this.afterStep('finish: recovery probe released');
    // And the maintainer brings the pool back to min by itself.
    await this.advanceChecking(budgetMs, stepMs, () => this.pool.openCount >= this.min);
    if (this.pool.openCount < this.min) {
      throw new Error(`the pool did not get back to min ${this.min} after the server healed: ${this.pool.openCount} open; stats ${JSON.stringify(this.pool.getStats())}`);
    }
  }

  /** Always, even after a failure: the pool closed, real timers and Math.random back. */
  async dispose(): Promise<void> {
    try {
      if (this.pool.state !== 'closed') {
        this.pool.close({ timeoutMs: 0 }).catch(ignore);
        await jest.advanceTimersByTimeAsync(2_000);
      }
    } finally {
      this.restoreGlobals();
      jest.useRealTimers();
    }
  }
}

function configureHook(kind: ConfigureHook): ((client: { query(text: string): Promise<unknown> }) => Promise<void>) | undefined {
  switch (kind) {
    case 'none': return undefined;
    case 'set': return async (client) => { await client.query(SQL.configure); };
    case 'set-tolerant': return async (client) => { await client.query(SQL.configure).catch(ignore); };
    case 'begin': return async (client) => { await client.query('BEGIN'); };
  }
}

function resetHook(kind: ResetHook): ((client: { query(text: string): Promise<unknown> }) => Promise<void>) | undefined {
  switch (kind) {
    case 'none': return undefined;
    case 'discard': return async (client) => { await client.query(SQL.reset); };
    case 'discard-tolerant': return async (client) => { await client.query(SQL.reset).catch(ignore); };
    case 'begin': return async (client) => { await client.query('BEGIN'); };
  }
}

// ---------------------------------------------------------------------------------------
// The commands.
// ---------------------------------------------------------------------------------------

type Command = fc.AsyncCommand<World, World>;

/** acquire(), with the pool's default timeout or one of its own. */
class Acquire implements Command {
  constructor(readonly timeoutMs: number | undefined) {}
  check = (): boolean => true;
  async run(world: World): Promise<void> {
    world.acquire(this.timeoutMs);
    await world.afterStep(this.toString());
  }
  toString = (): string => `acquire(${this.timeoutMs === undefined ? '' : `{ timeoutMs: ${this.timeoutMs} }`})`;
}

type ReleaseHow = 'plain' | 'twice' | 'error' | 'true' | 'dispose';

/** release(), release(err), release(true), a double release, or asyncDispose. */
class Release implements Command {
  constructor(readonly pick: number, readonly how: ReleaseHow) {}
  check = (world: Readonly<World>): boolean => world.held.length > 0;
  async run(world: World): Promise<void> {
    const checkout = world.takeHeld(this.pick);
    const { client, fake } = checkout;
    const status = fake.getTransactionStatus();
    // Alive and idle on the wire, but inside a transaction: the pool must count a bad return at once.
    const cleanInTransaction = (status === 'T' || status === 'E') && !fake._ending && !fake.reportedDead &&
      fake.sessionState === 'connected' && fake.readyForQuery === true;
    const returnsBad = world.pool.getStats().returnsBad;
    // Noted first: the pool may remove the connection (and say why) inside release().
    world.noteReleased(checkout, this.how === 'error' || this.how === 'true');
    switch (this.how) {
      case 'plain':
        client.release();
        break;
      case 'twice': {
        const waitingBefore = world.pool.getStats().requestsWaiting;
        client.release();
        let second: unknown;
        try {
          client.release();
        } catch (error) {
          second = error;
        }
        if (second instanceof PoolUsageError) break;
        if (waitingBefore === 0) throw new Error(`a second release() of ${fake} did not throw PoolUsageError (${String(second)})`);
        // release() handed the client at once to the oldest waiter: the second call was
        // that user's release, which docs/engine.md accepts. What it promises instead:
        // that user's next query throws PoolUsageError rather than running on a
        // connection it no longer holds.
        world.strayReleased.add(fake);
        await world.settle();
        const victim = world.strayVictims.shift();
        if (!victim) throw new Error(`a second release() of ${fake} did not throw, and no waiting request was handed the client`);
        let query: unknown = 'ran';
        try {
          victim.client.query(SQL.user).then(ignore, ignore);
        } catch (error) {
          query = error;
        }
        if (!(query instanceof PoolUsageError)) {
          const now = world.held.find((c) => c.fake === fake);
          throw new Error(`a stray second release() of ${fake} released request #${victim.request.seq}'s checkout, and that ` +
            `user's next query ${query === 'ran' ? 'ran' : `failed with ${String(query)}`} instead of throwing PoolUsageError` +
            (now ? `, on the session request #${now.request.seq} now holds` : ''));
        }
        break;
      }
      case 'error':
        client.release(new Error('the user saw this connection misbehave'));
        break;
      case 'true':
        client.release(true);
        break;
      case 'dispose':
        // Resolves once the return steps are done: each bounded by the pool's work bound
        // (the statement in flight, ROLLBACK, reset; a cancel too, not used here).
        world.track('asyncDispose()', client[Symbol.asyncDispose](), 4 * world.workBoundMs);
        break;
    }
    // Returned healthy but inside a transaction (status T or E): counted as a bad return at once.
    if (cleanInTransaction && this.how !== 'error' && this.how !== 'true' && world.pool.state === 'open') {
      const delta = world.pool.getStats().returnsBad - returnsBad;
      if (delta !== 1) throw new Error(`${fake} released in transaction status ${status}: returnsBad moved by ${delta}, not 1`);
    }
    await world.afterStep(this.toString());
  }
  toString = (): string => `release(#${this.pick}, ${this.how})`;
}

/** A statement on a held client, perhaps with a fault on it; not awaited, as a user may not. */
class UserQuery implements Command {
  constructor(readonly pick: number, readonly fault: StatementFault | undefined) {}
  check = (world: Readonly<World>): boolean => world.held.length > 0;
  async run(world: World): Promise<void> {
    const { client, fake } = world.peekHeld(this.pick);
    if (this.fault) world.server.inject({ client: fake, statement: SQL.user, fault: this.fault });
    client.query(SQL.user).then(ignore, ignore);
    await world.afterStep(this.toString());
  }
  toString = (): string => `query(#${this.pick}${this.fault ? `, ${JSON.stringify(this.fault)}` : ''})`;
}

/** BEGIN left open, BEGIN with a failed statement (status E), or BEGIN … COMMIT. */
class Transaction implements Command {
  constructor(readonly pick: number, readonly kind: 'open' | 'failed' | 'commit') {}
  check = (world: Readonly<World>): boolean => world.held.length > 0;
  async run(world: World): Promise<void> {
    const { client, fake } = world.peekHeld(this.pick);
    if (this.kind === 'failed') world.server.inject({ client: fake, statement: SQL.boom, fault: { kind: 'fail', code: '22012', message: 'division by zero' } });
    client.query('BEGIN')
      .then(() => (this.kind === 'failed' ? client.query(SQL.boom) : this.kind === 'commit' ? client.query('COMMIT') : undefined))
      .then(ignore, ignore);
    await world.afterStep(this.toString());
  }
  toString = (): string => `transaction(#${this.pick}, ${this.kind})`;
}

/** The user ends the client, then releases it: in the same tick, or once end() resolved. */
class UserEnd implements Command {
  constructor(readonly pick: number, readonly when: 'same-tick' | 'after-end') {}
  check = (world: Readonly<World>): boolean => world.held.length > 0;
  async run(world: World): Promise<void> {
    const checkout = world.takeHeld(this.pick);
    world.userEnded.add(checkout.fake);
    const ending = checkout.client.end();
    if (this.when === 'after-end') {
      let ended = false;
      void ending.then(() => { ended = true; }, () => { ended = true; });
      await world.settle();
      if (!ended) await world.advance(50);
    } else {
      ending.catch(ignore);
    }
    checkout.client.release();
    world.noteReleased(checkout, false);
    await world.afterStep(this.toString());
  }
  toString = (): string => `end-then-release(#${this.pick}, ${this.when})`;
}

class Resize implements Command {
  constructor(readonly min: number, readonly max: number) {}
  check = (): boolean => true;
  async run(world: World): Promise<void> {
    world.min = this.min;
    world.max = this.max;
    // resize() resolves once the new min is open, or fails with PoolOpenError after the
    // acquire timeout (PoolClosedError if close() comes first): not awaited here, since
    // only the steps move the clock.
    const resized = world.pool.resize(this.min, this.max).catch((error: unknown) => {
      if (error instanceof PoolOpenError || (error instanceof PoolClosedError && world.closeCall)) return;
      throw error;
    });
    world.track(this.toString(), resized, world.scenario.acquireTimeoutMs + SLACK_MS);
    await world.afterStep(this.toString());
  }
  toString = (): string => `resize(${this.min}, ${this.max})`;
}

/** pool.check(): not awaited; bounded by connectTimeoutMs per check, one at a time at worst per idle connection. */
class Check implements Command {
  check = (): boolean => true;
  async run(world: World): Promise<void> {
    // One check at a time, each within the pool's bound. A check() that joins a pass
    // already running waits for it, and that pass may check every connection the pool
    // holds, so the bound is per connection open, not per connection idle now.
    const open = world.pool.openCount;
    world.track('check()', world.pool.check(), Math.max(1, open) * (world.workBoundMs + SLACK_MS));
    await world.afterStep(this.toString());
  }
  toString = (): string => 'check()';
}

/** pool.runMaintenance(): expiry, shrink, keepalive, top-up. A keepalive pass must leave connections available. */
class Maintenance implements Command {
  check = (): boolean => true;
  async run(world: World): Promise<void> {
    const { pool } = world;
    const idleBefore = pool.idleCount;
    const pass = pool.runMaintenance();
    const idleDuring = pool.idleCount;
    world.track('runMaintenance()', pass.then((run) => {
      // A keepalive pass that takes every idle connection at once leaves arriving
      // requests nothing to take: they wait for checks, or open connections of their own.
      if (run.keepaliveChecked > 0 && idleBefore - run.expired - run.shrunk >= 2 && idleDuring === 0) {
        throw new Error(`the keepalive pass took all ${idleBefore - run.expired - run.shrunk} idle connections at once`);
      }
    }), Math.max(1, idleBefore) * (world.workBoundMs + SLACK_MS));
    await world.afterStep(this.toString());
  }
  toString = (): string => 'runMaintenance()';
}

/** Time passes (timers, Date and performance.now together). */
class Clock implements Command {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  async run(world: World): Promise<void> {
    await world.advance(this.ms);
    await world.afterStep(this.toString());
  }
  toString = (): string => `clock(+${this.ms} ms)`;
}

/** The wall clock alone steps (NTP, a resumed VM): Date.now moves, timers and performance.now do not. */
class WallClock implements Command {
  constructor(readonly deltaMs: number) {}
  check = (): boolean => true;
  async run(world: World): Promise<void> {
    jest.setSystemTime(Date.now() + this.deltaMs);
    await world.afterStep(this.toString());
  }
  toString = (): string => `wallClock(${this.deltaMs > 0 ? '+' : ''}${this.deltaMs} ms)`;
}

class CloseNow implements Command {
  constructor(readonly timeoutMs: number) {}
  check = (world: Readonly<World>): boolean => world.closeCall === undefined;
  async run(world: World): Promise<void> {
    world.close(this.timeoutMs);
    await world.afterStep(this.toString());
  }
  toString = (): string => `close({ timeoutMs: ${this.timeoutMs} })`;
}

// ---- the server's and the network's faults ----

class ServerStop implements Command {
  constructor(readonly terminateSessions: boolean) {}
  check = (world: Readonly<World>): boolean => world.server.up;
  async run(world: World): Promise<void> {
    world.server.stop(this.terminateSessions);
    await world.afterStep(this.toString());
  }
  toString = (): string => `server.stop(${this.terminateSessions ? 'terminating sessions' : 'sessions kept'})`;
}

class ServerStart implements Command {
  check = (world: Readonly<World>): boolean => !world.server.up;
  async run(world: World): Promise<void> {
    world.server.start();
    await world.afterStep(this.toString());
  }
  toString = (): string => 'server.start()';
}

/** New connection attempts are accepted and never answered (a black hole) until heal(). */
class BlackHoleConnects implements Command {
  check = (world: Readonly<World>): boolean => world.server.connects === 'answer';
  async run(world: World): Promise<void> {
    world.server.connects = 'hang';
    await world.afterStep(this.toString());
  }
  toString = (): string => 'server.connects = hang';
}

/** A backend terminated (FATAL 57P01) or its socket cut, whatever the pool is doing with it. */
class KillSession implements Command {
  constructor(readonly pick: number, readonly how: 'terminate' | 'cut') {}
  check = (world: Readonly<World>): boolean => world.server.openSessions().length > 0;
  async run(world: World): Promise<void> {
    const sessions = world.server.openSessions();
    const victim = sessions[this.pick % sessions.length];
    if (this.how === 'terminate') world.server.terminate(victim);
    else world.server.cut(victim);
    await world.afterStep(this.toString());
  }
  toString = (): string => `${this.how}(session #${this.pick})`;
}

type FaultTarget = 'check' | 'rollback' | 'reset' | 'configure';

/** A fault on the pool's own statements: its checks, its ROLLBACK, the reset and configure hooks'. */
class ArmFault implements Command {
  constructor(readonly target: FaultTarget, readonly fault: StatementFault, readonly times: number) {}
  check = (): boolean => true;
  async run(world: World): Promise<void> {
    world.server.inject({ statement: SQL[this.target], fault: this.fault, times: this.times });
    await world.afterStep(this.toString());
  }
  toString = (): string => `fault(${this.target}, ${JSON.stringify(this.fault)} x${this.times})`;
}

class Heal implements Command {
  check = (): boolean => true;
  async run(world: World): Promise<void> {
    world.server.heal();
    await world.afterStep(this.toString());
  }
  toString = (): string => 'server.heal()';
}

function commandArb(withFaults: boolean): fc.Arbitrary<Command> {
  const pick = fc.nat({ max: 7 });
  const calmFault = fc.constantFrom<StatementFault | undefined>(undefined, undefined, { kind: 'fail' }, { kind: 'slow', ms: 40 });
  const anyFault = fc.constantFrom<StatementFault | undefined>(undefined, { kind: 'fail' }, { kind: 'slow', ms: 40 }, { kind: 'slow', ms: 300 },
    { kind: 'hang' }, { kind: 'blackhole' }, { kind: 'lose-socket' }, { kind: 'terminate' });
  const poolFault = fc.constantFrom<StatementFault>({ kind: 'fail' }, { kind: 'slow', ms: 20 }, { kind: 'slow', ms: 300 },
    { kind: 'hang' }, { kind: 'blackhole' }, { kind: 'lose-socket' }, { kind: 'terminate' });
  const weighted: Array<fc.WeightedArbitrary<Command>> = [
    { weight: 24, arbitrary: fc.constantFrom(undefined, undefined, 0, 10, 50, 200).map((t) => new Acquire(t)) },
    { weight: 20, arbitrary: fc.tuple(pick, fc.constantFrom<ReleaseHow>('plain', 'plain', 'plain', 'twice', 'error', 'true', 'dispose')).map(([p, how]) => new Release(p, how)) },
    { weight: 8, arbitrary: fc.tuple(pick, withFaults ? anyFault : calmFault).map(([p, fault]) => new UserQuery(p, fault)) },
    { weight: 8, arbitrary: fc.tuple(pick, fc.constantFrom('open' as const, 'failed' as const, 'commit' as const)).map(([p, kind]) => new Transaction(p, kind)) },
    { weight: 4, arbitrary: fc.tuple(pick, fc.constantFrom('same-tick' as const, 'after-end' as const)).map(([p, when]) => new UserEnd(p, when)) },
    { weight: 4, arbitrary: fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 4 })).map(([min, max]) => new Resize(Math.min(min, max), max)) },
    { weight: 4, arbitrary: fc.constant(new Check()) },
    { weight: 8, arbitrary: fc.constant(new Maintenance()) },
    { weight: 24, arbitrary: fc.constantFrom(1, 2, 5, 10, 25, 50, 100, 300, 1_000).map((ms) => new Clock(ms)) },
    { weight: 4, arbitrary: fc.constantFrom(3_600_000, 60_000, -60_000, -3_600_000).map((ms) => new WallClock(ms)) },
    { weight: 1, arbitrary: fc.constantFrom(0, 20, 200).map((ms) => new CloseNow(ms)) },
  ];
  if (withFaults) {
    weighted.push(
      { weight: 3, arbitrary: fc.boolean().map((kill) => new ServerStop(kill)) },
      { weight: 4, arbitrary: fc.constant(new ServerStart()) },
      { weight: 2, arbitrary: fc.constant(new BlackHoleConnects()) },
      { weight: 10, arbitrary: fc.tuple(pick, fc.constantFrom('terminate' as const, 'cut' as const)).map(([p, how]) => new KillSession(p, how)) },
      { weight: 8, arbitrary: fc.tuple(fc.constantFrom<FaultTarget>('check', 'rollback', 'reset', 'configure'), poolFault, fc.integer({ min: 1, max: 3 }))
        .map(([target, fault, times]) => new ArmFault(target, fault, times)) },
      { weight: 4, arbitrary: fc.constant(new Heal()) },
    );
  }
  return fc.oneof(...weighted);
}

// ---------------------------------------------------------------------------------------
// The properties.
// ---------------------------------------------------------------------------------------

function modelProperty(withFaults: boolean) {
  return fc.asyncProperty(
    scenarioArb(withFaults),
    fc.commands([commandArb(withFaults)], { maxCommands: 60, size: 'max', replayPath: process.env.FUZZ_REPLAY_PATH }),
    async (scenario, commands) => {
      const world = await World.start(scenario);
      try {
        await fc.asyncModelRun(() => ({ model: world, real: world }), commands);
        await world.finish();
      } finally {
        await world.dispose();
      }
    },
  );
}

const fuzzRuns = process.env.FUZZ_RUNS === undefined ? undefined : Number(process.env.FUZZ_RUNS);
/** The seed of CI's runs. */
const CI_SEED = 20_261_125;

/** Runs a property with the CI budget or FUZZ_RUNS; on failure, says how to replay it. */
async function checkModel(testName: string, property: fc.IAsyncProperty<[Scenario, Iterable<Command>]>, ciRuns: number): Promise<void> {
  // CI runs the same seeds every time, so that it is deterministic; `npm run fuzz`
  // (FUZZ_RUNS) draws new ones, and FUZZ_SEED replays one.
  const seed = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : fuzzRuns === undefined ? CI_SEED : undefined;
  const path = process.env.FUZZ_PATH;
  const details = await fc.check(property, { numRuns: fuzzRuns ?? ciRuns, seed, path });
  if (!details.failed) return;
  const report = fc.defaultReportMessage(details) ?? '';
  const replayPath = /replayPath="([^"]*)"/.exec(report)?.[1];
  throw new Error(
    `model test '${testName}' failed; replay with\n` +
    `  FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath ?? ''}${replayPath ? ` FUZZ_REPLAY_PATH='${replayPath}'` : ''} ` +
    `node --experimental-vm-modules node_modules/jest/bin/jest.js test/pool/model.spec.ts -t '${testName}'\n\n` +
    `${toError(details.errorInstance).message}\n\n${report}`);
}

const TIMEOUT_MS = fuzzRuns === undefined ? 300_000 : 24 * 3_600_000;

describe('the pool engine against its model (fake server, fake clock)', () => {
  afterEach(() => {
    // Whatever happened in a run: the after-each leak check needs real timers.
    jest.useRealTimers();
  });

  const calm = 'serves, waits, times out, resizes and closes as its model says, whatever the clocks do';
  it(calm, async () => {
    await checkModel(calm, modelProperty(false), CI_RUNS.calm);
  }, TIMEOUT_MS);

  const faulty = 'hands out no dead, busy or in-transaction client and recovers, whatever the server does';
  it(faulty, async () => {
    await checkModel(faulty, modelProperty(true), CI_RUNS.faults);
  }, TIMEOUT_MS);
});
