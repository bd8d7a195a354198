import { PoolClosedError, TenantPools, type TenantPoolsOptions } from '../../lib/index.js';
import { adminQuery, eventually, recordingLogger, testUrl, uniqueAppName } from '../support/database.js';

/**
 * Review probes of TenantPools. Every tenant connects to the test database itself (the
 * database per tenant does not matter to these bounds), with one application_name per test.
 */
let appName: string;
let managers: TenantPools[] = [];

function tenantPools(options: Partial<TenantPoolsOptions> & { max?: number; acquireTimeoutMs?: number; bad?: string[] } = {}): TenantPools {
  const { max = 2, acquireTimeoutMs = 10_000, bad = [], ...rest } = options;
  const manager = new TenantPools({
    resolve: (id) => ({
      connectionString: testUrl(),
      connection: { application_name: appName, ...(bad.includes(id) ? { database: `review18_no_such_db_${id}` } : {}) },
      max, acquireTimeoutMs, unavailableTimeoutMs: 300, reconnectDelayMs: 200, logger: recordingLogger(),
    }),
    logger: recordingLogger(),
    ...rest,
  });
  managers.push(manager);
  return manager;
}

async function ourSessions(): Promise<number> {
  const rows = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [appName]);
  return Number(rows[0].n);
}

beforeEach(() => {
  appName = uniqueAppName();
});

afterEach(async () => {
  await Promise.all(managers.map((m) => m.close()));
  managers = [];
  await eventually('every tenant session has left the server', async () => (await ourSessions()) === 0, 5_000);
});

describe('TenantPools', () => {
  it('serves two new tenants that arrive together when one pool slot is left (maxPools: 1)', async () => {
    const tenants = tenantPools({ maxPools: 1 });
    // Two first requests at once: each gets its tenant's pool and runs a query on it.
    const results = await Promise.allSettled(['a', 'b'].map(async (id) => {
      const pool = await tenants.get(id);
      return (await pool.query<{ ok: number }>('SELECT 1 AS ok')).rows[0].ok;
    }));
    const failures = results.filter((r) => r.status === 'rejected').map((r) => String((r as PromiseRejectedResult).reason));
    // Expected: both served (the second creation waits for the first pool to become idle).
    // Before the fix: the second creation evicts the first pool before its request acquired:
    // "PoolClosedError: pool 'a': the pool is closing and hands out no connections".
    expect(failures).toEqual([]);
  });

  it('never hands a caller of get() a pool that is already closing (resolvers finishing a few ticks apart)', async () => {
    // maxPools 1; tenant b's resolver answers k microtask ticks after a's. For some k,
    // b's creation runs makeRoom after a's pool is entered but before a's caller has acquired
    // from it: a is "idle" (nothing checked out, nobody waiting) and is evicted.
    const failures: string[] = [];
    for (let k = 0; k < 12; k++) {
      appName = uniqueAppName();
      const ticks = async (n: number): Promise<void> => {
        for (let i = 0; i < n; i++) await Promise.resolve();
      };
      const tenants = new TenantPools({
        maxPools: 1,
        logger: recordingLogger(),
        resolve: async (id) => {
          await ticks(id === 'b' ? k : 0);
          return { connectionString: testUrl(), connection: { application_name: appName }, max: 2, acquireTimeoutMs: 5_000, logger: recordingLogger() };
        },
      });
      managers.push(tenants);
      const results = await Promise.allSettled(['a', 'b'].map(async (id) => (await tenants.get(id)).query('SELECT 1')));
      for (const r of results) if (r.status === 'rejected') failures.push(`k=${k}: ${String(r.reason)}`);
      await tenants.close();
    }
    expect(failures).toEqual([]);
  });

  it('serves a fan-out over more tenants than maxPools (a job querying every tenant at once)', async () => {
    // The README's resolver (synchronous), maxPools smaller than the number of tenants.
    const tenants = tenantPools({ maxPools: 2 });
    const ids = ['t1', 't2', 't3', 't4', 't5', 't6'];
    const results = await Promise.allSettled(ids.map(async (id) => (await tenants.get(id)).query('SELECT 1')));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${ids[i]}: ${String(r.reason)}`] : []));
    expect(failures).toEqual([]);
  });

  it('serves a fan-out over more tenants than maxPools when the resolver is async (a cached directory)', async () => {
    // A directory whose lookups are sometimes cached (answered at once) and sometimes one
    // more await deep: the creations then reach makeRoom a few ticks apart.
    const directory = new Map<string, string>();
    const lookUp = async (id: string): Promise<string> => {
      const cached = directory.get(id);
      if (cached) return cached;
      await Promise.resolve();
      directory.set(id, testUrl());
      return testUrl();
    };
    ['t2', 't4', 't6'].forEach((id) => directory.set(id, testUrl()));
    const tenants = new TenantPools({
      maxPools: 2,
      logger: recordingLogger(),
      resolve: async (id) => ({ connectionString: await lookUp(id), connection: { application_name: appName }, max: 2, acquireTimeoutMs: 5_000, logger: recordingLogger() }),
    });
    managers.push(tenants);
    const ids = ['t1', 't2', 't3', 't4', 't5', 't6'];
    const results = await Promise.allSettled(ids.map(async (id) => (await tenants.get(id)).query('SELECT 1')));
    const failures = results.flatMap((r, i) => (r.status === 'rejected' ? [`${ids[i]}: ${String(r.reason)}`] : []));
    expect(failures).toEqual([]);
  });

  it('does not close the pool get() just handed out while another tenant makes room (maxPools: 2, one busy)', async () => {
    const tenants = tenantPools({ maxPools: 2 });
    const busy = await tenants.get('busy');
    const held = await busy.acquire();
    try {
      // Request 1 for tenant b and request 2 for tenant c come in together.
      const [b, c] = await Promise.allSettled([
        tenants.get('b').then((pool) => pool.query('SELECT 1')),
        tenants.get('c').then((pool) => pool.query('SELECT 1')),
      ]);
      expect([b.status, c.status]).toEqual(['fulfilled', 'fulfilled']);
    } finally {
      held.release();
    }
  });

  it('a pool from get() is usable after an await in the caller, even when the manager evicted it meanwhile', async () => {
    const tenants = tenantPools({ maxPools: 1 });
    const a = await tenants.get('a');
    // Another request's tenant arrives while this one is between get() and its query.
    const other = tenants.get('b');
    await other;
    const result = await a.query('SELECT 1').catch((error: unknown) => error);
    // Not a defect by itself (the caller held a reference across another creation), but it
    // shows the shape of the race: get() hands out a PgPool that eviction may close under it.
    expect(result).toBeInstanceOf(PoolClosedError);
  });

  it('wakes a creation waiting for room when a busy pool becomes idle without a release (its waiters gave up)', async () => {
    // maxPools 1, the only pool is a failing tenant with a request waiting: not idle.
    const tenants = tenantPools({ maxPools: 1, bad: ['down'], acquireTimeoutMs: 4_000 });
    const down = await tenants.get('down');
    const failing = down.query('SELECT 1').catch((error: unknown) => error); // fails after unavailableTimeoutMs (300 ms)
    await eventually('the request waits on the failing pool', () => down.getStats().requestsWaiting === 1);
    const started = performance.now();
    const pool = await tenants.get('good');
    const waitedMs = performance.now() - started;
    await failing;
    await pool.query('SELECT 1');
    // The failing pool was idle 300 ms in, and could have been evicted then.
    // Before the fix: the creation waits its whole acquireTimeoutMs (4 s): no 'release' ever wakes it.
    expect(waitedMs).toBeLessThan(1_500);
  });

  it('wakes a creation waiting for room when a pool is evicted by hand', async () => {
    const tenants = tenantPools({ maxPools: 1, acquireTimeoutMs: 4_000, closeTimeoutMs: 100 });
    const a = await tenants.get('a');
    const held = await a.acquire();
    const started = performance.now();
    const waiting = tenants.get('b');
    await new Promise((resolve) => setTimeout(resolve, 100));
    // The operator evicts 'a' (its client is closed after closeTimeoutMs): room for 'b' now.
    const evicted = tenants.evict('a');
    const pool = await waiting;
    const waitedMs = performance.now() - started;
    await evicted;
    held.release();
    await pool.query('SELECT 1');
    expect(waitedMs).toBeLessThan(1_500);
  });

  it('wakes a creation waiting for room when the busy pool\'s client comes back through the slow return path', async () => {
    const tenants = tenantPools({ maxPools: 1, acquireTimeoutMs: 4_000 });
    const a = await tenants.get('a');
    const held = await a.acquire();
    await held.query('BEGIN'); // left open: the return path rolls it back, asynchronously
    const started = performance.now();
    const waiting = tenants.get('b');
    await new Promise((resolve) => setTimeout(resolve, 100));
    held.release();
    const pool = await waiting;
    const waitedMs = performance.now() - started;
    await pool.query('SELECT 1');
    // 'release' fires before the ROLLBACK is done: the woken creation still sees 'a' busy,
    // goes back to sleep, and nothing wakes it again before its deadline.
    expect(waitedMs).toBeLessThan(1_500);
  });

  it('does not close, as unused, a pool its caller keeps using (queries every 20 ms, one get())', async () => {
    // docs/tenants.md: "a pool unused this long, with nothing checked out, is closed".
    const tenants = tenantPools({ idleCloseMs: 300 });
    const pool = await tenants.get('worker');
    const failures: string[] = [];
    const until = performance.now() + 1_200;
    while (performance.now() < until) {
      await pool.query('SELECT 1').catch((error: Error) => failures.push(error.message));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    // Before the fix: closed ~300 ms in (usedAt is only refreshed by get()/peek(), not by checkouts),
    // and every later query fails with PoolClosedError.
    expect(failures.slice(0, 1)).toEqual([]);
  });

  it('close() ends even when a resolver never answers (shutdown while a pool is being created)', async () => {
    // Not in `managers`: its close() is what hangs.
    const tenants = new TenantPools({ resolve: () => new Promise<never>(() => undefined), logger: recordingLogger() });
    const creating = tenants.get('hung').catch((error: unknown) => error);
    const closed = tenants.close().then(() => 'closed');
    const outcome = await Promise.race([closed, new Promise((resolve) => setTimeout(() => resolve('still closing after 5 s'), 5_000))]);
    expect(outcome).toBe('closed');
    void creating;
  });

  it('get() fails in bounded time when the resolver never answers', async () => {
    const tenants = new TenantPools({ resolve: () => new Promise<never>(() => undefined), logger: recordingLogger(), resolveTimeoutMs: 500 });
    managers.push(tenants);
    const outcome = await Promise.race([
      tenants.get('hung').then(() => 'pool', (error: Error) => error.name),
      new Promise((resolve) => setTimeout(() => resolve('no answer after 5 s'), 5_000)),
    ]);
    // Bounded by resolveTimeoutMs: a PoolTimeoutError (a 503 through Nest).
    expect(outcome).toBe('PoolTimeoutError');
  });
});
