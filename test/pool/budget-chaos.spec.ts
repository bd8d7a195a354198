import { ConnectionBudget, type PgPool, type PgPoolOptions } from '../../lib/index.js';
import { adminQuery, appNameOf, createTestPool, eventually, terminateBackends } from '../support/database.js';
import { seededRandom } from '../support/random.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Randomized churn over pools sharing a budget: queries, held checkouts, connections lost
 * (pg_terminate_backend), lifetimes expiring, resize(), pools closed and replaced, a pool
 * whose database is missing, multiplexed pools. The invariant: the permits held never
 * exceed the budget, the pools' connections never exceed it, and once quiet the permits
 * held equal the connections open.
 */
describe('the connection budget under randomized churn', () => {
  for (const seed of [1, 2, 3]) {
    it(`holds with seed ${seed}`, async () => {
      const random = seededRandom(seed);
      const MAX = 3;
      const budget = new ConnectionBudget(MAX);
      const all: PgPool[] = [];
      const make = (i: number): PgPool => {
        const options: Partial<PgPoolOptions> = {
          name: `p${i}-${all.length}`, min: 0, max: 1 + random(3), budget, acquireTimeoutMs: 1_500, unavailableTimeoutMs: 300,
          reconnectDelayMs: 50, reconnectMaxDelayMs: 200,
        };
        if (random(3) === 0) options.maxLifetimeMs = 200 + random(300);
        if (random(4) === 0) options.multiplex = true;
        if (i === 0) options.connection = { database: 'review18_missing_database' };
        const pool = createTestPool(options);
        pool.on('error', () => undefined);
        all.push(pool);
        return pool;
      };
      const live: PgPool[] = Array.from({ length: 5 }, (_, i) => make(i));
      let peakPermits = 0;
      let peakConnections = 0;
      const measure = (): void => {
        peakPermits = Math.max(peakPermits, budget.inUse);
        peakConnections = Math.max(peakConnections, all.reduce((sum, pool) => sum + pool.totalCount, 0));
      };
      for (const pool of all) pool.on('connect', measure);
      let sampling = true;
      let peakServer = 0;
      const sampler = (async () => {
        while (sampling) {
          measure();
          const rows = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = ANY($1)', [all.map(appNameOf)]);
          peakServer = Math.max(peakServer, Number(rows[0].n));
        }
      })();
      const errors = new Map<string, number>();
      const note = (error: unknown): void => {
        const name = (error as Error).name ?? 'Error';
        errors.set(name, (errors.get(name) ?? 0) + 1);
      };

      const worker = async (w: number): Promise<void> => {
        for (let step = 0; step < 40; step++) {
          const index = random(live.length);
          const pool = live[index];
          const op = random(20);
          try {
            if (op < 10) {
              await pool.query('SELECT pg_sleep($1)', [random(10) / 1000]);
            } else if (op < 13) {
              const client = await pool.acquire();
              await sleep(random(40));
              client.release(random(5) === 0 ? new Error('give it up') : undefined);
            } else if (op < 15) {
              await terminateBackends(appNameOf(pool));
            } else if (op < 17) {
              const max = 1 + random(3);
              await pool.resize(0, max);
            } else if (op < 18 && w === 0) {
              // Replace the pool: closed with whatever it holds, a new one in its place.
              const fresh = make(index);
              fresh.on('connect', measure);
              live[index] = fresh;
              await pool.close({ timeoutMs: random(2) === 0 ? 0 : 200 });
            } else {
              await pool.withTransaction((client) => client.query('SELECT 1'));
            }
          } catch (error) {
            note(error);
          }
          measure();
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      sampling = false;
      await sampler;

      // Quiet: every permit held is a connection open or being opened.
      await eventually('the permits held match the connections open', () => budget.inUse === all.reduce((sum, pool) => sum + pool.totalCount, 0), 5_000);
      // Never beyond the budget: in permits, in the pools' connections, on the server.
      expect({ seed, peakPermits: Math.min(peakPermits, MAX + 1), peakConnections: Math.min(peakConnections, MAX + 1), peakServer: Math.min(peakServer, MAX + 1) })
        .toEqual({ seed, peakPermits: MAX, peakConnections: MAX, peakServer: Math.min(peakServer, MAX) });
      expect(errors.size).toBeGreaterThan(0); // the missing database, at least: the churn did reach the failure paths
    }, 60_000);
  }
});
