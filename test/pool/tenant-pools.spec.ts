import { PoolTimeoutError, PoolUnavailableError, TenantPools, UnknownPoolError, type PgPool, type PooledClient, type TenantPoolsOptions } from '../../lib/index.js';
import { adminQuery, eventually, recordingLogger, testUrl, uniqueAppName } from '../support/database.js';
import { seededRandom } from '../support/random.js';

/** Databases this file creates: one per tenant, as SaaS back ends with a database per tenant have. */
const TENANTS = 200;
const PREFIX = `tenant_${process.pid}_`;
const tenantIds = Array.from({ length: TENANTS }, (_, i) => `t${i + 1}`);
const databaseOf = (id: string): string => `${PREFIX}${id}`;

let appName: string;
let managers: TenantPools[] = [];

/** A tenant pools manager whose pools connect to the tenant's database, all with one application_name. */
function tenantPools(options: Partial<TenantPoolsOptions> & { max?: number; acquireTimeoutMs?: number } = {}): TenantPools {
  const { max = 2, acquireTimeoutMs = 20_000, ...rest } = options;
  const resolved: string[] = [];
  const manager = new TenantPools({
    resolve: (id) => {
      resolved.push(id);
      if (!tenantIds.includes(id) && id !== 'missing') return undefined;
      return {
        connectionString: testUrl(),
        connection: { database: databaseOf(id), application_name: appName },
        max, acquireTimeoutMs, unavailableTimeoutMs: 1_000, reconnectDelayMs: 200, logger: recordingLogger(),
      };
    },
    logger: recordingLogger(),
    ...rest,
  });
  Object.assign(manager, { resolved });
  managers.push(manager);
  return manager;
}

async function ourSessions(): Promise<number> {
  const rows = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [appName]);
  return Number(rows[0].n);
}

beforeAll(async () => {
  // A template with a table, copied per tenant: 200 small databases in a few seconds.
  await adminQuery(`CREATE DATABASE ${PREFIX}template`);
  for (let i = 0; i < TENANTS; i += 20) {
    await Promise.all(tenantIds.slice(i, i + 20).map((id) => adminQuery(`CREATE DATABASE ${databaseOf(id)} TEMPLATE ${PREFIX}template`)));
  }
}, 240_000);

afterAll(async () => {
  for (let i = 0; i < TENANTS; i += 20) {
    await Promise.all(tenantIds.slice(i, i + 20).map((id) => adminQuery(`DROP DATABASE IF EXISTS ${databaseOf(id)} WITH (FORCE)`)));
  }
  await adminQuery(`DROP DATABASE IF EXISTS ${PREFIX}template`);
}, 240_000);

beforeEach(() => {
  appName = uniqueAppName();
});

afterEach(async () => {
  const leaks = managers.flatMap((m) => m.pools()).filter((pool) => pool.checkedOutCount > 0).map((pool) => pool.name);
  await Promise.all(managers.map((m) => m.close()));
  managers = [];
  expect(leaks).toEqual([]);
  // Shutdown closes every pool: none of their sessions is left on the server.
  await eventually('every tenant session has left the server', async () => (await ourSessions()) === 0, 5_000);
});

describe('tenant pools', () => {
  it('serves random traffic over 200 tenant databases within the budget, evicting and re-creating pools', async () => {
    const tenants = tenantPools({ maxPools: 30, connectionBudget: 10, max: 3 });
    let peakServer = 0;
    let peakPools = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) peakServer = Math.max(peakServer, await ourSessions());
    })();
    const random = seededRandom(7);
    const served = new Map<string, number>();
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 40; i++) {
        // Most traffic on a few busy tenants, the rest spread thin: pools are evicted and come back.
        const id = random(2) === 0 ? tenantIds[random(8)] : tenantIds[random(TENANTS)];
        const pool = await tenants.get(id);
        peakPools = Math.max(peakPools, tenants.size);
        const { rows } = await pool.query<{ db: string }>('SELECT current_database() AS db');
        expect(rows[0].db).toBe(databaseOf(id));
        served.set(id, (served.get(id) ?? 0) + 1);
      }
    };
    await Promise.all(Array.from({ length: 24 }, worker));
    sampling = false;
    await sampler;

    expect([...served.values()].reduce((a, b) => a + b, 0)).toBe(24 * 40);
    expect(served.size).toBeGreaterThan(100);
    expect(peakServer).toBeLessThanOrEqual(10);
    expect(peakPools).toBeLessThanOrEqual(30);
    // More tenants were served than pools may be open: pools were evicted and created again.
    const resolved = (tenants as unknown as { resolved: string[] }).resolved;
    expect(resolved.length).toBeGreaterThan(served.size);
    expect(tenants.health()).toMatchObject({ maxPools: 30, failingCount: 0, budget: { max: 10 } });
  }, 120_000);

  it('creates a pool once for concurrent first requests, and names how ids resolve for an unknown one', async () => {
    const tenants = tenantPools();
    const pools = await Promise.all(Array.from({ length: 20 }, () => tenants.get('t1')));
    expect(new Set(pools).size).toBe(1);
    expect((tenants as unknown as { resolved: string[] }).resolved).toEqual(['t1']);
    const unknown = await tenants.get('nobody').catch((error: unknown) => error);
    expect(unknown).toBeInstanceOf(UnknownPoolError);
    expect((unknown as Error).message).toBe("pool 'nobody': no such database id: resolve('nobody') returned no pool options for it");
  });

  it('keeps a failing tenant to its own requests: the others are served meanwhile, it retries with backoff', async () => {
    const tenants = tenantPools({ connectionBudget: 4 });
    const missing = await tenants.get('missing');
    const failed = missing.query('SELECT 1').catch((error: unknown) => error);
    // The healthy tenants are served while the failing one's request waits out its bound.
    const healthy = await Promise.all(tenantIds.slice(0, 10).map(async (id) => (await tenants.get(id)).query('SELECT 1 AS ok')));
    expect(healthy.every((result) => result.rows[0].ok === 1)).toBe(true);
    const error = await failed;
    expect(error).toBeInstanceOf(PoolUnavailableError);
    expect((error as Error).message).toMatch(/^pool 'missing': the database is unavailable: .*database "tenant_\d+_missing" does not exist/);
    expect(tenants.health()).toMatchObject({ failing: ['missing'], failingCount: 1 });
    // A later request fails the same way, after another attempt: retried, with backoff, not a storm.
    const again = await missing.query('SELECT 1').catch((e: unknown) => e);
    expect(again).toBeInstanceOf(PoolUnavailableError);
    const attempts = missing.getStats().connectionsErrors;
    expect(attempts).toBeGreaterThanOrEqual(2);
    expect(attempts).toBeLessThanOrEqual(8);
    expect(tenants.ids()).toContain('missing');
  });

  it('closes a pool unused for idleCloseMs and creates it again on its next use', async () => {
    const tenants = tenantPools({ idleCloseMs: 100 });
    const first = await tenants.get('t2');
    await first.query('SELECT 1');
    await eventually('the idle pool is closed', () => tenants.size === 0 && first.state === 'closed');
    const second = await tenants.get('t2');
    expect(second).not.toBe(first);
    expect((await second.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db).toBe(databaseOf('t2'));
  });

  it('waits for a pool to become idle when every one of maxPools is busy, and times out like a request', async () => {
    const tenants = tenantPools({ maxPools: 2, acquireTimeoutMs: 300 });
    const held: Array<{ pool: PgPool; client: PooledClient }> = [];
    for (const id of ['t3', 't4']) {
      const pool = await tenants.get(id);
      held.push({ pool, client: await pool.acquire() });
    }
    const refused = await tenants.get('t5').catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(PoolTimeoutError);
    expect((refused as Error).message).toContain('all 2 tenant pools (maxPools) had clients checked out or requests waiting');

    const waiting = tenants.get('t5');
    held[0].client.release();
    const pool = await waiting;
    expect(tenants.ids().sort()).toEqual(['t4', 't5']);
    expect(held[0].pool.state).not.toBe('open');
    expect((await pool.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db).toBe(databaseOf('t5'));
    held[1].client.release();
  });
});
