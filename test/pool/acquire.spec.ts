import { PoolClosedError, PoolTimeoutError, TooManyRequestsError, type PooledClient } from '../../lib/index.js';
import { appNameOf, backendCount, createTestPool, eventually } from '../support/database.js';

describe('acquire', () => {
  it('serves 50 concurrent withConnection calls on max 5 without the server ever seeing more than 5 backends', async () => {
    const pool = createTestPool({ min: 1, max: 5 });
    let peak = 0;
    const app = appNameOf(pool);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.withConnection(async (client) => {
      const { rows } = await client.query<{ n: string }>(
        'SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [app]);
      peak = Math.max(peak, Number(rows[0].n));
      await client.query('SELECT pg_sleep(0.005)');
      return i;
    })));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(peak).toBeGreaterThan(0);
    expect(peak).toBeLessThanOrEqual(5);
    expect(pool.getStats().poolSize).toBeLessThanOrEqual(5);
    expect(await backendCount(app)).toBeLessThanOrEqual(5);
  });

  it('opens a never-opened pool on first use, as pg.Pool does', async () => {
    const pool = createTestPool({ min: 2 });
    expect(pool.state).toBe('new');
    const { rows } = await pool.query<{ one: number }>('SELECT 1 AS one');
    expect(rows).toEqual([{ one: 1 }]);
    expect(pool.state).toBe('open');
    await eventually('the pool reaches min', () => pool.getStats().poolAvailable === 2);
  });

  it('serves waiters strictly in arrival order', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const holder = await pool.acquire();
    const order: number[] = [];
    const waiters = [0, 1, 2, 3, 4].map((i) => pool.acquire().then((client) => {
      order.push(i);
      client.release();
    }));
    await eventually('all five wait', () => pool.getStats().requestsWaiting === 5);
    holder.release();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3, 4]);
  });

  it('fails a request whose acquire check outlives its timeout with PoolClosedError when close() came first', async () => {
    // Found by the model-based fuzz: the request got PoolTimeoutError from a closed pool.
    let endCheck: () => void = () => undefined;
    const checking = new Promise<void>((resolve) => {
      endCheck = resolve;
    });
    let checks = 0;
    const pool = createTestPool({ min: 1, max: 1, checkOnAcquire: async () => {
      checks++;
      await checking;
    } });
    await pool.open({ wait: true, timeoutMs: 10_000 });
    const outcome = pool.acquire({ timeoutMs: 50 }).catch((error: unknown) => error);
    await eventually('the idle connection is being checked', () => checks === 1);
    const closed = pool.close({ timeoutMs: 0 });
    expect(await outcome).toBeInstanceOf(PoolClosedError);
    endCheck();
    await closed;
  });

  it('fails a waiter with PoolTimeoutError naming the pool after its timeout', async () => {
    const pool = createTestPool({ name: 'reports', min: 1, max: 1, acquireTimeoutMs: 100 });
    const holder = await pool.acquire({ timeoutMs: 10_000 });
    const error = await pool.acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolTimeoutError);
    expect(error).toMatchObject({ name: 'PoolTimeoutError', poolName: 'reports' });
    expect((error as Error).message).toMatch(/^pool 'reports': timeout exceeded when trying to connect: no connection available within 100 ms/);
    const perCall = await pool.acquire({ timeoutMs: 20 }).catch((e: unknown) => e);
    expect((perCall as Error).message).toContain('within 20 ms');
    expect(pool.getStats()).toMatchObject({ requestsTimeouts: 2, requestsErrors: 2, requestsWaiting: 0 });
    holder.release();
  });

  it('times out default and per-call timeouts each on its own deadline, in deadline order', async () => {
    const pool = createTestPool({ min: 1, max: 1, acquireTimeoutMs: 300 });
    const holder = await pool.acquire({ timeoutMs: 10_000 });
    const order: string[] = [];
    const track = (name: string, promise: Promise<unknown>) => promise.then(
      (client) => { order.push(`${name}:served`); (client as { release(): void }).release(); },
      (error: Error) => order.push(`${name}:${error.name}`));
    const all = [
      track('a', pool.acquire()),
      track('b', pool.acquire({ timeoutMs: 50 })),
      track('c', pool.acquire()),
      track('d', pool.acquire({ timeoutMs: 10_000 })),
    ];
    await eventually('a, b and c timed out', () => order.length === 3);
    expect(order).toEqual(['b:PoolTimeoutError', 'a:PoolTimeoutError', 'c:PoolTimeoutError']);
    holder.release();
    await Promise.all(all);
    expect(order[3]).toBe('d:served');
    expect(pool.getStats()).toMatchObject({ requestsTimeouts: 3, requestsWaiting: 0 });
  });

  it('rejects a negative or non-numeric timeout with a PoolUsageError', async () => {
    const pool = createTestPool({ name: 'picky', min: 0, max: 1 });
    await expect(pool.acquire({ timeoutMs: -1 })).rejects.toThrow(/^pool 'picky': acquire: `timeoutMs` must be a number >= 0, not -1/);
    await expect(pool.acquire({ timeoutMs: Number.NaN })).rejects.toThrow(/not NaN/);
  });

  it('refuses at once with TooManyRequestsError when maxWaiting requests already wait', async () => {
    const pool = createTestPool({ name: 'busy', min: 1, max: 1, maxWaiting: 2 });
    const holder = await pool.acquire();
    const queued = [pool.acquire(), pool.acquire()].map((p) => p.then((client) => client.release()));
    const error = await pool.acquire().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TooManyRequestsError);
    expect((error as Error).message).toMatch(/^pool 'busy': 2 requests are already waiting .*maxWaiting 2/);
    holder.release();
    await Promise.all(queued);
  });

  it('gives a connection opened for a waiter that timed out to the next waiter', async () => {
    // min 0: every connection is opened on demand, for a waiter.
    const pool = createTestPool({ min: 0, max: 1 });
    const gaveUp = pool.acquire({ timeoutMs: 1 }).catch((e: unknown) => e);
    const next = pool.acquire({ timeoutMs: 10_000 });
    expect(await gaveUp).toBeInstanceOf(PoolTimeoutError);
    const client = await next;
    client.release();
    expect(pool.getStats()).toMatchObject({ connectionsNum: 1, poolSize: 1 });
  });

  it('keeps a connection opened for a waiter that gave up, when no one else waits', async () => {
    const pool = createTestPool({ min: 0, max: 2 });
    const error = await pool.acquire({ timeoutMs: 0 }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolTimeoutError);
    await eventually('the connection made for it is idle in the pool', () => pool.getStats().poolAvailable === 1);
    expect(pool.getStats().connectionsNum).toBe(1);
  });

  it('grows one connection per waiter up to max, never a herd, and keeps them', async () => {
    const pool = createTestPool({ min: 1, max: 4 });
    await pool.open({ wait: true });
    let opened = 0;
    pool.on('connect', () => opened++);
    const clients = await Promise.all([1, 2, 3, 4].map(() => pool.acquire()));
    expect(opened).toBe(3);
    const extra = Array.from({ length: 20 }, () => pool.acquire().then((client) => client.release()));
    await eventually('the extra requests wait', () => pool.getStats().requestsWaiting === 20);
    expect(pool.getStats().poolSize).toBe(4);
    clients.forEach((c) => c.release());
    await Promise.all(extra);
    expect(opened).toBe(3);
    expect(pool.getStats()).toMatchObject({ poolSize: 4, poolAvailable: 4, connectionsNum: 4 });
  });

  it('rejects waiters with PoolClosedError when the pool closes, and refuses new requests', async () => {
    const pool = createTestPool({ name: 'gone', min: 1, max: 1 });
    const holder = await pool.acquire();
    const waiting = pool.acquire().catch((e: unknown) => e);
    await eventually('the request waits', () => pool.getStats().requestsWaiting === 1);
    const closing = pool.close();
    expect(await waiting).toBeInstanceOf(PoolClosedError);
    holder.release();
    await closing;
    const late = await pool.acquire().catch((e: unknown) => e);
    expect(late).toBeInstanceOf(PoolClosedError);
    expect((late as Error).message).toMatch(/^pool 'gone': the pool is closed/);
  });

  it("hands out connections in 'fifo' order by default and 'lifo' when asked", async () => {
    const pids = async (order: 'fifo' | 'lifo'): Promise<number[]> => {
      const pool = createTestPool({ min: 3, max: 3, order });
      await pool.open({ wait: true });
      const clients: PooledClient[] = [];
      for (let i = 0; i < 3; i++) clients.push(await pool.acquire());
      const released = clients.map((c) => (c as unknown as { processID: number }).processID);
      clients.forEach((c) => c.release());
      const next = await pool.acquire();
      const pid = (next as unknown as { processID: number }).processID;
      next.release();
      return [pid, ...released];
    };
    const [fifoNext, ...fifoReleased] = await pids('fifo');
    expect(fifoNext).toBe(fifoReleased[0]);
    const [lifoNext, ...lifoReleased] = await pids('lifo');
    expect(lifoNext).toBe(lifoReleased[2]);
  });
});
