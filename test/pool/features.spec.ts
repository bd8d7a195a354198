import type { PoolStats } from '../../lib/index.js';
import { adminQuery, appNameOf, backendCount, createTestPool, eventually, recordingLogger, terminateBackends } from '../support/database.js';

describe('configure', () => {
  it('runs on each new connection before its first use', async () => {
    const pool = createTestPool({
      min: 2, max: 2,
      configure: async (client) => { await client.query("SET statement_timeout = '1234ms'"); },
    });
    const values = await Promise.all([1, 2].map(() =>
      pool.withConnection(async (c) => (await c.query<{ statement_timeout: string }>('SHOW statement_timeout')).rows[0].statement_timeout)));
    expect(values).toEqual(['1234ms', '1234ms']);
  });

  it('counts a connection whose configure fails as a connection error, with its reason', async () => {
    const pool = createTestPool({
      name: 'cfg', min: 1,
      configure: async (client) => { await client.query('SET no_such_setting = 1'); },
    });
    const error = await pool.open({ wait: true, timeoutMs: 5_000 }).catch((e: unknown) => e);
    expect((error as Error).message).toMatch(/^pool 'cfg': cannot connect to .*unrecognized configuration parameter "no_such_setting"/);
    expect(pool.getStats().connectionsErrors).toBe(1);
  });
});

describe('checkOnAcquire', () => {
  it('with true, drops an idle connection that died and hands out a live one', async () => {
    const pool = createTestPool({ min: 2, max: 2, checkOnAcquire: true });
    await pool.open({ wait: true });
    // Stop the pool from noticing through the socket, to prove the check itself catches it.
    const pids = (await adminQuery<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [appNameOf(pool)]));
    expect(pids).toHaveLength(2);
    await terminateBackends(appNameOf(pool));
    const { rows } = await pool.query('SELECT 1 AS ok');
    expect(rows).toEqual([{ ok: 1 }]);
    expect(pool.getStats().connectionsLost).toBeGreaterThanOrEqual(1);
  });

  it('runs a custom check and discards connections that fail it', async () => {
    let checks = 0;
    const pool = createTestPool({
      min: 1, max: 1,
      checkOnAcquire: async (client) => {
        checks++;
        if (checks === 2) throw new Error('custom check failed');
        await client.query('SELECT 1');
      },
    });
    await pool.open({ wait: true });
    await pool.query('SELECT 1');
    expect(pool.getStats().connectionsNum).toBe(1);
    await pool.query('SELECT 1'); // second check fails: a fresh connection serves it
    expect(checks).toBe(2);
    expect(pool.getStats()).toMatchObject({ connectionsNum: 2, connectionsLost: 1 });
  });
});

describe('stats', () => {
  it("reports psycopg_pool's stats under their camelCase names", async () => {
    const pool = createTestPool({ min: 2, max: 3 });
    await pool.open({ wait: true, timeoutMs: 10_000 });
    const a = await pool.acquire();
    const b = await pool.acquire();
    // Waits for the third connection to open, however slow the machine (the default 30 s):
    // a 50 ms timeout here failed in CI when opening took longer.
    const c = await pool.acquire();
    await pool.acquire({ timeoutMs: 50 }).catch(() => undefined); // times out
    await a[Symbol.asyncDispose]();
    b.release();
    await c.query('BEGIN');
    await c[Symbol.asyncDispose]();
    const stats: PoolStats = pool.getStats();
    expect(Object.keys(stats).sort()).toEqual([
      'connectionsErrors', 'connectionsLost', 'connectionsMs', 'connectionsNum', 'failovers', 'leaksDetected', 'multiplexConnections', 'multiplexInFlight', 'poolAvailable', 'poolMax', 'poolMin',
      'poolSize', 'requestsErrors', 'requestsNum', 'requestsQueued', 'requestsTimeouts', 'requestsWaitMs',
      'requestsWaiting', 'returnsBad', 'usageMs',
    ]);
    expect(stats).toMatchObject({
      poolMin: 2, poolMax: 3, poolSize: 3, poolAvailable: 3, requestsWaiting: 0, requestsNum: 4, requestsQueued: 2,
      requestsErrors: 1, requestsTimeouts: 1, returnsBad: 1, connectionsNum: 3, connectionsErrors: 0, connectionsLost: 0,
    });
    expect(stats.requestsWaitMs).toBeGreaterThanOrEqual(40);
    expect(stats.connectionsMs).toBeGreaterThan(0);
    expect(stats.usageMs).toBeGreaterThanOrEqual(0);
  });

  it('resetStats returns the counters and zeroes them, keeping the gauges', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    await pool.query('SELECT 1');
    const before = pool.resetStats();
    expect(before.requestsNum).toBe(1);
    expect(pool.getStats()).toMatchObject({ requestsNum: 0, connectionsNum: 0, poolSize: 1, poolAvailable: 1 });
  });
});

describe('resize', () => {
  it('grows to a new min and shrinks idle connections above a new max', async () => {
    const pool = createTestPool({ min: 1, max: 2 });
    await pool.open({ wait: true });
    await pool.resize(4, 6);
    // Resolved once the new min is open.
    expect(pool.getStats()).toMatchObject({ poolAvailable: 4, poolSize: 4 });
    await pool.resize(1, 2);
    expect(pool.getStats()).toMatchObject({ poolMin: 1, poolMax: 2, poolSize: 2 });
    await eventually('the server sees 2 backends', async () => (await backendCount(appNameOf(pool))) === 2);
    await expect(pool.resize(3, 2)).rejects.toThrow(/`min` \(3\) must not exceed `max` \(2\)/);
  });

  it('closes a connection returned while the pool is above its new max', async () => {
    const pool = createTestPool({ min: 2, max: 2 });
    await pool.open({ wait: true });
    const [a, b] = [await pool.acquire(), await pool.acquire()];
    await pool.resize(1, 1);
    await a[Symbol.asyncDispose]();
    expect(pool.getStats().poolSize).toBe(1);
    await b[Symbol.asyncDispose]();
    expect(pool.getStats()).toMatchObject({ poolSize: 1, poolAvailable: 1 });
  });
});

describe('check', () => {
  it('checks every idle connection now and replaces the dead ones', async () => {
    const pool = createTestPool({ min: 3, max: 3 });
    await pool.open({ wait: true });
    pool.removeAllListeners('error');
    await terminateBackends(appNameOf(pool));
    await pool.check();
    await eventually('the pool is back at min with live connections', async () =>
      pool.getStats().poolAvailable === 3 && (await backendCount(appNameOf(pool))) === 3);
    expect(pool.getStats().connectionsLost).toBe(3);
  });
});

describe('events', () => {
  it("emits connect, acquire, release and remove as pg.Pool's users expect", async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const seen: string[] = [];
    pool.on('connect', () => seen.push('connect'));
    pool.on('acquire', () => seen.push('acquire'));
    pool.on('release', (error) => seen.push(error ? `release:${error.message}` : 'release'));
    pool.on('remove', (_client, reason) => seen.push(`remove:${reason}`));
    const client = await pool.connect();
    client.release(new Error('bad'));
    await eventually('the maintainer has replaced it', () => pool.totalCount === 1 && pool.idleCount === 1);
    await pool.close();
    // The maintainer replaced the destroyed connection (min 1); close() then removed it.
    expect(seen).toEqual(['connect', 'acquire', 'release:bad', 'remove:released-with-error', 'connect', 'remove:closed']);
  });
});

describe('query', () => {
  it('accepts a text with values and a QueryConfig, as pg.Pool does', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    expect((await pool.query<{ n: number }>('SELECT $1::int + 1 AS n', [41])).rows).toEqual([{ n: 42 }]);
    const config = await pool.query({ text: 'SELECT $1::text AS s', values: ['x'], rowMode: 'array' });
    expect(config.rows).toEqual([['x']]);
  });

  it('keeps the connection after a SQL error (pg.Pool would destroy it)', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    await pool.open({ wait: true });
    await expect(pool.query('SELECT * FROM no_such_table')).rejects.toThrow(/relation "no_such_table" does not exist/);
    await pool.query('SELECT 1');
    expect(pool.getStats()).toMatchObject({ connectionsNum: 1, poolAvailable: 1 });
  });
});

describe('sizing', () => {
  it("warns once at open when max exceeds the server's max_connections minus the reserved slots", async () => {
    const lines: string[] = [];
    const pool = createTestPool({ min: 1, max: 5_000, logger: recordingLogger(lines) });
    await pool.open({ wait: true });
    await pool.query('SELECT 1');
    const warnings = lines.filter((l) => l.includes('exceeds the connections the server allows'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/max \(5000\) exceeds the connections the server allows \(\d+ = max_connections \d+ - \d+ reserved/);
    const quiet: string[] = [];
    const fits = createTestPool({ min: 1, max: 5, logger: recordingLogger(quiet) });
    await fits.open({ wait: true });
    expect(quiet.filter((l) => l.includes('exceeds'))).toEqual([]);
  });
});
