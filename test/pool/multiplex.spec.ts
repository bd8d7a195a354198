import Cursor from 'pg-cursor';
import { PoolClosedError, PoolConfigError, PgPool } from '../../lib/index.js';
import { firstKeyword, isShareable } from '../../lib/pool/multiplexer.js';
import { adminQuery, appNameOf, createTestPool, eventually, testUrl } from '../support/database.js';

/** Runs `n` statements through `pool.query()` at once, keeping the largest `multiplexInFlight` seen. */
async function burst(pool: PgPool, n: number, text: (i: number) => string): Promise<{ results: PromiseSettledResult<unknown>[]; peakInFlight: number }> {
  let peakInFlight = 0;
  const watch = setInterval(() => { peakInFlight = Math.max(peakInFlight, pool.getStats().multiplexInFlight); }, 1);
  const running = Array.from({ length: n }, (_, i) => pool.query(text(i)).then((r) => { peakInFlight = Math.max(peakInFlight, pool.getStats().multiplexInFlight + 1); return r; }));
  try {
    return { results: await Promise.allSettled(running), peakInFlight };
  } finally {
    clearInterval(watch);
  }
}

describe('multiplexing: pool.query() pipelined over shared connections', () => {
  it('pipelines statements onto at most the configured shared connections, and gives them back when idle', async () => {
    const pool = createTestPool({ min: 0, max: 4, multiplex: { depth: 32, connections: 2 } });
    const { results, peakInFlight } = await burst(pool, 200, (i) => `SELECT pg_backend_pid() AS pid, ${i} AS i, pg_sleep(0.001)`);
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    const pids = new Set(results.map((r) => ((r as PromiseFulfilledResult<{ rows: Array<{ pid: number }> }>).value.rows[0].pid)));
    expect(pids.size).toBeLessThanOrEqual(2);
    // More statements outstanding than connections: they were pipelined.
    expect(peakInFlight).toBeGreaterThan(2);
    expect(pool.getStats()).toMatchObject({ requestsNum: 200, requestsErrors: 0 });
    await eventually('the shared connections are back in the pool', () => pool.getStats().multiplexConnections === 0 && pool.checkedOutCount === 0, 5_000);
  });

  it('fails only the statement that errs; the others on the same connection succeed', async () => {
    const pool = createTestPool({ min: 0, max: 1, multiplex: true });
    const { results } = await burst(pool, 30, (i) => (i === 10 ? 'SELECT 1/0' : `SELECT ${i} AS i`));
    const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    expect(failed).toEqual([10]);
    expect((results[10] as PromiseRejectedResult).reason).toMatchObject({ code: '22012' });
    expect((results[11] as PromiseFulfilledResult<{ rows: unknown[] }>).value.rows).toEqual([{ i: 11 }]);
    expect(pool.getStats().returnsBad).toBe(0);
  });

  it('never shares what changes a session: BEGIN, SET, several commands get a connection of their own', async () => {
    expect(['SELECT 1', ' (select 1)', 'WITH x AS (SELECT 1) SELECT * FROM x', '-- c\nINSERT INTO t VALUES (1)'].map(firstKeyword))
      .toEqual(['select', 'select', 'with', 'insert']);
    for (const text of ['BEGIN', 'SET search_path TO x', 'SELECT 1; SET ROLE x', 'LISTEN x', 'COPY t TO STDOUT', 'CALL p()', 'DO $$ BEGIN END $$',
      // PostgreSQL nests block comments: this is a SET.
      '/* a /* b */ SELECT */ SET statement_timeout = 1']) {
      expect({ text, shareable: isShareable({ text }) }).toEqual({ text, shareable: false });
    }
    expect(isShareable({ text: 'SELECT $1::int', values: [1] })).toBe(true);
    expect(isShareable({ text: 'SELECT 1', name: 'prepared' })).toBe(false);

    const pool = createTestPool({ min: 0, max: 2, multiplex: true });
    const several = await pool.query('SELECT 1 AS a; SELECT 2 AS b') as unknown as Array<{ rows: unknown[] }>;
    expect(several.map((r) => r.rows)).toEqual([[{ a: 1 }], [{ b: 2 }]]);
    // BEGIN through pool.query() runs on a connection of its own, which the pool rolls back on return.
    await pool.query('BEGIN');
    await eventually('no connection is left in a transaction', () => pool.checkedOutCount === 0, 5_000);
    expect(pool.getStats().returnsBad).toBe(1);
  });

  it('gives checkouts a connection of their own, never in pipeline mode, while statements stream', async () => {
    const pool = createTestPool({ min: 0, max: 2, acquireTimeoutMs: 10_000, multiplex: { depth: 2 } });
    let stop = false;
    const streams = Array.from({ length: 8 }, async () => {
      while (!stop) await pool.query('SELECT pg_sleep(0.002)');
    });
    let client: Awaited<ReturnType<PgPool['acquire']>> | undefined;
    try {
      // With 2 in flight per shared connection and 8 streams, both connections are shared.
      await eventually('both connections are shared', () => pool.getStats().multiplexConnections === 2, 10_000);
      client = await pool.acquire();
      // A cursor works: pipeline mode refuses cursors, so this one is not in it.
      const cursor = client.query(new Cursor('SELECT generate_series(1, 5) AS n'));
      expect(await cursor.read(10)).toHaveLength(5);
      await cursor.close();
      await client.query('BEGIN');
      await client.query('SELECT 1');
      await client.query('COMMIT');
    } finally {
      client?.release();
      stop = true;
      await Promise.all(streams);
    }
  });

  it('fails every statement in flight with the connection error when its backend dies; nothing hangs, nothing is retried', async () => {
    const pool = createTestPool({ min: 0, max: 1, multiplex: true });
    await adminQuery('CREATE TABLE IF NOT EXISTS multiplex_writes (n int)');
    await adminQuery('TRUNCATE multiplex_writes');
    const running = Array.from({ length: 20 }, (_, i) => pool.query(`INSERT INTO multiplex_writes SELECT ${i} FROM pg_sleep(0.05)`));
    await eventually('statements are in flight', () => pool.getStats().multiplexInFlight >= 10, 5_000);
    await adminQuery('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1', [appNameOf(pool)]);
    const settled = await Promise.allSettled(running);
    const failed = settled.filter((r) => r.status === 'rejected');
    expect(failed.length).toBeGreaterThan(0);
    for (const failure of failed) expect(String((failure as PromiseRejectedResult).reason)).toMatch(/terminat|Connection|ended|ECONNRESET/i);
    // Each statement ran at most once: none was retried on another connection.
    const written = await adminQuery<{ n: number; times: string }>('SELECT n, count(*) AS times FROM multiplex_writes GROUP BY n');
    expect(written.every((row) => row.times === '1')).toBe(true);
    expect(written.length).toBe(settled.filter((r) => r.status === 'fulfilled').length);
    // The pool recovers on a new connection.
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('close() fails the statements still waiting and gives the shared connections back', async () => {
    const pool = createTestPool({ min: 0, max: 1, multiplex: { depth: 1 } });
    const running = Array.from({ length: 5 }, () => pool.query('SELECT pg_sleep(0.05)'));
    // The first runs on the only connection (alone: nothing to pipeline with yet); the rest wait for room.
    await eventually('one statement is running, the others waiting', () => pool.getStats().poolAvailable === 0 && pool.openCount === 1, 5_000);
    const outcomes = Promise.allSettled(running);
    await pool.close();
    const settled = await outcomes;
    expect(settled[0].status).toBe('fulfilled');
    expect(settled.slice(1).every((r) => r.status === 'rejected' && r.reason instanceof PoolClosedError)).toBe(true);
  });

  it('lets each waiting statement keep its own deadline, reports no shared connection as a leak, takes a callback in the config', async () => {
    const pool = createTestPool({ min: 1, max: 1, acquireTimeoutMs: 300, leakDetectionMs: 100, multiplex: true });
    await pool.open({ wait: true, timeoutMs: 10_000 });
    const held = await pool.acquire();
    const startedAt = performance.now();
    const at = (ms: number): Promise<string> => new Promise((resolve) => setTimeout(resolve, ms))
      .then(() => pool.query('SELECT 1'))
      .then(() => 'ok', (error: Error) => error.name);
    const outcomes = Promise.all([0, 50, 250].map(at));
    // Released at 420 ms: the first two have waited past 300 ms, the last only 170.
    setTimeout(() => held.release(), 420);
    expect(await outcomes).toEqual(['PoolTimeoutError', 'PoolTimeoutError', 'ok']);
    expect(performance.now() - startedAt).toBeGreaterThanOrEqual(420);
    // Shared connections held through a burst longer than leakDetectionMs are the pool's own
    // (the checkout held above for 420 ms was a leak report of its own: counted before this).
    pool.resetStats();
    const burstEnd = performance.now() + 400;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (performance.now() < burstEnd) await pool.query('SELECT pg_sleep(0.005)');
    }));
    expect(pool.getStats().leaksDetected).toBe(0);
    const viaConfig = await new Promise<unknown>((resolve) => {
      void pool.query({ text: 'SELECT 1 AS one', callback: (error: Error | undefined, result: { rows: unknown[] }) => resolve(error ?? result.rows) } as never);
    });
    expect(viaConfig).toEqual([{ one: 1 }]);
  });

  it('refuses a bad multiplex option with an error naming it', () => {
    expect(() => new PgPool({ connectionString: testUrl(), multiplex: { depth: 0 } })).toThrow(/`multiplex.depth` must be an integer >= 1/);
    expect(() => new PgPool({ connectionString: testUrl(), multiplex: { width: 2 } as never })).toThrow(PoolConfigError);
  });
});
