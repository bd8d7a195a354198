import { createTestPool, eventually } from '../support/database.js';
import { PostgresServer } from '../support/postgres-server.js';
import { TEST_PASSWORD } from '../support/test-secrets.js';

/** What a request may say while the server is down: each names the cause. */
const CLEAR_OUTAGE_ERRORS = [
  /terminating connection due to administrator command/,
  /Connection terminated/,
  /the database system is shutting down/,
  /the database system is starting up/,
  /no connection available within \d+ ms/,
  /ECONNREFUSED|ECONNRESET|EPIPE/,
  /Client has encountered a connection error and is not queryable/,
];

describe('a server restart under load', () => {
  let server: PostgresServer;

  beforeAll(async () => {
    server = await PostgresServer.create({ password: TEST_PASSWORD });
    await server.start();
  });

  afterAll(async () => {
    await server.destroy();
  });

  it('recovers: every request succeeds again soon after, the pool is back at min, and never exceeded max', async () => {
    const min = 3;
    const max = 5;
    const pool = createTestPool({
      connectionString: server.url(), min, max, acquireTimeoutMs: 2_000, reconnectDelayMs: 100, reconnectMaxDelayMs: 400,
    });
    await pool.open({ wait: true });
    let peakSize = 0;
    pool.on('connect', () => { peakSize = Math.max(peakSize, pool.totalCount); });

    type Outcome = { startedAt: number; endedAt: number; error?: string };
    const outcomes: Outcome[] = [];
    let running = true;
    const deadline = Date.now() + 60_000;
    const worker = async (): Promise<void> => {
      // Bounded in count and in time, whatever happens.
      for (let i = 0; i < 100_000 && running && Date.now() < deadline; i++) {
        const startedAt = Date.now();
        try {
          await pool.query('SELECT pg_sleep(0.002)');
          outcomes.push({ startedAt, endedAt: Date.now() });
        } catch (error) {
          outcomes.push({ startedAt, endedAt: Date.now(), error: (error as Error).message });
        }
        peakSize = Math.max(peakSize, pool.getStats().poolSize);
      }
    };
    const workers = [1, 2, 3, 4].map(worker);
    const succeeded = (): number => outcomes.filter((o) => !o.error).length;
    try {
      await eventually('the load is running', () => succeeded() >= 50);

      await server.stop('fast');
      await eventually('requests see the outage', () => outcomes.some((o) => o.error), 10_000);
      const restartedAt = Date.now();
      await server.start();

      await eventually('requests succeed again', () => outcomes.some((o) => !o.error && o.startedAt >= restartedAt), 15_000);
      const recoveredAt = outcomes.find((o) => !o.error && o.startedAt >= restartedAt)?.endedAt as number;
      const settled = outcomes.length;
      await eventually('100 more requests answered', () => outcomes.length >= settled + 100, 15_000);
      running = false;
      await Promise.all(workers);

      const errors = outcomes.filter((o) => o.error).map((o) => o.error as string);
      for (const message of errors) {
        expect(CLEAR_OUTAGE_ERRORS.some((pattern) => pattern.test(message)) ? 'clear' : message).toBe('clear');
      }
      // No request started after recovery got a dead connection.
      expect(outcomes.filter((o) => o.startedAt >= recoveredAt && o.error)).toEqual([]);
      expect(recoveredAt - restartedAt).toBeLessThan(10_000);
      await eventually('the pool is back at min', () => pool.getStats().poolSize >= min && pool.getStats().poolAvailable >= min);
      expect(peakSize).toBeLessThanOrEqual(max);
      expect(pool.getStats().connectionsLost).toBeGreaterThanOrEqual(1);
    } finally {
      running = false;
      await Promise.all(workers);
    }
  });
});
