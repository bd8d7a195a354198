import { parseIntoClientConfig } from 'pg-connection-string';
import { PoolOpenError, PoolTimeoutError, type PgPool, type RemoveReason } from '../../lib/index.js';
import { appNameOf, createTestPool, eventually, terminateBackends, testUrl } from '../support/database.js';
import { FaultProxy } from '../support/fault-proxy.js';

/** What a request may say when the network fails under it: each names the cause. */
const CLEAR_NETWORK_ERRORS = [
  /Connection terminated/,
  /no connection available within \d+ ms/,
  /ECONNRESET|ECONNREFUSED|EPIPE/,
  /Client has encountered a connection error and is not queryable/,
  /the server ended the session/,
];

describe('faults between the pool and the server', () => {
  let proxy: FaultProxy;

  beforeEach(async () => {
    const config = parseIntoClientConfig(testUrl());
    proxy = await FaultProxy.start({ host: String(config.host), port: Number(config.port) });
  });

  afterEach(async () => {
    await proxy.close();
  });

  /** A test pool that connects through the proxy. */
  function poolThroughProxy(options: Parameters<typeof createTestPool>[0] = {}): PgPool {
    return createTestPool({ ...options, connection: { host: '127.0.0.1', port: proxy.port, ...options.connection } });
  }

  function removals(pool: PgPool): RemoveReason[] {
    const reasons: RemoveReason[] = [];
    pool.on('remove', (_client, reason) => reasons.push(reason));
    return reasons;
  }

  it('black-holed: acquire with checkOnAcquire ends with PoolTimeoutError on its own deadline, no hang', async () => {
    const pool = poolThroughProxy({ min: 2, max: 2, checkOnAcquire: true, acquireTimeoutMs: 400, connectTimeoutMs: 5_000 });
    await pool.open({ wait: true });
    await proxy.setMode('blackhole');
    const startedAt = Date.now();
    const error = await pool.acquire().catch((e: unknown) => e);
    const elapsed = Date.now() - startedAt;
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(elapsed).toBeGreaterThanOrEqual(390);
    expect(elapsed).toBeLessThan(3_000);
  });

  it('black-holed: a pool with nothing idle times out waiting for a connect that never answers', async () => {
    const pool = poolThroughProxy({ min: 0, max: 2, acquireTimeoutMs: 300, connectTimeoutMs: 5_000 });
    await proxy.setMode('blackhole');
    const startedAt = Date.now();
    await expect(pool.acquire()).rejects.toBeInstanceOf(PoolTimeoutError);
    expect(Date.now() - startedAt).toBeLessThan(3_000);
  });

  it('black-holed from the start: open({ wait: true }) ends with PoolOpenError after connectTimeoutMs', async () => {
    await proxy.setMode('blackhole');
    const pool = poolThroughProxy({ name: 'partitioned', min: 1, connectTimeoutMs: 300 });
    const startedAt = Date.now();
    const error = await pool.open({ wait: true, timeoutMs: 10_000 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolOpenError);
    expect((error as Error).message).toMatch(/^pool 'partitioned': cannot connect to 127\.0\.0\.1:\d+\/\w+: .*timeout/i);
    expect(Date.now() - startedAt).toBeLessThan(5_000);
  });

  it('refused: open({ wait: true }) fails fast, and the pool connects once the port accepts again', async () => {
    await proxy.setMode('refuse');
    const failing = poolThroughProxy({ min: 1 });
    await expect(failing.open({ wait: true })).rejects.toThrow(/ECONNREFUSED/);
    const patient = poolThroughProxy({ min: 2, reconnectDelayMs: 50, reconnectMaxDelayMs: 100 });
    await patient.open();
    await eventually('a connection attempt was refused', () => patient.getStats().connectionsErrors >= 1);
    await proxy.setMode('pass');
    await eventually('the pool reaches min', () => patient.getStats().poolAvailable === 2);
  });

  it('cut under load: every request succeeds or fails with a clear error, none hangs, and the pool recovers', async () => {
    const pool = poolThroughProxy({ min: 3, max: 5, acquireTimeoutMs: 2_000, reconnectDelayMs: 50, reconnectMaxDelayMs: 200 });
    await pool.open({ wait: true });
    const outcomes: Array<string | undefined> = [];
    let running = true;
    const deadline = Date.now() + 30_000;
    const worker = async (): Promise<void> => {
      for (let i = 0; i < 10_000 && running && Date.now() < deadline; i++) {
        try {
          await pool.query('SELECT pg_sleep(0.003)');
          outcomes.push(undefined);
        } catch (error) {
          outcomes.push((error as Error).message);
        }
      }
    };
    const workers = [1, 2, 3, 4, 5, 6].map(worker);
    try {
      await eventually('load is running', () => outcomes.length >= 50);
      const cut = proxy.cutAll();
      expect(cut).toBeGreaterThanOrEqual(3);
      const cutAt = outcomes.length;
      await eventually('200 more requests answered', () => outcomes.length >= cutAt + 200, 20_000);
    } finally {
      running = false;
      await Promise.all(workers);
    }
    const failures = outcomes.filter((o): o is string => o !== undefined);
    for (const message of failures) {
      expect(CLEAR_NETWORK_ERRORS.some((p) => p.test(message)) ? 'clear' : message).toBe('clear');
    }
    expect(outcomes.slice(-50).every((o) => o === undefined)).toBe(true);
    expect(pool.getStats().connectionsLost).toBeGreaterThanOrEqual(3);
    await eventually('the pool is back at min', () => pool.getStats().poolAvailable >= 3);
  });

  it('with latency, checkOnAcquire keeps terminated connections away from clients', async () => {
    const pool = poolThroughProxy({ min: 3, max: 3, checkOnAcquire: true });
    await pool.open({ wait: true });
    pool.on('error', () => undefined);
    proxy.setLatency(40);
    await terminateBackends(appNameOf(pool));
    // The server's goodbye is still in flight: the pool cannot know yet, its check does.
    const results = await Promise.all([1, 2, 3, 4, 5].map((i) => pool.query<{ i: number }>('SELECT $1::int AS i', [i])));
    expect(results.map((r) => r.rows[0].i)).toEqual([1, 2, 3, 4, 5]);
  });

  it('with keepalive, silently dead idle connections are dropped before a client gets them', async () => {
    const pool = poolThroughProxy({ min: 2, max: 2, keepaliveIntervalMs: 50, connectTimeoutMs: 200, reconnectDelayMs: 50, reconnectMaxDelayMs: 100 });
    const reasons = removals(pool);
    await pool.open({ wait: true });
    await proxy.setMode('blackhole');
    await eventually('keepalive dropped both', () => reasons.filter((r) => r === 'keepalive').length >= 2, 10_000);
    await proxy.setMode('pass');
    await eventually('the pool is back at min', () => pool.getStats().poolAvailable === 2, 10_000);
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });
});
