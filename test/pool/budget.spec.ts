import { ConnectionBudget, PoolConfigError, PoolTimeoutError, type PgPool, type RemoveReason } from '../../lib/index.js';
import { adminQuery, APP_PREFIX, createTestPool, eventually } from '../support/database.js';
import { seededRandom } from '../support/random.js';

/** Several pools sharing one budget, each with its own application_name. */
function poolsSharing(budget: ConnectionBudget, count: number, max = 3): PgPool[] {
  return Array.from({ length: count }, (_, i) => createTestPool({ name: `tenant-${i}`, min: 0, max, budget, acquireTimeoutMs: 20_000 }));
}

function removals(pool: PgPool): RemoveReason[] {
  const reasons: RemoveReason[] = [];
  pool.on('remove', (_client, reason) => reasons.push(reason));
  return reasons;
}

async function serverSessions(): Promise<number> {
  const rows = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name LIKE $1', [`${APP_PREFIX}%`]);
  return Number(rows[0].n);
}

describe('a connection budget shared by pools', () => {
  it('never lets the pools hold more connections together than it allows, and serves every request', async () => {
    const budget = new ConnectionBudget(3);
    const pools = poolsSharing(budget, 6);
    let peakOpen = 0;
    const measure = (): void => {
      const open = pools.reduce((sum, pool) => sum + pool.totalCount, 0);
      if (open > peakOpen) peakOpen = open;
    };
    for (const pool of pools) pool.on('connect', measure);
    const moved = pools.map(removals);
    let peakServer = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) peakServer = Math.max(peakServer, await serverSessions());
    })();

    // Random traffic: each request picks a pool, holds its connection for a short query.
    const random = seededRandom(42);
    const results: number[] = [];
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 25; i++) {
        const pool = pools[random(pools.length)];
        const { rows } = await pool.withConnection((client) => client.query<{ n: number }>('SELECT $1::int AS n, pg_sleep($2)', [i, random(3) / 1000]));
        results.push(rows[0].n);
      }
    };
    await Promise.all(Array.from({ length: 12 }, worker));
    sampling = false;
    await sampler;

    expect(results).toHaveLength(12 * 25);
    // Used to the full, never beyond; connections moved between pools as demand did.
    expect(peakOpen).toBe(3);
    expect(peakServer).toBeLessThanOrEqual(3);
    expect(budget.inUse).toBe(pools.reduce((sum, pool) => sum + pool.totalCount, 0));
    expect(moved.flat().filter((reason) => reason === 'budget').length).toBeGreaterThan(0);
  });

  it('times a pool waiting for the budget out as its requests would, and serves it once a permit comes back', async () => {
    const budget = new ConnectionBudget(2);
    const [a, b] = poolsSharing(budget, 2);
    const held = [await a.acquire(), await a.acquire()];
    const timedOut = await b.acquire({ timeoutMs: 100 }).catch((error: unknown) => error);
    expect(timedOut).toBeInstanceOf(PoolTimeoutError);

    const reasons = removals(a);
    const waiting = b.acquire({ timeoutMs: 10_000 });
    // A's connection comes back while B waits for the budget: A closes it, B opens one.
    held[0].release();
    const client = await waiting;
    expect(reasons).toContain('budget');
    expect(a.openCount + b.openCount).toBe(2);
    client.release();
    held[1].release();
  });

  it('takes an idle connection from the least recently used pool for a pool that waits', async () => {
    const budget = new ConnectionBudget(2);
    const [older, newer, waiting] = poolsSharing(budget, 3);
    await older.query('SELECT 1');
    await newer.query('SELECT 1');
    await eventually('both connections are idle', () => older.idleCount === 1 && newer.idleCount === 1);
    const olderRemovals = removals(older);
    const newerRemovals = removals(newer);
    await waiting.query('SELECT 1');
    expect(olderRemovals).toEqual(['budget']);
    expect(newerRemovals).toEqual([]);
    expect(budget.stats()).toMatchObject({ inUse: 2, waiting: 0, reclaimed: 1 });
  });

  it('serves pools waiting for the budget in the order they asked', async () => {
    const budget = new ConnectionBudget(1);
    const [a, b, c] = poolsSharing(budget, 3);
    const held = await a.acquire();
    const order: string[] = [];
    const second = b.acquire().then((client) => {
      order.push('b');
      return client;
    });
    await eventually('b waits for the budget', () => budget.stats().waiting === 1);
    const third = c.acquire().then((client) => {
      order.push('c');
      client.release();
    });
    await eventually('c waits too', () => budget.stats().waiting === 2);
    held.release();
    (await second).release();
    await third;
    expect(order).toEqual(['b', 'c']);
  });

  it('refuses a pool whose min the budget could never allow, and a budget that is not one', () => {
    const budget = new ConnectionBudget(2);
    expect(() => createTestPool({ min: 3, max: 3, budget })).toThrow(PoolConfigError);
    expect(() => createTestPool({ min: 3, max: 3, budget })).toThrow(/min.*3.*exceeds the connection budget's max \(2\)/);
    expect(() => createTestPool({ budget: { max: 2 } as unknown as ConnectionBudget })).toThrow(/must be a ConnectionBudget/);
    expect(() => new ConnectionBudget(0)).toThrow(RangeError);
  });
});
