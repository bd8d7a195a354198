import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Readable, Writable } from 'node:stream';
import connectPgSimple from 'connect-pg-simple';
import { drizzle } from 'drizzle-orm/node-postgres';
import { Kysely, PostgresDialect } from 'kysely';
import session from 'express-session';
import pg from 'pg';
import Cursor from 'pg-cursor';
import QueryStream from 'pg-query-stream';
import { from as copyFrom, to as copyTo } from 'pg-copy-streams';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PgPool, PoolClosedError, PoolTimeoutError, PoolUnavailableError, type PooledClient } from '../../lib/index.js';
import { adminQuery, eventually, loggedLines, recordingLogger, testUrl, trackedPools, uniqueAppName } from '../support/database.js';
import { packageRoot, requireBuiltPackage } from '../support/built-package.js';

/** The test server's settings as pg.Pool users write them: fields, not a URL. */
function pgStyleConfig(): pg.PoolConfig {
  const { host, port, user, password, database } = parseIntoClientConfig(testUrl());
  return { host: host ?? undefined, port: Number(port), user, password: password as string, database: database ?? undefined, application_name: uniqueAppName() };
}

/** A PgPool built exactly as a pg.Pool would be, tracked by the after-each leak check. */
function pgStylePool(extra: pg.PoolConfig = {}, Client?: typeof pg.Client): PgPool {
  const pool = new PgPool({ ...pgStyleConfig(), log: (message: unknown) => loggedLines.push(String(message)), ...extra }, Client);
  trackedPools.add(pool);
  return pool;
}

/** pool.connect(cb) as a promise of its three arguments. */
function connectWithCallback(pool: PgPool): Promise<[Error | undefined, PooledClient | undefined, (release?: Error | boolean) => void]> {
  return new Promise((resolve) => {
    pool.connect((error, client, done) => resolve([error, client, done]));
  });
}

describe('PgPool as a drop-in for pg.Pool', () => {
  it("takes pg.Pool's constructor config, with pg.Pool's meaning", async () => {
    const pool = pgStylePool({ max: 3, idleTimeoutMillis: 1_500, connectionTimeoutMillis: 2_500, maxLifetimeSeconds: 60, statement_timeout: 4_000 });
    expect(pool.options).toMatchObject({
      max: 3, min: 3, maxIdleMs: 1_500, acquireTimeoutMs: 2_500, connectTimeoutMs: 2_500, maxLifetimeMs: 60_000,
      // pg.Pool's own view of the same, for code that reads pool.options
      idleTimeoutMillis: 1_500, maxLifetimeSeconds: 60, maxUses: Number.POSITIVE_INFINITY, allowExitOnIdle: false,
    });
    const { rows } = await pool.query<{ statement_timeout: string }>('SHOW statement_timeout');
    expect(rows[0].statement_timeout).toBe('4s');
    // pg.Pool's 0s: never expire, never close idle; our names win where both are given.
    const never = pgStylePool({ idleTimeoutMillis: 0, maxLifetimeSeconds: 0, connectionTimeoutMillis: 0 });
    expect(never.options).toMatchObject({ maxIdleMs: Infinity, maxLifetimeMs: Infinity, acquireTimeoutMs: 30_000, idleTimeoutMillis: null });
    const both = pgStylePool({ idleTimeoutMillis: 1_000, maxIdleMs: 2_000 } as pg.PoolConfig);
    expect(both.options.maxIdleMs).toBe(2_000);
  });

  it('with no config at all, connects where the PG* environment says, as pg does', async () => {
    const { host, port, user, password, database } = parseIntoClientConfig(testUrl());
    const saved = { ...process.env };
    Object.assign(process.env, {
      PGHOST: host, PGPORT: String(port), PGUSER: user, PGPASSWORD: password, PGDATABASE: database, PGAPPNAME: uniqueAppName(),
    });
    try {
      const pool = new PgPool();
      trackedPools.add(pool);
      const { rows } = await pool.query<{ db: string; app: string }>('SELECT current_database() AS db, current_setting($1) AS app', ['application_name']);
      expect(rows[0]).toEqual({ db: database, app: process.env.PGAPPNAME });
      expect(pool.target).toBe(`${host}:${port}/${database}`);
    } finally {
      for (const key of ['PGHOST', 'PGPORT', 'PGUSER', 'PGPASSWORD', 'PGDATABASE', 'PGAPPNAME']) {
        if (saved[key] === undefined) delete process.env[key];
        else process.env[key] = saved[key];
      }
    }
  });

  it('takes its host and port from pg.defaults when neither the config nor PG* give them, as pg does', async () => {
    const { host, port, user, password, database } = parseIntoClientConfig(testUrl());
    const saved = { host: pg.defaults.host, port: pg.defaults.port };
    Object.assign(pg.defaults, { host, port: Number(port) });
    try {
      const pool = new PgPool({ user, password: password as string, database: database ?? undefined, application_name: uniqueAppName(), logger: recordingLogger() });
      trackedPools.add(pool);
      expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    } finally {
      Object.assign(pg.defaults, saved);
    }
  });

  it('keeps its connections through what pg.Pool survives: a null query, a pg.Query, a query_timeout', async () => {
    const pool = pgStylePool({ min: 0, max: 1, query_timeout: 300, acquireTimeoutMs: 1_500, connectTimeoutMs: 10_000 } as pg.PoolConfig);
    await expect(pool.query(undefined as unknown as string)).rejects.toThrow(/null or undefined query/);
    expect((await pool.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
    // A pg.Query: a promise of its result, as pg.Pool gives, errors included.
    const viaQuery = pool.query(new pg.Query('SELECT 2 AS two')) as unknown as Promise<pg.QueryResult>;
    expect((await viaQuery).rows).toEqual([{ two: 2 }]);
    await expect(pool.query(new pg.Query('SELECT nope')) as unknown as Promise<unknown>).rejects.toMatchObject({ code: '42703' });
    // A client-side timeout leaves the statement running: the connection is closed, not
    // waited for, so the next request is served within its 1.5 s acquire timeout.
    await expect(pool.query('SELECT pg_sleep(3)')).rejects.toThrow(/Query read timeout/);
    expect((await pool.query('SELECT 3 AS three')).rows).toEqual([{ three: 3 }]);
    expect(pool.checkedOutCount).toBe(0);
  });

  it("uses the client class given as pg.Pool's second argument", async () => {
    const made: string[] = [];
    class CountingClient extends pg.Client {
      constructor(config?: pg.ClientConfig) {
        super(config);
        made.push('client');
      }
    }
    const pool = pgStylePool({ min: 1, max: 1 }, CountingClient);
    await pool.query('SELECT 1');
    expect(made).toEqual(['client']);
  });

  it('connect(callback) hands (err, client, done); done releases; a failure reaches the callback', async () => {
    const pool = pgStylePool({ min: 0, max: 1, connectionTimeoutMillis: 300 });
    const [error, client, done] = await connectWithCallback(pool);
    expect(error).toBeUndefined();
    expect((await client!.query('SELECT 2 AS two')).rows).toEqual([{ two: 2 }]);
    // The pool is full: a second callback waits, then gets pg.Pool's timeout wording.
    const [timedOut, none] = await connectWithCallback(pool);
    expect(timedOut).toBeInstanceOf(PoolTimeoutError);
    expect(timedOut!.message).toMatch(/timeout exceeded when trying to connect/);
    expect(none).toBeUndefined();
    done();
    expect(pool.checkedOutCount).toBe(0);
    expect(() => done()).toThrow(/Release called on client which has already been released to the pool/);
  });

  it('query(text, callback), query(text, values, callback) and query(config, callback) call back, errors included, and release', async () => {
    const pool = pgStylePool({ min: 0, max: 1 });
    const call = (...args: unknown[]): Promise<[Error | undefined, pg.QueryResult | undefined]> => new Promise((resolve) => {
      const returned = (pool.query as (...a: unknown[]) => unknown)(...args, (error: Error | undefined, result: pg.QueryResult | undefined) => resolve([error, result]));
      expect(returned).toBeUndefined();
    });
    expect((await call('SELECT 1 AS one'))[1]!.rows).toEqual([{ one: 1 }]);
    expect((await call('SELECT $1::int AS n', [7]))[1]!.rows).toEqual([{ n: 7 }]);
    expect((await call({ text: 'SELECT $1::text AS t', values: ['x'] }))[1]!.rows).toEqual([{ t: 'x' }]);
    const [error, result] = await call('SELECT * FROM no_such_table');
    expect(error).toMatchObject({ code: '42P01' });
    expect(result).toBeUndefined();
    expect(pool.checkedOutCount).toBe(0);
    const misuse = await new Promise<Error>((resolve) => {
      void ((pool.query as (f: unknown) => Promise<unknown>)((error: Error) => resolve(error))).catch(() => undefined);
    });
    expect(misuse.message).toMatch(/Passing a function as the first parameter/);
  });

  it('end(callback) calls back once closed; a closed pool refuses with pg.Pool\'s wording', async () => {
    const pool = pgStylePool({ min: 1, max: 1 });
    await pool.query('SELECT 1');
    await new Promise<void>((resolve, reject) => pool.end((error) => (error ? reject(error) : resolve())));
    expect(pool.ended).toBe(true);
    await expect(pool.connect()).rejects.toThrow(PoolClosedError);
    await expect(pool.query('SELECT 1')).rejects.toThrow(/Cannot use a pool after calling end on the pool/);
    // Deliberately unlike pg.Pool: a second end() is not an error (a Nest shutdown hook and the app may both call it).
    await expect(pool.end()).resolves.toBeUndefined();
  });

  it("a job queue's LISTEN session through connect(callback) receives notifications", async () => {
    const pool = pgStylePool({ min: 0, max: 2 });
    const [error, client, done] = await connectWithCallback(pool);
    expect(error).toBeUndefined();
    const received: string[] = [];
    client!.on('notification', (message) => received.push(message.payload ?? ''));
    await new Promise<void>((resolve, reject) => {
      (client!.query as (text: string, cb: (e: Error | null) => void) => void)('LISTEN compat_jobs', (e) => (e ? reject(e) : resolve()));
    });
    await pool.query("SELECT pg_notify('compat_jobs', 'job-1')");
    await eventually('the listener got the notification', () => received.includes('job-1'), 5_000);
    await client!.query('UNLISTEN compat_jobs');
    done();
  });

  it("emits pg.Pool's events with pg.Pool's arguments", async () => {
    const pool = pgStylePool({ min: 0, max: 1, maxUses: 2 });
    const events: string[] = [];
    let connected: pg.Client | undefined;
    pool.on('connect', (client) => {
      connected = client as pg.Client;
      events.push('connect');
    });
    pool.on('acquire', (client) => events.push(`acquire:${typeof client.release}`));
    pool.on('release', (error, client) => events.push(`release:${String(error)}:${typeof client.query}`));
    pool.on('remove', (client) => events.push(`remove:${client === connected}`));
    await pool.query('SELECT 1');
    await pool.query('SELECT 1');
    await eventually('the connection used twice is removed', () => events.includes('remove:true'), 5_000);
    expect(events).toEqual(['connect', 'acquire:function', 'release:undefined:function', 'acquire:function', 'release:undefined:function', 'remove:true']);
  });

  it('maxUses replaces a connection after that many checkouts', async () => {
    const pool = pgStylePool({ min: 0, max: 1, maxUses: 3 });
    const pids: number[] = [];
    for (let i = 0; i < 7; i++) pids.push((await pool.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0].pid);
    expect(new Set(pids.slice(0, 3)).size).toBe(1);
    expect(new Set(pids.slice(3, 6)).size).toBe(1);
    expect(pids[3]).not.toBe(pids[0]);
    expect(pids[6]).not.toBe(pids[3]);
  });

  it("counts as pg.Pool does: a connection being opened is in totalCount, its requester is not waiting", async () => {
    const pool = pgStylePool({ min: 0, max: 2, maxLifetimeSeconds: 0.2 });
    const first = pool.connect();
    expect({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }).toEqual({ total: 1, idle: 0, waiting: 0 });
    const client = await first;
    expect({ total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount }).toEqual({ total: 1, idle: 0, waiting: 0 });
    // Past its lifetime while checked out: expired, closed when it comes back.
    await eventually('the checked-out connection has expired', () => pool.expiredCount === 1, 5_000);
    const removed = once(pool, 'remove');
    client.release();
    expect((await removed)[1]).toBe('lifetime');
    expect(pool.expiredCount).toBe(0);
  });

  it('hands the connection error (code and reason) to connect() while the server refuses connections', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const pool = new PgPool({ host: '127.0.0.1', port, user: 'nobody', database: 'none', unavailableTimeoutMs: 200, logger: recordingLogger() });
    trackedPools.add(pool);
    const error = await pool.connect().then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(PoolUnavailableError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('lets the process exit while every connection is idle with allowExitOnIdle', async () => {
    requireBuiltPackage();
    const script = `
      import { PgPool } from 'nestjs-pg-pool';
      const pool = new PgPool({ connectionString: process.env.URL, min: 2, allowExitOnIdle: true });
      const { rows } = await pool.query('SELECT 42 AS answer');
      console.log(rows[0].answer, pool.totalCount);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      cwd: packageRoot, env: { ...process.env, URL: testUrl() }, stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const exited = once(child, 'exit');
    const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
    const [code, signal] = await exited;
    clearTimeout(deadline);
    expect({ code, signal, output: output.trim() }).toEqual({ code: 0, signal: null, output: expect.stringMatching(/^42 [12]$/) });
  });
});

describe('libraries written for pg.Pool, on a PgPool', () => {
  it('is typed as a pg.Pool wherever a library asks for one (tsc checks this file in npm test)', () => {
    const pool = pgStylePool({ min: 0, max: 1 });
    const asPgPool: pg.Pool = pool;
    const kysely = new Kysely<Record<string, never>>({ dialect: new PostgresDialect({ pool }) });
    const db = drizzle(pool);
    const Store = connectPgSimple(session);
    const store = new Store({ pool, createTableIfMissing: false, pruneSessionInterval: false });
    // pg.Pool-typed code that reads the pool's options and counts gets pg.Pool's meaning.
    const { max, idleTimeoutMillis, maxUses } = asPgPool.options;
    expect({ max, idleTimeoutMillis, maxUses }).toEqual({ max: 1, idleTimeoutMillis: 600_000, maxUses: Infinity });
    expect([asPgPool.totalCount, asPgPool.idleCount, asPgPool.waitingCount, asPgPool.expiredCount]).toEqual([0, 0, 0, 0]);
    expect([kysely, db, store].every(Boolean)).toBe(true);
  });

  beforeAll(async () => {
    await adminQuery('CREATE TABLE IF NOT EXISTS compat_numbers (n int PRIMARY KEY)');
    await adminQuery('TRUNCATE compat_numbers');
    await adminQuery('INSERT INTO compat_numbers SELECT generate_series(1, 500)');
  });

  it('a session store (connect-pg-simple with express-session) keeps, reads and destroys sessions', async () => {
    const pool = pgStylePool({ min: 0, max: 2 });
    const PgStore = connectPgSimple(session);
    const store = new PgStore({ pool, tableName: 'compat_sessions', createTableIfMissing: true, pruneSessionInterval: false });
    const call = <T>(fn: (cb: (error: unknown, value?: T) => void) => void): Promise<T | undefined> => new Promise((resolve, reject) => {
      fn((error, value) => (error ? reject(error as Error) : resolve(value)));
    });
    const sessionData = { cookie: { originalMaxAge: 60_000, expires: new Date(Date.now() + 60_000) }, user: 'ada' } as unknown as session.SessionData;
    await call((cb) => store.set('sid-1', sessionData, cb));
    const read = await call<session.SessionData | null>((cb) => store.get('sid-1', cb));
    expect(read).toMatchObject({ user: 'ada' });
    await call((cb) => store.destroy('sid-1', cb));
    expect(await call<session.SessionData | null>((cb) => store.get('sid-1', cb))).toBeFalsy();
    expect(pool.checkedOutCount).toBe(0);
  });

  it('pg-cursor and pg-query-stream on a checked-out client, and given to pool.query(), which releases when done', async () => {
    const pool = pgStylePool({ min: 0, max: 1 });
    const client = await pool.connect();
    const cursor = client.query(new Cursor('SELECT n FROM compat_numbers ORDER BY n'));
    const firstRows = await cursor.read(100);
    expect(firstRows).toHaveLength(100);
    await cursor.close();
    const streamed: number[] = [];
    await pipeline(client.query(new QueryStream('SELECT n FROM compat_numbers ORDER BY n', [], { batchSize: 50 })), new Writable({
      objectMode: true,
      write(row: { n: number }, _encoding, next) { streamed.push(row.n); next(); },
    }));
    expect(streamed).toHaveLength(500);
    client.release();

    // pg.Pool never releases a submittable given to pool.query(); PgPool does once it ends.
    const viaPool: number[] = [];
    await pipeline(pool.query(new QueryStream('SELECT n FROM compat_numbers WHERE n <= 120 ORDER BY n', [], { batchSize: 25 })), new Writable({
      objectMode: true,
      write(row: { n: number }, _encoding, next) { viaPool.push(row.n); next(); },
    }));
    expect(viaPool).toHaveLength(120);
    await eventually('the stream released its connection', () => pool.checkedOutCount === 0, 5_000);
    const poolCursor = pool.query(new Cursor('SELECT n FROM compat_numbers ORDER BY n LIMIT 10'));
    expect(await poolCursor.read(20)).toHaveLength(10);
    await poolCursor.close();
    await eventually('the cursor released its connection', () => pool.checkedOutCount === 0, 5_000);
    // A failing one reports its error and releases too.
    const broken = pool.query(new QueryStream('SELECT * FROM no_such_table'));
    broken.resume();
    const [streamError] = await once(broken, 'error') as [Error];
    expect(streamError.message).toMatch(/no_such_table/);
    await eventually('the failed stream released its connection', () => pool.checkedOutCount === 0, 5_000);
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('pg-copy-streams COPY FROM and COPY TO on a checked-out client', async () => {
    const pool = pgStylePool({ min: 0, max: 1 });
    const client = await pool.connect();
    try {
      await client.query('CREATE TEMP TABLE compat_copy_in (n int, label text)');
      await pipeline(Readable.from(['1\tone\n', '2\ttwo\n', '3\tthree\n']), client.query(copyFrom('COPY compat_copy_in FROM STDIN')));
      let text = '';
      await pipeline(client.query(copyTo('COPY (SELECT * FROM compat_copy_in ORDER BY n) TO STDOUT')), new Writable({
        write(chunk: Buffer, _encoding, next) { text += chunk.toString(); next(); },
      }));
      expect(text).toBe('1\tone\n2\ttwo\n3\tthree\n');
    } finally {
      client.release();
    }
  });
});
