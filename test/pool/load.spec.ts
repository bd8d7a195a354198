import { appNameOf, backendCount, createTestPool } from '../support/database.js';

describe('load held', () => {
  it('64 workers on max 8: every request answered, never past max on either side, FIFO keeps waits bounded', async () => {
    const max = 8;
    const acquireTimeoutMs = 10_000;
    const pool = createTestPool({ min: 2, max, acquireTimeoutMs });
    const app = appNameOf(pool);
    const violations: string[] = [];
    let maxWaitMs = 0;
    let answered = 0;
    let leftInTransaction = 0;

    // Invariants, checked continuously while the load runs.
    const sampler = setInterval(() => {
      const stats = pool.getStats();
      if (pool.totalCount > max) violations.push(`pool holds ${pool.totalCount} connections`);
      if (stats.poolSize > max) violations.push(`poolSize ${stats.poolSize}`);
      if (pool.checkedOutCount + stats.poolAvailable > max) violations.push('checked out + idle > max');
    }, 5);
    let serverPeak = 0;
    let sampling = true;
    const serverSampler = (async () => {
      while (sampling) {
        serverPeak = Math.max(serverPeak, await backendCount(app));
      }
    })();

    const deadline = Date.now() + 3_000;
    const worker = async (w: number): Promise<void> => {
      for (let i = 0; i < 2_000 && Date.now() < deadline; i++) {
        const askedAt = Date.now();
        const client = await pool.acquire();
        maxWaitMs = Math.max(maxWaitMs, Date.now() - askedAt);
        if ((w + i) % 4 === 0) {
          // A careless handler: returns the client inside a transaction.
          await client.query('BEGIN');
          await client.query('SELECT 1');
          leftInTransaction++;
        } else {
          await client.query('SELECT pg_sleep(0.001)');
        }
        await client[Symbol.asyncDispose]();
        answered++;
      }
    };
    try {
      await Promise.all(Array.from({ length: 64 }, (_, w) => worker(w)));
    } finally {
      clearInterval(sampler);
      sampling = false;
      await serverSampler;
    }

    expect(violations).toEqual([]);
    expect(answered).toBeGreaterThan(64);
    expect(serverPeak).toBeLessThanOrEqual(max);
    expect(maxWaitMs).toBeLessThan(acquireTimeoutMs);
    const stats = pool.getStats();
    expect(stats).toMatchObject({ requestsErrors: 0, requestsTimeouts: 0, returnsBad: leftInTransaction, requestsWaiting: 0 });
    expect(await backendCount(app, 'idle in transaction')).toBe(0);
  });
});
