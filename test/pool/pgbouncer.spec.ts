import { parseIntoClientConfig } from 'pg-connection-string';
import { BadRequestException, Controller, Param, Post } from '@nestjs/common';
import request from 'supertest';
import { PgPool, type PgPoolOptions, type PooledClient } from '../../lib/index.js';
import { Conn, PgPoolModule, UseConnection } from '../../lib/nest/index.js';
import { startApp } from '../support/nest-app.js';
import { adminQuery, eventually, recordingLogger, testUrl } from '../support/database.js';
import { PgBouncer } from '../support/pgbouncer.js';

describe('behind PgBouncer in transaction mode', () => {
  let bouncer: PgBouncer;
  const pools: PgPool[] = [];
  // PgBouncer keeps its server connections open after our pools close, so these pools
  // are not handed to the after-each check that waits for their sessions to leave.
  const bouncerPool = (options: Partial<PgPoolOptions>): PgPool => {
    const pool = new PgPool({
      connectionString: bouncer.url('postgres'), connection: { application_name: 'bouncer-client' }, logger: recordingLogger(), ...options,
    });
    pools.push(pool);
    return pool;
  };
  // The server connections carry the application_name PgBouncer forwards from its clients.
  const serverConnections = async (): Promise<number> => Number((await adminQuery<{ n: string }>(
    "SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'bouncer-client'"))[0].n);

  afterEach(async () => {
    for (const pool of pools.splice(0)) {
      expect(pool.checkedOutCount).toBe(0);
      await pool.close();
    }
  });

  beforeAll(async () => {
    const config = parseIntoClientConfig(testUrl());
    bouncer = await PgBouncer.start({
      host: String(config.host), port: Number(config.port), user: String(config.user),
      password: String(config.password), database: String(config.database), poolSize: 5,
    });
    await adminQuery('CREATE TABLE IF NOT EXISTS bouncer_spec (tag text, n int)');
    await adminQuery('TRUNCATE bouncer_spec');
  });

  afterAll(async () => {
    await bouncer?.stop();
  });

  it('cancels a statement through PgBouncer (whose process ids are its own) with the protocol\'s CancelRequest', async () => {
    const pool = bouncerPool({ min: 1, max: 1 });
    const client = await pool.acquire();
    try {
      const running = client.query('SELECT pg_sleep(10)').then(() => 'finished', (error: unknown) => error);
      await eventually('the statement runs on the server', async () => (await adminQuery<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(10)' AND state = 'active'"))[0].n === 1);
      await expect(pool.cancelQuery(client)).resolves.toBe(true);
      await expect(running).resolves.toMatchObject({ code: '57014' });
    } finally {
      client.release();
    }
  });

  it('multiplexes pool.query() statements through it: pipelined, each its own transaction, errors isolated', async () => {
    const pool = bouncerPool({ min: 0, max: 4, multiplex: { depth: 16 } });
    const running = Array.from({ length: 200 }, (_, i) => pool.query(i % 50 === 7 ? 'SELECT 1/0' : `SELECT ${i}::int AS i`));
    const settled = await Promise.allSettled(running);
    const failed = settled.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    expect(failed).toEqual([7, 57, 107, 157]);
    expect(settled.flatMap((r) => (r.status === 'fulfilled' ? [(r.value.rows[0] as { i: number }).i] : [])))
      .toEqual(Array.from({ length: 200 }, (_, i) => i).filter((i) => i % 50 !== 7));
    await eventually('the shared connections are back', () => pool.getStats().multiplexConnections === 0, 5_000);
  });

  it('keeps withTransaction correct under concurrency on 5 server connections, with no session state', async () => {
    const pool = bouncerPool({ min: 2, max: 20 });
    let peakServer = 0;
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => pool.withTransaction(async (client) => {
      for (let n = 0; n < 5; n++) await client.query('INSERT INTO bouncer_spec VALUES ($1, $2)', [`t${i}`, n]);
      // Inside the transaction the same server connection sees its own writes, whatever PgBouncer does between transactions.
      const { rows } = await client.query<{ c: number }>('SELECT count(*)::int AS c FROM bouncer_spec WHERE tag = $1', [`t${i}`]);
      if (i % 10 === 0) peakServer = Math.max(peakServer, await serverConnections());
      return rows[0].c;
    })));
    expect(results).toEqual(Array.from({ length: 60 }, () => 5));
    expect((await adminQuery<{ c: number }>('SELECT count(*)::int AS c FROM bouncer_spec'))[0].c).toBe(300);
    expect(peakServer).toBeGreaterThan(0);
    expect(peakServer).toBeLessThanOrEqual(5);
  });

  it('rolls back transactions that throw, under concurrency', async () => {
    const pool = bouncerPool({ min: 1, max: 20 });
    const outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => pool.withTransaction(async (client) => {
      await client.query('INSERT INTO bouncer_spec VALUES ($1, 0)', [`rollback-${i}`]);
      if (i % 2 === 0) throw new Error('abort');
    })));
    expect(outcomes.filter((o) => o.status === 'rejected')).toHaveLength(20);
    expect((await adminQuery<{ c: number }>("SELECT count(*)::int AS c FROM bouncer_spec WHERE tag LIKE 'rollback-%'"))[0].c).toBe(20);
    expect(pool.getStats().returnsBad).toBe(0);
  });

  it('runs @UseConnection({ transaction: true }) requests correctly through it under concurrency', async () => {
    @Controller()
    class WritesController {
      @Post('write/:tag')
      @UseConnection({ transaction: true })
      async write(@Param('tag') tag: string, @Conn() client: PooledClient): Promise<{ seen: number }> {
        await client.query('INSERT INTO bouncer_spec VALUES ($1, 1)', [tag]);
        await client.query('INSERT INTO bouncer_spec VALUES ($1, 2)', [tag]);
        if (tag.endsWith('-fail')) throw new BadRequestException('rolled back');
        return (await client.query<{ seen: number }>('SELECT count(*)::int AS seen FROM bouncer_spec WHERE tag = $1', [tag])).rows[0];
      }
    }
    const { app, close } = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: bouncer.url('postgres'), connection: { application_name: 'bouncer-client' }, min: 1, max: 10 })],
      controllers: [WritesController],
    });
    try {
      const responses = await Promise.all(Array.from({ length: 30 }, (_, i) =>
        request(app.getHttpServer()).post(`/write/http-${i}${i % 3 === 0 ? '-fail' : ''}`)));
      responses.forEach((response, i) => {
        if (i % 3 === 0) expect(response.status).toBe(400);
        else expect(response.body).toEqual({ seen: 2 });
      });
      expect((await adminQuery<{ c: number }>("SELECT count(*)::int AS c FROM bouncer_spec WHERE tag LIKE 'http-%'"))[0].c).toBe(40);
    } finally {
      await close();
    }
  });
});
