import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { PgPool, ReconnectingPool, RemoveReason } from '../../lib/index.js';
import { packageRoot, requireBuiltPackage } from '../support/built-package.js';
import { adminQuery, appNameOf, createTestPool, eventually, testUrl } from '../support/database.js';
import { PostgresServer, freePort } from '../support/postgres-server.js';
import { TEST_PASSWORD } from '../support/test-secrets.js';

/** Records each `remove` event's reason and time. */
function removals(pool: PgPool): Array<{ reason: RemoveReason; at: number }> {
  const seen: Array<{ reason: RemoveReason; at: number }> = [];
  pool.on('remove', (_client, reason) => seen.push({ reason, at: Date.now() }));
  return seen;
}

/** Samples the pool's size at every event that changes it, to check it never leaves [min, max]. */
function sizeWatch(pool: PgPool): { max: number; min: number } {
  const watch = { max: 0, min: Number.POSITIVE_INFINITY };
  const sample = (): void => {
    watch.max = Math.max(watch.max, pool.totalCount);
    watch.min = Math.min(watch.min, pool.totalCount);
  };
  pool.on('connect', sample);
  pool.on('remove', sample);
  return watch;
}

const backendPids = async (pool: PgPool): Promise<number[]> => (await adminQuery<{ pid: number }>(
  'SELECT pid FROM pg_stat_activity WHERE application_name = $1 ORDER BY pid', [appNameOf(pool)])).map((r) => r.pid);

describe('maintainer: lifetime', () => {
  it('replaces every connection after maxLifetimeMs, keeping the pool within [min, max]', async () => {
    const pool = createTestPool({ min: 2, max: 3, maxLifetimeMs: 300 });
    const removed = removals(pool);
    await pool.open({ wait: true });
    const size = sizeWatch(pool);
    const before = await backendPids(pool);
    await eventually('both first connections were replaced for their lifetime',
      () => removed.filter((r) => r.reason === 'lifetime').length >= 2);
    await eventually('the pool is back at min', () => pool.getStats().poolAvailable === 2);
    const after = await backendPids(pool);
    expect(after.filter((pid) => before.includes(pid))).toEqual([]);
    expect(size.max).toBeLessThanOrEqual(3);
    expect(pool.getStats().connectionsLost).toBe(0);
  });

  it('never expires a connection while it is checked out: it goes when released', async () => {
    const pool = createTestPool({ min: 1, max: 1, maxLifetimeMs: 100 });
    const removed = removals(pool);
    const client = await pool.acquire();
    const createdAt = Date.now();
    await eventually('its lifetime has passed', () => Date.now() - createdAt > 150);
    await pool.runMaintenance();
    expect(removed).toEqual([]);
    expect((await client.query('SELECT 1 AS alive')).rows).toEqual([{ alive: 1 }]);
    await client[Symbol.asyncDispose]();
    expect(removed.map((r) => r.reason)).toEqual(['lifetime']);
    await eventually('a fresh connection replaced it', () => pool.getStats().poolAvailable === 1);
  });
});

describe('maintainer: idle shrink', () => {
  it('closes connections above min idle longer than maxIdleMs, one per period', async () => {
    const maxIdleMs = 150;
    const pool = createTestPool({ min: 1, max: 4, maxIdleMs });
    const removed = removals(pool);
    await pool.open({ wait: true });
    const burst = await Promise.all([1, 2, 3, 4].map(() => pool.acquire()));
    const size = sizeWatch(pool);
    for (const client of burst) await client[Symbol.asyncDispose]();
    expect(pool.getStats().poolSize).toBe(4);
    await eventually('the pool shrinks back to min', () => pool.getStats().poolSize === 1, 10_000);
    const idle = removed.filter((r) => r.reason === 'idle');
    expect(idle).toHaveLength(3);
    for (let i = 1; i < idle.length; i++) expect(idle[i].at - idle[i - 1].at).toBeGreaterThanOrEqual(maxIdleMs - 5);
    expect(size.min).toBeGreaterThanOrEqual(1);
    expect(size.max).toBeLessThanOrEqual(4);
  });
});

describe('maintainer: keepalive', () => {
  it('checks idle connections every keepaliveIntervalMs and drops those that fail', async () => {
    let failChecks = false;
    const pool = createTestPool({
      min: 2, max: 2, keepaliveIntervalMs: 50,
      checkOnAcquire: async (client) => {
        if (failChecks) throw new Error('check failed');
        await client.query('SELECT 1');
      },
    });
    const removed = removals(pool);
    await pool.open({ wait: true });
    await eventually('a keepalive pass checked both idle connections', () => (pool.lastMaintenance?.keepaliveChecked ?? 0) === 2);
    expect(removed).toEqual([]);
    failChecks = true;
    await eventually('keepalive dropped both', () => removed.filter((r) => r.reason === 'keepalive').length >= 2);
    failChecks = false;
    await eventually('the pool is back at min', () => pool.getStats().poolAvailable === 2);
    expect(pool.getStats().connectionsLost).toBeGreaterThanOrEqual(2);
  });
});

describe('maintainer: reconnect', () => {
  it('backs off exponentially between failed attempts, with jitter, up to the cap', async () => {
    const pool = createTestPool({
      connectionString: `postgresql://postgres:x@127.0.0.1:${await freePort()}/postgres`,
      min: 1, reconnectDelayMs: 40, reconnectMaxDelayMs: 320,
    });
    const attempts: Array<{ at: number; retryInMs: number | undefined }> = [];
    pool.on('connectError', (_error, retryInMs) => attempts.push({ at: Date.now(), retryInMs }));
    await pool.open();
    await eventually('seven attempts failed', () => attempts.length >= 7);
    await pool.close();
    const planned = attempts.slice(0, 7).map((a) => a.retryInMs as number);
    const expected = [40, 80, 160, 320, 320, 320, 320];
    planned.forEach((delay, i) => {
      expect(delay).toBeGreaterThanOrEqual(Math.floor(expected[i] * 0.9));
      expect(delay).toBeLessThanOrEqual(Math.ceil(expected[i] * 1.1));
    });
    // And the attempts really waited that long.
    // (Less 10%: each gap is measured between two events, on a loaded machine.)
    for (let i = 1; i < 7; i++) expect(attempts[i].at - attempts[i - 1].at).toBeGreaterThanOrEqual(planned[i - 1] * 0.9);
  });

  it('calls onReconnectFailed once after reconnectTimeoutMs, and keeps trying', async () => {
    const calls: Array<{ pool: ReconnectingPool; failingForMs: number; message: string }> = [];
    const pool = createTestPool({
      name: 'flaky',
      connectionString: `postgresql://postgres:x@127.0.0.1:${await freePort()}/postgres`,
      min: 1, reconnectDelayMs: 20, reconnectMaxDelayMs: 40, reconnectTimeoutMs: 150,
      onReconnectFailed: (failed, info) => calls.push({ pool: failed, failingForMs: info.failingForMs, message: info.lastError?.message ?? '' }),
    });
    let failures = 0;
    pool.on('connectError', () => failures++);
    await pool.open();
    await eventually('onReconnectFailed ran', () => calls.length === 1);
    const failuresThen = failures;
    await eventually('attempts go on afterwards', () => failures >= failuresThen + 2);
    expect(calls).toHaveLength(1);
    expect(calls[0].pool).toBe(pool);
    expect(calls[0].failingForMs).toBeGreaterThanOrEqual(150);
    expect(calls[0].message).toMatch(/ECONNREFUSED/);
  });

  it('opens without waiting against a server not yet up, and connects once it appears', async () => {
    const server = await PostgresServer.create({ password: TEST_PASSWORD });
    try {
      const pool = createTestPool({ connectionString: server.url(), min: 2, reconnectDelayMs: 50, reconnectMaxDelayMs: 100 });
      await pool.open();
      await eventually('a first attempt failed', () => pool.getStats().connectionsErrors >= 1);
      const waiting = pool.query<{ ok: number }>('SELECT 1 AS ok');
      await server.start();
      expect((await waiting).rows).toEqual([{ ok: 1 }]);
      await eventually('the pool reaches min', () => pool.getStats().poolAvailable === 2);
      await pool.close();
    } finally {
      await server.destroy();
    }
  });
});

describe('maintainer: timers', () => {
  beforeAll(requireBuiltPackage);

  it('lets a script that opens and closes a pool exit by itself', async () => {
    const script = `import { PgPool } from 'nestjs-pg-pool';
      const pool = new PgPool({ connectionString: process.env.URL, min: 2, keepaliveIntervalMs: 20, maxIdleMs: 50 });
      await pool.open({ wait: true });
      await pool.query('SELECT 1');
      await pool.close();
      console.log('closed');`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script],
      { cwd: packageRoot, env: { ...process.env, URL: testUrl() }, timeout: 20_000 });
    expect(stdout.trim()).toBe('closed');
  });
});
