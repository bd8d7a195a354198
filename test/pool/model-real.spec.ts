import fc from 'fast-check';
import type { Client } from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import {
  PoolClosedError,
  PoolTimeoutError,
  PoolUnavailableError,
  PoolUsageError,
  type PgPool,
  type PooledClient,
} from '../../lib/index.js';
import { adminQuery, appNameOf, createTestPool, eventually, terminateBackends, testUrl, trackedPools } from '../support/database.js';
import { FaultProxy } from '../support/fault-proxy.js';

/**
 * The model test's short real-server sibling (see model.spec.ts for the full one on a
 * fake server and a fake clock): random sequences of acquire, queries, transactions and
 * releases on a pool that reaches the test server through the fault proxy, while backends
 * are terminated (pg_terminate_backend) and the proxy cuts, refuses or black-holes
 * sockets. After every step: no client handed out that was known dead, ended, busy or
 * inside a transaction; never more than `max` connections; `checkedOutCount` equals what
 * users hold; no request outlives its deadline by more than SLACK_MS. At the end of a run:
 * everything is released, the network heals, the pool serves a query again, no session
 * is left idle in transaction, and close() leaves no backend behind.
 *
 * Real time and a real server: a seed replays the command sequence, not its timing.
 * Budget: FUZZ_REAL_RUNS runs (default 8, about 10-20 s); FUZZ_SEED / FUZZ_PATH /
 * FUZZ_REPLAY_PATH replay a failure. `npm run fuzz` runs this file at its default budget
 * (FUZZ_RUNS is for the fake-server model only: thousands of real runs would take hours).
 */

/** How late past its deadline a request may settle: real timers on a loaded 2-core machine. */
const SLACK_MS = 400;
const RUNS = Number(process.env.FUZZ_REAL_RUNS ?? 16);
/**
 * The pool's bound on its own work on a connection, and on a connect. Not shorter: a
 * connect with SCRAM through the proxy, while the rest of the suite loads both cores,
 * can take some hundreds of ms, and a bound below that fails every attempt.
 */
const CONNECT_TIMEOUT_MS = 1_000;
const ACQUIRE_TIMEOUT_MS = 1_500;

interface RealScenario {
  min: number;
  max: number;
  checkOnAcquire: boolean;
  keepaliveIntervalMs: number;
  unavailableTimeoutMs: number;
}

const scenarioArb: fc.Arbitrary<RealScenario> = fc.record({
  max: fc.integer({ min: 1, max: 3 }),
  min: fc.integer({ min: 0, max: 3 }),
  checkOnAcquire: fc.boolean(),
  keepaliveIntervalMs: fc.constantFrom(0, 100),
  unavailableTimeoutMs: fc.constantFrom(0, 300),
}).map((s) => ({ ...s, min: Math.min(s.min, s.max) }));

function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

const ignore = (): void => undefined;
const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** pg's own state, read to judge a client handed out. */
interface PgClientState {
  processID?: number | null;
  _ending?: boolean;
  _ended?: boolean;
  _queryable?: boolean;
  readyForQuery?: boolean;
  getTransactionStatus(): string | null;
  connection?: { on(event: 'errorMessage', listener: (message: { severity?: string }) => void): unknown };
}

interface RealRequest {
  seq: number;
  timeoutMs: number;
  issuedAt: number;
  outcome: 'pending' | 'served' | 'failed';
}

interface Held {
  request: RealRequest;
  client: PooledClient;
}

class RealWorld {
  readonly requests: RealRequest[] = [];
  held: Held[] = [];
  closed = false;
  /** pool.query() / withTransaction() calls in flight: each may hold a checkout the users do not. */
  helpersInFlight = 0;
  /**
   * Sessions (by backend pid) whose client told anyone it is dead: 'error' or 'end', or a
   * FATAL error response. By pid, not by object: the pool may hand out a handle per
   * checkout rather than the client itself.
   */
  private readonly knownDead = new Set<number>();
  private readonly violations: string[] = [];
  private readonly background = new Set<Promise<unknown>>();
  private step = 'setup';

  private constructor(readonly scenario: RealScenario, readonly proxy: FaultProxy, readonly pool: PgPool) {
    pool.on('error', ignore); // an idle connection's death is expected here; the pool replaces it
    pool.on('connect', (client: Client) => {
      const state = client as unknown as PgClientState & Client;
      const pid = Number(state.processID);
      state.on('error', () => this.knownDead.add(pid));
      state.on('end', () => this.knownDead.add(pid));
      state.connection?.on('errorMessage', (message) => {
        if (message.severity === 'FATAL' || message.severity === 'PANIC') this.knownDead.add(pid);
      });
    });
  }

  static async start(scenario: RealScenario): Promise<RealWorld> {
    const config = parseIntoClientConfig(testUrl());
    const proxy = await FaultProxy.start({ host: String(config.host), port: Number(config.port) });
    const pool = createTestPool({
      // The proxy's black hole drops what it receives, which TCP across a real partition
      // would deliver once it heals: a statement lost in it would wait for ever. pg's
      // client-side query_timeout ends it, as an application would bound its statements.
      connection: { host: '127.0.0.1', port: proxy.port, query_timeout: 2_000 },
      min: scenario.min,
      max: scenario.max,
      acquireTimeoutMs: ACQUIRE_TIMEOUT_MS,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      checkOnAcquire: scenario.checkOnAcquire,
      keepaliveIntervalMs: scenario.keepaliveIntervalMs,
      unavailableTimeoutMs: scenario.unavailableTimeoutMs,
      reconnectDelayMs: 20,
      reconnectMaxDelayMs: 100,
    });
    const world = new RealWorld(scenario, proxy, pool);
    await pool.open();
    return world;
  }

  private trace(what: string): void {
    if (process.env.FUZZ_TRACE) process.stderr.write(`${Math.round(performance.now())} ${what}\n`);
  }

  violate(message: string): void {
    this.violations.push(message);
  }

  /** Work a step starts and does not wait for; awaited (bounded) at the end of the run. */
  track(work: Promise<unknown>): void {
    const settled = work.then(ignore, ignore);
    this.background.add(settled);
    void settled.then(() => this.background.delete(settled));
  }

  acquire(timeoutMs: number | undefined): RealRequest {
    const request: RealRequest = {
      seq: this.requests.length + 1,
      timeoutMs: timeoutMs ?? ACQUIRE_TIMEOUT_MS,
      issuedAt: performance.now(),
      outcome: 'pending',
    };
    this.requests.push(request);
    const closedAtIssue = this.closed;
    this.pool.acquire(timeoutMs === undefined ? undefined : { timeoutMs }).then((client) => {
      request.outcome = 'served';
      const late = performance.now() - request.issuedAt - request.timeoutMs;
      if (late > SLACK_MS) this.violate(`request #${request.seq} was served ${Math.round(late)} ms past its deadline`);
      const unfit = this.unfitness(client);
      if (unfit) this.violate(`request #${request.seq} was handed a client that ${unfit}`);
      const pid = (client as unknown as PgClientState).processID;
      const holder = this.held.find((h) => (h.client as unknown as PgClientState).processID === pid);
      if (holder) this.violate(`request #${request.seq} was handed the client request #${holder.request.seq} still holds`);
      this.held.push({ request, client });
    }, (error: unknown) => {
      request.outcome = 'failed';
      const failure = toError(error);
      const waited = performance.now() - request.issuedAt;
      if (failure instanceof PoolTimeoutError || failure instanceof PoolUnavailableError) {
        if (waited > request.timeoutMs + SLACK_MS) this.violate(`request #${request.seq} failed only after ${Math.round(waited)} ms`);
        if (this.closed) this.violate(`request #${request.seq} failed with ${failure.name} after close(): expected PoolClosedError`);
      } else if (failure instanceof PoolClosedError) {
        if (!this.closed && !closedAtIssue) this.violate(`request #${request.seq} got PoolClosedError from an open pool`);
      } else {
        this.violate(`request #${request.seq} failed with an unexpected ${failure.name}: ${failure.message}`);
      }
    });
    return request;
  }

  private unfitness(client: PooledClient): string | undefined {
    const state = client as unknown as PgClientState;
    if (this.knownDead.has(Number(state.processID))) return 'had reported its death (error, end or FATAL)';
    if (state._ending || state._ended) return 'had been ended';
    if (state._queryable === false) return 'is not queryable';
    if (state.readyForQuery !== true) return 'had a statement in flight';
    const status = state.getTransactionStatus();
    if (status !== 'I') return `was inside a transaction (status ${status})`;
    return undefined;
  }

  take(pick: number): Held {
    const held = this.held[pick % this.held.length];
    this.held = this.held.filter((h) => h !== held);
    return held;
  }

  peek(pick: number): Held {
    return this.held[pick % this.held.length];
  }

  /** Lets the pool and the server move a little, then checks what must hold. */
  async afterStep(step: string, settleMs = 5): Promise<void> {
    this.step = step;
    await pause(settleMs);
    this.check();
    if (process.env.FUZZ_TRACE) process.stderr.write(`${Math.round(performance.now())} ${step}\n`);
  }

  check(): void {
    const { pool } = this;
    const problems = this.violations.splice(0);
    const { max } = this.scenario;
    if (pool.totalCount > max) problems.push(`${pool.totalCount} connections open, above max ${max}`);
    const stats = pool.getStats();
    if (stats.poolSize > max) problems.push(`pool size ${stats.poolSize} (open and opening) above max ${max}`);
    if (pool.idleCount + pool.checkedOutCount > pool.totalCount) {
      problems.push(`idle ${pool.idleCount} + checked out ${pool.checkedOutCount} exceed the ${pool.totalCount} open`);
    }
    const out = pool.checkedOutCount;
    if (!this.closed && (out < this.held.length || out > this.held.length + this.helpersInFlight)) {
      problems.push(`checkedOutCount is ${out}, but users hold ${this.held.length} (and ${this.helpersInFlight} helper call(s) are in flight)`);
    }
    const now = performance.now();
    for (const request of this.requests) {
      if (request.outcome === 'pending' && now - request.issuedAt > request.timeoutMs + SLACK_MS) {
        problems.push(`request #${request.seq} still waits ${Math.round(now - request.issuedAt)} ms after it was made (timeout ${request.timeoutMs} ms)`);
      }
    }
    if (problems.length > 0) throw new Error(`after ${this.step}:\n  - ${problems.join('\n  - ')}\n  stats: ${JSON.stringify(stats)}`);
  }

  /**
   * The end of a run: users give everything back, the network heals, the pool must serve
   * again, leave no session idle in transaction, and close without leaving a backend.
   */
  async finish(): Promise<void> {
    this.step = 'finish';
    this.trace('finish');
    await this.proxy.setMode('pass');
    const appName = appNameOf(this.pool);
    if (!this.closed) {
      // Requests still waiting are served or fail within their timeout: give back what they get.
      const deadline = performance.now() + ACQUIRE_TIMEOUT_MS + SLACK_MS;
      do {
        for (const held of this.held.splice(0)) held.client.release();
        await pause(20);
      } while (this.requests.some((r) => r.outcome === 'pending') && performance.now() < deadline);
      for (const held of this.held.splice(0)) held.client.release();
      this.check();
      await eventually('the pool serves a query again after the network healed', async () => {
        // A request that settled late on a loaded machine still hands its client back.
        for (const held of this.held.splice(0)) held.client.release();
        try {
          await this.pool.query('SELECT 1');
          return true;
        } catch {
          return false;
        }
      }, 15_000);
      await eventually('every checkout is back', () => this.pool.checkedOutCount === 0, 3_000);
      const inTransaction = await adminQuery<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state LIKE 'idle in transaction%'", [appName]);
      if (inTransaction[0].n > 0) throw new Error(`${inTransaction[0].n} session(s) of the pool left idle in transaction`);
      const backends = await adminQuery<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [appName]);
      if (backends[0].n > this.scenario.max) throw new Error(`the server has ${backends[0].n} backends of the pool, above max ${this.scenario.max}`);
    }
    this.closed = true;
    const startedAt = performance.now();
    await this.pool.close({ timeoutMs: 200 });
    if (performance.now() - startedAt > 200 + 1_000 + SLACK_MS) throw new Error(`close({ timeoutMs: 200 }) took ${Math.round(performance.now() - startedAt)} ms`);
    if (this.requests.some((r) => r.outcome === 'pending')) throw new Error('close() resolved with requests still pending');
    // At most 2 s for the background work; the timer is cleared once it is done, so that
    // no pending timer holds the jest worker open after the last run.
    let bound: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(this.background), new Promise<void>((resolve) => {
      bound = setTimeout(resolve, 2_000);
    })]);
    clearTimeout(bound);
    await eventually('the closed pool has left the server', async () => (await adminQuery<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [appName]))[0].n === 0, 5_000);
  }

  async dispose(): Promise<void> {
    await this.pool.close({ timeoutMs: 0 }).catch(ignore);
    trackedPools.delete(this.pool);
    await this.proxy.close();
  }
}

type RealCommand = fc.AsyncCommand<RealWorld, RealWorld>;

class Acquire implements RealCommand {
  constructor(readonly timeoutMs: number | undefined) {}
  check = (world: Readonly<RealWorld>): boolean => !world.closed;
  async run(world: RealWorld): Promise<void> {
    world.acquire(this.timeoutMs);
    await world.afterStep(this.toString());
  }
  toString = (): string => `acquire(${this.timeoutMs ?? ''})`;
}

class Release implements RealCommand {
  constructor(readonly pick: number, readonly how: 'plain' | 'twice' | 'error' | 'dispose') {}
  check = (world: Readonly<RealWorld>): boolean => world.held.length > 0;
  async run(world: RealWorld): Promise<void> {
    const { client } = world.take(this.pick);
    if (this.how === 'error') client.release(new Error('the user saw this connection misbehave'));
    else if (this.how === 'dispose') world.track(client[Symbol.asyncDispose]());
    else client.release();
    if (this.how === 'twice' && world.pool.getStats().requestsWaiting === 0) {
      let second: unknown;
      try {
        client.release();
      } catch (error) {
        second = error;
      }
      if (!(second instanceof PoolUsageError)) world.violate(`a second release() did not throw PoolUsageError (${String(second)})`);
    }
    await world.afterStep(this.toString());
  }
  toString = (): string => `release(#${this.pick}, ${this.how})`;
}

/** A statement on a held client, not awaited (a user may release it while it runs). */
class Query implements RealCommand {
  constructor(readonly pick: number, readonly kind: 'select' | 'sleep' | 'error') {}
  check = (world: Readonly<RealWorld>): boolean => world.held.length > 0;
  async run(world: RealWorld): Promise<void> {
    const { client } = world.peek(this.pick);
    const text = this.kind === 'select' ? 'SELECT 1' : this.kind === 'sleep' ? 'SELECT pg_sleep(0.03)' : 'SELECT 1/0';
    world.track(client.query(text));
    await world.afterStep(this.toString());
  }
  toString = (): string => `query(#${this.pick}, ${this.kind})`;
}

class Transaction implements RealCommand {
  constructor(readonly pick: number, readonly kind: 'open' | 'failed' | 'commit') {}
  check = (world: Readonly<RealWorld>): boolean => world.held.length > 0;
  async run(world: RealWorld): Promise<void> {
    const { client } = world.peek(this.pick);
    world.track(client.query('BEGIN').then(() => {
      if (this.kind === 'failed') return client.query('SELECT 1/0');
      if (this.kind === 'commit') return client.query('COMMIT');
      return undefined;
    }));
    await world.afterStep(this.toString(), 15);
  }
  toString = (): string => `transaction(#${this.pick}, ${this.kind})`;
}

/** The helpers that acquire and release by themselves. */
class PoolWork implements RealCommand {
  constructor(readonly kind: 'query' | 'transaction' | 'failing-transaction') {}
  check = (world: Readonly<RealWorld>): boolean => !world.closed;
  async run(world: RealWorld): Promise<void> {
    const { pool } = world;
    const work = this.kind === 'query'
      ? pool.query('SELECT 1')
      : pool.withTransaction(async (client) => {
        await client.query('SELECT 1');
        if (this.kind === 'failing-transaction') throw new Error('the callback failed');
      });
    world.helpersInFlight++;
    world.track(work.finally(() => { world.helpersInFlight--; }));
    await world.afterStep(this.toString(), 15);
  }
  toString = (): string => `pool.${this.kind}()`;
}

class UserEnd implements RealCommand {
  constructor(readonly pick: number) {}
  check = (world: Readonly<RealWorld>): boolean => world.held.length > 0;
  async run(world: RealWorld): Promise<void> {
    const { client } = world.take(this.pick);
    world.track(client.end());
    client.release();
    await world.afterStep(this.toString());
  }
  toString = (): string => `end-then-release(#${this.pick})`;
}

/** pg_terminate_backend on the pool's backends, all or those in one state. */
class Terminate implements RealCommand {
  constructor(readonly state: 'idle' | 'active' | 'idle in transaction' | undefined) {}
  check = (): boolean => true;
  async run(world: RealWorld): Promise<void> {
    await terminateBackends(appNameOf(world.pool), this.state);
    await world.afterStep(this.toString(), 10);
  }
  toString = (): string => `terminate(${this.state ?? 'all'})`;
}

/** The network: every socket cut, new connections refused or black-holed, or back to normal. */
class Network implements RealCommand {
  constructor(readonly what: 'cut' | 'refuse' | 'blackhole' | 'pass') {}
  check = (): boolean => true;
  async run(world: RealWorld): Promise<void> {
    if (this.what === 'cut') world.proxy.cutAll();
    // Not awaited: 'refuse' closes the listening socket at once, but its promise waits
    // until every connection already open has ended.
    else world.track(world.proxy.setMode(this.what));
    await world.afterStep(this.toString(), 10);
  }
  toString = (): string => `network(${this.what})`;
}

class Maintenance implements RealCommand {
  constructor(readonly kind: 'check' | 'maintenance') {}
  check = (world: Readonly<RealWorld>): boolean => !world.closed;
  async run(world: RealWorld): Promise<void> {
    world.track(this.kind === 'check' ? world.pool.check() : world.pool.runMaintenance());
    await world.afterStep(this.toString());
  }
  toString = (): string => `${this.kind}()`;
}

class Pause implements RealCommand {
  constructor(readonly ms: number) {}
  check = (): boolean => true;
  async run(world: RealWorld): Promise<void> {
    await world.afterStep(this.toString(), this.ms);
  }
  toString = (): string => `pause(${this.ms} ms)`;
}

class CloseNow implements RealCommand {
  check = (world: Readonly<RealWorld>): boolean => !world.closed;
  async run(world: RealWorld): Promise<void> {
    world.closed = true;
    world.track(world.pool.close({ timeoutMs: 100 }));
    await world.afterStep(this.toString());
  }
  toString = (): string => 'close()';
}

const pick = fc.nat({ max: 5 });
const commandArb: fc.Arbitrary<RealCommand> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(undefined, 50, 300).map((t) => new Acquire(t)) },
  { weight: 5, arbitrary: fc.tuple(pick, fc.constantFrom('plain' as const, 'plain' as const, 'twice' as const, 'error' as const, 'dispose' as const)).map(([p, how]) => new Release(p, how)) },
  { weight: 3, arbitrary: fc.tuple(pick, fc.constantFrom('select' as const, 'sleep' as const, 'error' as const)).map(([p, kind]) => new Query(p, kind)) },
  { weight: 3, arbitrary: fc.tuple(pick, fc.constantFrom('open' as const, 'failed' as const, 'commit' as const)).map(([p, kind]) => new Transaction(p, kind)) },
  { weight: 3, arbitrary: fc.constantFrom('query' as const, 'transaction' as const, 'failing-transaction' as const).map((kind) => new PoolWork(kind)) },
  { weight: 1, arbitrary: pick.map((p) => new UserEnd(p)) },
  { weight: 2, arbitrary: fc.constantFrom(undefined, 'idle' as const, 'active' as const, 'idle in transaction' as const).map((state) => new Terminate(state)) },
  { weight: 2, arbitrary: fc.constantFrom('cut' as const, 'cut' as const, 'refuse' as const, 'blackhole' as const, 'pass' as const, 'pass' as const).map((what) => new Network(what)) },
  { weight: 1, arbitrary: fc.constantFrom('check' as const, 'maintenance' as const).map((kind) => new Maintenance(kind)) },
  { weight: 3, arbitrary: fc.constantFrom(5, 20, 60, 150).map((ms) => new Pause(ms)) },
  { weight: 1, arbitrary: fc.constant(new CloseNow()) },
);

const testName = 'on a real server: no dead, busy or in-transaction client handed out, never above max, recovers, closes clean';

describe('the pool engine against its model (real server, fault proxy)', () => {
  it(testName, async () => {
    const property = fc.asyncProperty(
      scenarioArb,
      fc.commands([commandArb], { maxCommands: 40, size: 'max', replayPath: process.env.FUZZ_REPLAY_PATH }),
      async (scenario, commands) => {
        const world = await RealWorld.start(scenario);
        try {
          await fc.asyncModelRun(() => ({ model: world, real: world }), commands);
          await world.finish();
        } finally {
          await world.dispose();
        }
      },
    );
    // A fixed command sequence in CI (the timing is the real server's); FUZZ_SEED replays another.
    const seed = process.env.FUZZ_SEED === undefined ? 20_261_125 : Number(process.env.FUZZ_SEED);
    // Shrinking replays real runs: cut short after two minutes, so that a failure still
    // reports (with the smallest sequence found by then) well within the test's timeout.
    const details = await fc.check(property, {
      numRuns: RUNS, seed, path: process.env.FUZZ_PATH, interruptAfterTimeLimit: 120_000, markInterruptAsFailure: false,
    });
    if (!details.failed) return;
    const report = fc.defaultReportMessage(details) ?? '';
    const replayPath = /replayPath="([^"]*)"/.exec(report)?.[1];
    throw new Error(`real-server model test failed; replay the command sequence (not its timing) with\n` +
      `  FUZZ_SEED=${details.seed} FUZZ_PATH=${details.counterexamplePath ?? ''}${replayPath ? ` FUZZ_REPLAY_PATH='${replayPath}'` : ''} ` +
      `node --experimental-vm-modules node_modules/jest/bin/jest.js test/pool/model-real.spec.ts\n\n` +
      `${toError(details.errorInstance).message}\n\n${report}`);
  }, 300_000);
});
