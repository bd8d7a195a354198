import { Client } from 'pg';
import { PoolUsageError, type PooledClient } from '../../lib/index.js';
import { appNameOf, backendCount, createTestPool, eventually, recordingLogger, terminateBackends } from '../support/database.js';

const pidOf = (client: PooledClient): number => (client as unknown as { processID: number }).processID;

describe('release', () => {
  beforeAll(async () => {
    const pool = createTestPool({ min: 1 });
    await pool.query('CREATE TABLE IF NOT EXISTS release_spec (id int)');
    await pool.close();
  });

  it('rolls back a client returned inside a transaction, and counts it in returnsBad', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const client = await pool.acquire();
    await client.query('BEGIN');
    await client.query('INSERT INTO release_spec VALUES (42)');
    await client[Symbol.asyncDispose]();
    const next = await pool.acquire();
    expect(pidOf(next)).toBe(pidOf(client));
    expect(next.getTransactionStatus()).toBe('I');
    expect((await next.query('SELECT count(*)::int AS n FROM release_spec WHERE id = 42')).rows).toEqual([{ n: 0 }]);
    next.release();
    expect(pool.getStats().returnsBad).toBe(1);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
  });

  it('rolls back a client returned in a failed transaction', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const client = await pool.acquire();
    await client.query('BEGIN');
    await expect(client.query('SELECT 1/0')).rejects.toThrow(/division by zero/);
    // Released at once: pg may settle the failed query before the server's ReadyForQuery
    // (status E) arrives; the pool waits for it rather than trusting a stale status.
    await client[Symbol.asyncDispose]();
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    expect(pool.getStats().returnsBad).toBe(1);
  });

  it('does not hand out a client released while its query still runs until that query ends', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const client = await pool.acquire();
    const running = client.query('SELECT pg_sleep(0.2), 7 AS seven');
    client.release(); // a bug in the caller: the query was not awaited
    const next = await pool.acquire();
    expect(pidOf(next)).toBe(pidOf(client));
    // The pool waited: the first query had finished before the client came back.
    await expect(Promise.race([running, Promise.resolve('still running')])).resolves.toMatchObject({ rows: [{ seven: 7 }] });
    next.release();
  });

  it('refuses a query on a client after its release, and lets the next checkout use it', async () => {
    const pool = createTestPool({ name: 'strict', min: 1, max: 1 });
    const client = await pool.acquire();
    client.release();
    expect(() => client.query('SELECT 1')).toThrow(PoolUsageError);
    await expect((async () => client.query('SELECT 1'))()).rejects.toThrow(/^pool 'strict': client.query\(\) called after release\(\)/);
    const again = await pool.acquire();
    expect((await again.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    again.release();
  });

  it('warns once, with the acquiring stack, about a client held longer than leakDetectionMs', async () => {
    const lines: string[] = [];
    const pool = createTestPool({ min: 1, max: 1, leakDetectionMs: 50, logger: recordingLogger(lines) });
    const holdItTooLong = async (): Promise<PooledClient> => pool.acquire();
    const client = await holdItTooLong();
    await eventually('the leak is reported', () => lines.some((l) => l.startsWith('warn: ')));
    const warning = lines.find((l) => l.startsWith('warn: ')) as string;
    expect(warning).toMatch(/a client has been checked out for more than 50 ms \(leakDetectionMs\); it was acquired at:/);
    expect(warning).toContain('holdItTooLong');
    expect(pool.getStats().leaksDetected).toBe(1);
    client.release();
    const quick = await pool.acquire();
    quick.release();
    expect(pool.getStats().leaksDetected).toBe(1);
  });

  it('throws a clear PoolUsageError on a double release and keeps the pool consistent', async () => {
    const pool = createTestPool({ name: 'twice', min: 1, max: 1 });
    const client = await pool.acquire();
    client.release();
    expect(() => client.release()).toThrow(PoolUsageError);
    expect(() => client.release()).toThrow(/^pool 'twice': Release called on client which has already been released to the pool/);
    const next = await pool.acquire();
    expect(pool.getStats()).toMatchObject({ poolSize: 1, poolAvailable: 0 });
    next.release();
    expect(pool.getStats()).toMatchObject({ poolSize: 1, poolAvailable: 1 });
  });

  it('does not let an earlier checkout release or use the connection from under its next user', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const first = await pool.acquire();
    const staleRelease = first.release;
    first.release();
    const second = await pool.acquire();
    // The same connection, through a handle of this checkout's own.
    expect(pidOf(second)).toBe(pidOf(first));
    expect(second).not.toBe(first);
    expect(second).toBeInstanceOf(Client);
    expect(() => staleRelease()).toThrow(PoolUsageError);
    expect(() => first.release()).toThrow(PoolUsageError);
    expect(() => first.query('SELECT 1')).toThrow(PoolUsageError);
    expect(pool.checkedOutCount).toBe(1);
    expect((await second.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    second.release();
  });

  it('reads through to the client: fields pg sets, and ones a connect listener set on it', async () => {
    const pool = createTestPool({ min: 0, max: 1 });
    pool.on('connect', (client) => {
      (client as unknown as { tag: string }).tag = 'set on connect';
    });
    await pool.withConnection(async (client) => {
      expect((client as unknown as { tag: string }).tag).toBe('set on connect');
      expect(typeof pidOf(client)).toBe('number');
      expect(client.getTransactionStatus()).toBe('I');
      const notices: string[] = [];
      client.on('notice', (notice) => notices.push(notice.message ?? ''));
      await client.query("DO $$ BEGIN RAISE NOTICE 'hello'; END $$");
      expect(notices).toEqual(['hello']);
      client.removeAllListeners('notice');
    });
  });

  it('closes the connection instead of reusing it on release(err) or release(true)', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const reasons: string[] = [];
    pool.on('remove', (_client, reason) => reasons.push(reason));
    const first = await pool.acquire();
    const firstPid = pidOf(first);
    first.release(new Error('the app decided this connection is bad'));
    const second = await pool.acquire();
    expect(pidOf(second)).not.toBe(firstPid);
    second.release(true);
    const third = await pool.acquire();
    third.release();
    expect(reasons).toEqual(['released-with-error', 'released-with-error']);
    expect(pool.getStats().connectionsNum).toBe(3);
  });

  it('runs the reset hook on each return, and discards a connection whose reset throws', async () => {
    let resets = 0;
    const pool = createTestPool({
      min: 1, max: 1,
      reset: async (client) => {
        resets++;
        await client.query('RESET ALL');
        if (resets === 2) throw new Error('reset failed on purpose');
      },
    });
    const client = await pool.acquire();
    await client.query("SET application_name = 'changed-by-user'");
    await client[Symbol.asyncDispose]();
    // RESET ALL brought back the pool's application_name.
    expect(await backendCount(appNameOf(pool))).toBe(1);
    const again = await pool.acquire();
    const pid = pidOf(again);
    await again[Symbol.asyncDispose]();
    const third = await pool.acquire();
    expect(pidOf(third)).not.toBe(pid);
    await third[Symbol.asyncDispose]();
    expect(resets).toBe(3);
  });

  it('resolves asyncDispose only once the client is back in the pool', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    {
      await using client = await pool.acquire();
      await client.query('BEGIN');
      await client.query('SELECT 1');
    }
    // The scope's dispose awaited the ROLLBACK: the connection is idle again.
    expect(pool.getStats()).toMatchObject({ poolAvailable: 1, returnsBad: 1 });
    expect(pool.checkedOutCount).toBe(0);
  });

  it('never hands out a client whose backend was terminated while idle', async () => {
    const pool = createTestPool({ min: 3, max: 3 });
    await pool.open({ wait: true });
    const errors: Error[] = [];
    pool.on('error', (error) => errors.push(error));
    expect(await terminateBackends(appNameOf(pool))).toBe(3);
    await eventually('the pool notices the lost connections', () => pool.getStats().connectionsLost === 3);
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => pool.query<{ i: number }>('SELECT $1::int AS i', [i])));
    expect(results.map((r) => r.rows[0].i)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(errors.length).toBe(3);
    await eventually('the pool is back at min', () => pool.getStats().poolAvailable === 3);
  });

  it('survives an idle connection error with no error listener (pg.Pool would crash)', async () => {
    const pool = createTestPool({ min: 2, max: 2 });
    await pool.open({ wait: true });
    expect(pool.listenerCount('error')).toBe(0);
    await terminateBackends(appNameOf(pool));
    await eventually('the lost connections are replaced', async () =>
      pool.getStats().connectionsNum === 4 && pool.getStats().poolAvailable === 2);
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('discards a client whose backend died while it was checked out, on release', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const client = await pool.acquire();
    await terminateBackends(appNameOf(pool));
    await expect(client.query('SELECT 1')).rejects.toThrow();
    client.release();
    const { rows } = await pool.query('SELECT 2 AS two');
    expect(rows).toEqual([{ two: 2 }]);
    expect(pool.getStats()).toMatchObject({ connectionsNum: 2, returnsBad: 1, connectionsLost: 1 });
  });
});

describe('withConnection', () => {
  it('calls the callback asynchronously even with an idle connection at hand, as a promise-returning API should', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    await pool.open({ wait: true });
    let called = false;
    const done = pool.withConnection(() => {
      called = true;
    });
    expect(called).toBe(false);
    await done;
    expect(called).toBe(true);
    expect(pool.checkedOutCount).toBe(0);
  });

  it('rejects with the error of a callback that throws synchronously, and releases the client', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    await expect(pool.withConnection(() => {
      throw new Error('thrown before any await');
    })).rejects.toThrow('thrown before any await');
    expect(pool.checkedOutCount).toBe(0);
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('resolves only once the connection is back, after the ROLLBACK of a transaction the callback left open', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    let pid = 0;
    const value = await pool.withConnection(async (client) => {
      pid = pidOf(client);
      await client.query('BEGIN');
      await client.query('INSERT INTO release_spec VALUES (43)');
      return 'left open';
    });
    expect(value).toBe('left open');
    // Back already, rolled back: idle in the pool, not still being inspected.
    expect(pool.checkedOutCount).toBe(0);
    expect(pool.getStats().poolAvailable).toBe(1);
    expect(pool.getStats().returnsBad).toBe(1);
    const next = await pool.acquire();
    expect(pidOf(next)).toBe(pid);
    expect(next.getTransactionStatus()).toBe('I');
    expect((await next.query('SELECT count(*)::int AS n FROM release_spec WHERE id = 43')).rows).toEqual([{ n: 0 }]);
    next.release();
  });

  it('rejects with the callback\'s error after rolling back what it left open', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    await expect(pool.withConnection(async (client) => {
      await client.query('BEGIN');
      await client.query('INSERT INTO release_spec VALUES (44)');
      throw new Error('failed inside the transaction');
    })).rejects.toThrow('failed inside the transaction');
    expect(pool.getStats().poolAvailable).toBe(1);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
    expect((await pool.query('SELECT count(*)::int AS n FROM release_spec WHERE id = 44')).rows).toEqual([{ n: 0 }]);
  });

  it('adopts a thenable that is not a native promise, as await would', async () => {
    const pool = createTestPool({ min: 1, max: 1 });
    const fulfilled: PromiseLike<number> = { then: (onFulfilled) => Promise.resolve(onFulfilled?.(5)) as never };
    expect(await pool.withConnection(() => fulfilled)).toBe(5);
    const rejected: PromiseLike<number> = { then: (_onFulfilled, onRejected) => Promise.resolve(onRejected?.(new Error('thenable refused'))) as never };
    await expect(pool.withConnection(() => rejected)).rejects.toThrow('thenable refused');
    expect(pool.checkedOutCount).toBe(0);
  });
});
