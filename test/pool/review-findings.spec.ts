import { inspect } from 'node:util';
import { jest } from '@jest/globals';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PoolClosedError, PoolOpenError, PoolUnavailableError, type PgPool, type PgPoolOptions, type PooledClient, type RemoveReason } from '../../lib/index.js';
import { adminQuery, createTestPool, eventually, testPassword, testUrl } from '../support/database.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { freePort } from '../support/postgres-server.js';

/**
 * The cases an outside review found, each on the real server: every test here failed on
 * the engine before its fix (docs/reliability.md and docs/engine.md describe the behaviour).
 */
const server = (): { host: string; port: number; user: string; database: string } => {
  const config = parseIntoClientConfig(testUrl());
  return { host: String(config.host), port: Number(config.port), user: String(config.user), database: String(config.database) };
};
const pidOf = (client: PooledClient): number => (client as unknown as { processID: number }).processID;

/** A fault proxy in front of the test server, new for each test of the block. */
function faultProxyPerTest(): () => FaultProxy {
  let proxy: FaultProxy | undefined;
  beforeEach(async () => {
    proxy = await FaultProxy.start(server());
  });
  afterEach(async () => {
    await proxy?.close();
  });
  return () => proxy as FaultProxy;
}

function removals(pool: PgPool): RemoveReason[] {
  const reasons: RemoveReason[] = [];
  pool.on('remove', (_client, reason) => reasons.push(reason));
  return reasons;
}

describe('host settings are honoured everywhere', () => {
  it('connects to the one host of `connection.hosts`, not to pg\'s default', async () => {
    const { host, port, user, database } = server();
    const pool = createTestPool({ connectionString: undefined, connection: { hosts: [`${host}:${port}`], user, database, password: testPassword() }, min: 1 });
    await pool.open({ wait: true });
    expect((await pool.query('SELECT current_setting(\'port\')::int AS port')).rows).toEqual([{ port }]);
  });

  /** Settings with a host list and no URL: nothing to fall back on but the list. */
  const hostList = async (): Promise<Partial<PgPoolOptions>> => {
    const { host, port, user, database } = server();
    return { connectionString: undefined, connection: { hosts: [`${host}:${await freePort()}`, `${host}:${port}`], user, database, password: testPassword() } };
  };

  it('cancels a statement on the host that holds the session, through the protocol\'s CancelRequest', async () => {
    const pool = createTestPool({ ...await hostList(), min: 1, max: 1 });
    const client = await pool.acquire();
    try {
      const running = client.query('SELECT pg_sleep(10)').then(() => 'finished', (error: unknown) => error);
      await eventually('the statement runs', async () => (await adminQuery<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = $1 AND state = 'active'", [pidOf(client)]))[0].n === 1);
      await expect(pool.cancelQuery(client)).resolves.toBe(true);
      await expect(running).resolves.toMatchObject({ code: '57014' });
    } finally {
      client.release();
    }
  });

  it('listens on the server the pool connects to', async () => {
    const pool = createTestPool({ ...await hostList(), min: 1, max: 2 });
    const heard: string[] = [];
    const stop = await pool.listen('hosts_spec', (payload) => heard.push(payload));
    await pool.notify('hosts_spec', 'hello');
    await eventually('the notification arrives', () => heard.includes('hello'));
    await stop();
  });
});

describe('the password is not reachable from the pool', () => {
  it('is absent from util.inspect, console-style and JSON dumps of the pool, its options, clients and errors', async () => {
    const password = testPassword();
    const pool = createTestPool({ min: 1, max: 2 });
    await pool.open({ wait: true });
    const client = await pool.acquire();
    try {
      const dumps = [
        inspect(pool, { depth: Infinity }), inspect(pool.options, { depth: Infinity }), inspect(client, { depth: 6 }),
        JSON.stringify(pool), JSON.stringify(pool.options), `${String(pool)}`,
      ];
      for (const dump of dumps) {
        expect(dump).not.toContain(password);
        expect(dump).not.toContain(encodeURIComponent(password));
      }
      expect(JSON.parse(JSON.stringify(pool))).toMatchObject({ name: pool.name, state: 'open', target: pool.target });
    } finally {
      client.release();
    }
    const wrong = createTestPool({ connectionString: testUrl().replace(encodeURIComponent(password), 'not-the-password'), min: 1 });
    const error = await wrong.open({ wait: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolOpenError);
    expect(inspect(error, { depth: Infinity })).not.toContain('not-the-password');
  });
});

describe('checks and keepalive', () => {
  it('keepalive checks one idle connection at a time and never makes the pool grow', async () => {
    const pool = createTestPool({
      min: 2, max: 10, keepaliveIntervalMs: 20, checkOnAcquire: (c) => c.query('SELECT pg_sleep(0.03)'),
    });
    await pool.open({ wait: true });
    let largest = 0;
    const until = performance.now() + 500;
    while (performance.now() < until) {
      await pool.withConnection((c) => c.query('SELECT 1'));
      largest = Math.max(largest, pool.getStats().poolSize);
      // The borrower's own work between two requests (a serial job, a request handler):
      // the window in which a keepalive pass finds every connection idle.
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(largest).toBe(2);
    expect(pool.getStats().connectionsNum).toBe(2);
  });

  it('with `connectTimeoutMs: 0` (no connect timeout), check() keeps healthy idle connections', async () => {
    const pool = createTestPool({ min: 2, max: 2, connectTimeoutMs: 0 });
    await pool.open({ wait: true });
    for (let round = 0; round < 5; round++) {
      await pool.check();
      expect(pool.idleCount).toBe(2);
    }
    expect(pool.getStats().connectionsLost).toBe(0);
  });
});

describe('hooks that leave a transaction open', () => {
  it('a `reset` hook that opens a transaction gets its connection discarded, not handed on', async () => {
    const pool = createTestPool({ min: 1, max: 1, reset: (c) => c.query('BEGIN') });
    const reasons = removals(pool);
    const first = await pool.acquire();
    const firstPid = pidOf(first);
    first.release();
    const next = await pool.acquire();
    try {
      expect(next.getTransactionStatus()).toBe('I');
      expect(pidOf(next)).not.toBe(firstPid);
      expect(reasons).toContain('reset-failed');
    } finally {
      next.release(true);
    }
  });

  it('a `configure` hook that opens a transaction fails the start-up with the reason', async () => {
    const pool = createTestPool({ min: 1, configure: (c) => c.query('BEGIN') });
    const error = await pool.open({ wait: true, timeoutMs: 2_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolOpenError);
    expect((error as Error).message).toMatch(/`configure` hook left the connection inside a transaction/);
  });
});

describe('closing while an acquire is being checked', () => {
  it('fails the acquire promptly with PoolClosedError, not a timeout', async () => {
    const pool = createTestPool({ min: 1, max: 1, acquireTimeoutMs: 20_000, checkOnAcquire: (c) => c.query('SELECT pg_sleep(2)') });
    await pool.open({ wait: true });
    const startedAt = performance.now();
    const acquiring = pool.acquire().catch((e: unknown) => e);
    await eventually('the check runs', () => pool.idleCount === 0);
    await pool.close({ timeoutMs: 100 });
    const error = await acquiring;
    expect(error).toBeInstanceOf(PoolClosedError);
    // Sooner than the check's own two seconds: the close ended it.
    expect(performance.now() - startedAt).toBeLessThan(1_500);
  });
});

describe('SQLSTATE 25006 on a read-write pool', () => {
  it('from the user\'s own read-only transaction keeps the connection', async () => {
    const pool = createTestPool({ min: 1, max: 1, targetSessionAttrs: 'read-write' });
    await pool.query('CREATE TABLE IF NOT EXISTS readonly_spec (x int)');
    const client = await pool.acquire();
    const pid = pidOf(client);
    await client.query('BEGIN READ ONLY');
    await expect(client.query('INSERT INTO readonly_spec VALUES (1)')).rejects.toMatchObject({ code: '25006' });
    client.release();
    const again = await pool.acquire();
    expect(pidOf(again)).toBe(pid);
    again.release();
    expect(pool.getStats().connectionsLost).toBe(0);
  });
});

describe('work on return and close against a server that stopped answering', () => {
  const proxy = faultProxyPerTest();

  it('bounds the ROLLBACK of a returned client and close(): the slot is freed, the socket destroyed', async () => {
    const pool = createTestPool({ connection: { host: '127.0.0.1', port: proxy().port }, min: 1, max: 1, connectTimeoutMs: 300, acquireTimeoutMs: 500 });
    const reasons = removals(pool);
    const client = await pool.acquire();
    await client.query('BEGIN');
    await proxy().setMode('blackhole');
    client.release();
    await eventually('the connection is dropped after the bound', () => reasons.includes('reset-failed'), 3_000);
    expect(pool.openCount).toBe(0);
    const startedAt = performance.now();
    await pool.close({ timeoutMs: 200 });
    expect(performance.now() - startedAt).toBeLessThan(2_000);
    await eventually('no socket is left open through the proxy', () => proxy().openConnections === 0, 3_000);
  });
});

describe('connections lost before anyone used them', () => {
  it('a connection whose backend is terminated during `configure` is never handed out', async () => {
    let terminated: number | undefined;
    const pool = createTestPool({
      min: 1, max: 1, reconnectDelayMs: 20,
      configure: async (client) => {
        if (terminated !== undefined) return;
        terminated = (client as unknown as { processID: number }).processID;
        const ended = new Promise((resolve) => client.once('end', resolve));
        await adminQuery('SELECT pg_terminate_backend($1)', [terminated]);
        await ended;
      },
    });
    await pool.open();
    const client = await pool.acquire();
    try {
      expect(pidOf(client)).not.toBe(terminated);
      expect((await client.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      client.release();
    }
  });

  it('a client its user ended before release() is not reused', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const client = await pool.acquire();
    const ended = client.end();
    client.release();
    // At once, before the socket's 'end' event could tell the pool.
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    await ended;
  });
});

describe('LISTEN', () => {
  const proxy = faultProxyPerTest();

  it('a failed first listen() leaves nothing behind: the next one listens for real', async () => {
    const pool = createTestPool({ connection: { host: '127.0.0.1', port: proxy().port }, min: 0, max: 1 });
    await proxy().setMode('refuse');
    await expect(pool.listen('retry_spec', () => undefined)).rejects.toThrow(/ECONNREFUSED/);
    await proxy().setMode('pass');
    const heard: string[] = [];
    const stop = await pool.listen('retry_spec', (payload) => heard.push(payload));
    await pool.notify('retry_spec', 'after');
    await eventually('the notification arrives', () => heard.includes('after'));
    await stop();
  });

  it('a second concurrent listen() on a channel resolves only once LISTEN ran', async () => {
    const pool = createTestPool({ min: 0, max: 1 });
    const heard: string[] = [];
    // Several channels, each notified the moment its second listen() resolves.
    await Promise.all(Array.from({ length: 5 }, async (_, i) => {
      const channel = `concurrent_spec_${i}`;
      const first = pool.listen(channel, () => undefined);
      const stop = await pool.listen(channel, (payload) => heard.push(payload));
      await pool.notify(channel, channel);
      await eventually(`the second handler of ${channel} hears it`, () => heard.includes(channel), 3_000);
      await stop();
      await (await first)();
    }));
  });
});

describe('a monotonic clock', () => {
  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('a wall-clock step forward neither expires connections nor times out waiters', async () => {
    const pool = createTestPool({ min: 1, max: 1, maxLifetimeMs: 60_000, acquireTimeoutMs: 2_000 });
    const reasons = removals(pool);
    const client = await pool.acquire();
    const pid = pidOf(client);
    const waiting = pool.acquire();
    const realNow = Date.now.bind(Date);
    jest.spyOn(Date, 'now').mockImplementation(() => realNow() + 2 * 3_600_000);
    client.release();
    const next = await waiting;
    expect(pidOf(next)).toBe(pid);
    next.release();
    expect(reasons).toEqual([]);
  });
});

describe('while the server is down', () => {
  const proxy = faultProxyPerTest();

  it('a request fails within `unavailableTimeoutMs` with PoolUnavailableError and the server\'s reason', async () => {
    const pool = createTestPool({ connection: { host: '127.0.0.1', port: proxy().port }, min: 1, acquireTimeoutMs: 20_000, unavailableTimeoutMs: 300 });
    await proxy().setMode('refuse');
    await pool.open();
    const startedAt = performance.now();
    const error = await pool.acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolUnavailableError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED', poolName: 'default' });
    expect((error as Error).message).toMatch(/database is unavailable.*ECONNREFUSED/);
    expect(performance.now() - startedAt).toBeLessThan(5_000);
  });

  it('a restart shorter than the bound is ridden out: the request is served', async () => {
    const pool = createTestPool({ connection: { host: '127.0.0.1', port: proxy().port }, min: 1, max: 1, unavailableTimeoutMs: 3_000 });
    await pool.open({ wait: true });
    // Closing the listener waits for the open sockets: cut them meanwhile.
    const refusing = proxy().setMode('refuse');
    proxy().cutAll();
    await refusing;
    await eventually('the pool has lost its connection', () => pool.openCount === 0);
    const request = pool.query('SELECT 1 AS ok');
    await eventually('a connection attempt has failed', () => pool.getStats().connectionsErrors > 0);
    await proxy().setMode('pass');
    await expect(request).resolves.toMatchObject({ rows: [{ ok: 1 }] });
  });

  it('leaves no timer behind once closed, however many attempts failed while requests waited', async () => {
    const timers = (): number => (process as unknown as { getActiveResourcesInfo(): string[] })
      .getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length;
    await proxy().setMode('refuse');
    const before = timers();
    const pool = createTestPool({ connection: { host: '127.0.0.1', port: proxy().port }, min: 1, max: 2,
      acquireTimeoutMs: 20_000, unavailableTimeoutMs: 10_000, reconnectDelayMs: 5 });
    await pool.open();
    const requests = [pool.acquire(), pool.acquire()].map((r) => r.catch((e: unknown) => e));
    await eventually('several attempts have failed while the requests wait', () => pool.getStats().connectionsErrors >= 4);
    await pool.close();
    for (const error of await Promise.all(requests)) expect(error).toBeInstanceOf(PoolClosedError);
    // A timer still armed would keep a script (or a Jest worker) alive for up to 10 s.
    expect(timers()).toBeLessThanOrEqual(before);
  });
});

describe('cancelling a statement', () => {
  it('never cancels the next borrower\'s statement: the connection waits for the cancel to settle', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    for (let round = 0; round < 10; round++) {
      const client = await pool.acquire();
      const statement = client.query(`SELECT pg_sleep(${(round % 5) / 1000})`).catch(() => undefined);
      void pool.cancelQuery(client);
      await statement;
      client.release();
      // The next request's statement must run to its end.
      await expect(pool.query('SELECT pg_sleep(0.02), 1 AS ok')).resolves.toMatchObject({ rows: [{ ok: 1 }] });
    }
  });
});
