import { parseIntoClientConfig } from 'pg-connection-string';
import { PgPool, PoolClosedError, PoolOpenError, PoolUnavailableError } from '../../lib/index.js';
import { createTestPool, eventually, testPassword, testUrl } from '../support/database.js';
import { freePort } from '../support/postgres-server.js';

/** The test server's URL with one part changed. */
function urlWith(change: { password?: string; database?: string; port?: number; host?: string }): string {
  const config = parseIntoClientConfig(testUrl());
  const password = encodeURIComponent(change.password ?? String(config.password));
  return `postgresql://${config.user}:${password}@${change.host ?? config.host}:${change.port ?? config.port}/${change.database ?? config.database}`;
}

describe('open', () => {
  it('with wait, resolves once min connections are open', async () => {
    const pool = createTestPool({ min: 3, max: 5 });
    await pool.open({ wait: true });
    expect(pool.getStats()).toMatchObject({ poolSize: 3, poolAvailable: 3, connectionsNum: 3 });
  });

  it('with wait on a min 0 pool, proves the settings with one connection', async () => {
    const pool = createTestPool({ min: 0, max: 2 });
    await pool.open({ wait: true });
    expect(pool.getStats().connectionsNum).toBe(1);
  });

  const failures: Array<[string, () => Promise<string>, RegExp]> = [
    ['a wrong password', async () => urlWith({ password: 'not-the-password' }), /password authentication failed for user "postgres"/],
    ['an unknown database', async () => urlWith({ database: 'no_such_db' }), /database "no_such_db" does not exist/],
    ['a refused port', async () => urlWith({ port: await freePort() }), /ECONNREFUSED/],
    ['an unknown host', async () => urlWith({ host: 'no-such-host.invalid' }), /ENOTFOUND no-such-host\.invalid/],
  ];

  it.each(failures)('fails fast on %s with PoolOpenError naming pool, target and the server reason', async (_what, url, reason) => {
    const pool = createTestPool({ name: 'orders', connectionString: await url(), min: 2 });
    const startedAt = Date.now();
    const error = await pool.open({ wait: true, timeoutMs: 20_000 }).catch((e: unknown) => e);
    expect(Date.now() - startedAt).toBeLessThan(10_000);
    expect(error).toBeInstanceOf(PoolOpenError);
    const message = (error as Error).message;
    expect(message).toMatch(/^pool 'orders': cannot connect to [\w.-]+:\d+\/\w+: /);
    expect(message).toMatch(reason);
    expect(message).not.toContain(testPassword());
    expect(message).not.toContain(encodeURIComponent(testPassword()));
    expect(pool.state).toBe('closed');
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolClosedError);
  });

  it('without wait, returns at once even when the server is unreachable', async () => {
    const pool = createTestPool({ connectionString: urlWith({ port: await freePort() }), min: 1, acquireTimeoutMs: 200 });
    await pool.open();
    expect(pool.state).toBe('open');
    const error = await pool.acquire().catch((e: unknown) => e);
    // The server is down: the request fails with the server's reason, as unavailable.
    expect(error).toBeInstanceOf(PoolUnavailableError);
    expect((error as Error).message).toMatch(/the database is unavailable: .*cannot connect to .*ECONNREFUSED/);
  });
});

describe('close', () => {
  it('waits for checked-out clients to come back, then closes every connection', async () => {
    const pool = createTestPool({ min: 2, max: 2 });
    const client = await pool.acquire();
    let closed = false;
    const closing = pool.close().then(() => { closed = true; });
    await eventually('the pool is closing', () => pool.state === 'closing');
    expect(closed).toBe(false);
    expect((await client.query('SELECT 1 AS still')).rows).toEqual([{ still: 1 }]);
    client.release();
    await closing;
    expect(pool.state).toBe('closed');
    expect(pool.openCount).toBe(0);
  });

  it('closes clients still checked out after its timeout', async () => {
    const pool = createTestPool({ min: 1, max: 1, logger: { log: () => undefined, warn: () => undefined, error: () => undefined } });
    const client = await pool.acquire();
    await pool.close({ timeoutMs: 50 });
    expect(pool.state).toBe('closed');
    await expect(client.query('SELECT 1')).rejects.toThrow();
    expect(() => client.release()).not.toThrow();
  });

  it('cannot be reopened, and end() is an alias of close()', async () => {
    const pool = new PgPool({ connectionString: testUrl(), min: 1 });
    await pool.open({ wait: true });
    await pool.end();
    expect(pool.ended).toBe(true);
    await expect(pool.open()).rejects.toThrow(/^pool 'default': cannot open a pool that was closed/);
  });

  it('lets a script exit by itself: no timer or socket keeps the event loop alive', async () => {
    const pool = createTestPool({ min: 2, keepaliveIntervalMs: 50 });
    await pool.open({ wait: true });
    await pool.close();
    const handles = (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo();
    expect(handles.filter((h) => h === 'TCPSocketWrap')).toHaveLength(0);
  });
});
