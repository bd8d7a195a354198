import { Body, Controller, Get, Post, type StreamableFile } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { connect } from 'node:net';
import { parseIntoClientConfig } from 'pg-connection-string';
import request from 'supertest';
import type { PgPool, PooledClient } from '../../lib/index.js';
import { Conn, PgPoolHealthIndicator, PgPoolModule, UseConnection } from '../../lib/nest/index.js';
import { adminQuery, appNameOf, backendCount, eventually, testPassword, testUrl, testUrlWithAppName, uniqueAppName } from '../support/database.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { startApp, type TestApp } from '../support/nest-app.js';
import { bodyText, streamedRows } from '../support/streamed-rows.js';

@Controller('fastify')
class FastifyController {
  constructor(private readonly health: HealthCheckService, private readonly database: PgPoolHealthIndicator) {}

  @Get('pid')
  @UseConnection()
  async pid(@Conn() client: PooledClient): Promise<{ pid: number }> {
    return (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0];
  }

  @Post('write')
  @UseConnection({ transaction: true })
  async write(@Body() body: { id: number; fail?: boolean }, @Conn() client: PooledClient): Promise<{ id: number }> {
    await client.query('INSERT INTO fastify_spec (id) VALUES ($1)', [body.id]);
    if (body.fail) throw new Error('fails after writing');
    return { id: body.id };
  }

  @Post('slow-tx')
  @UseConnection({ transaction: true })
  async slowTx(@Body() body: { id: number }, @Conn() client: PooledClient): Promise<string> {
    await client.query('INSERT INTO fastify_spec (id) VALUES ($1)', [body.id]);
    await client.query('SELECT pg_sleep(5)');
    return 'finished';
  }

  @Get('rows')
  @UseConnection({ transaction: true })
  rows(@Conn() client: PooledClient): StreamableFile {
    return streamedRows(client, 2_000);
  }

  @Get('rows-endless')
  @UseConnection({ transaction: true })
  rowsEndless(@Conn() client: PooledClient): StreamableFile {
    return streamedRows(client, 100_000_000);
  }

  @Get('health')
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.database.isHealthy('database', { timeoutMs: 1_000 })]);
  }
}

const modules = (connectionString: string, extra: Record<string, unknown> = {}) => ({
  imports: [PgPoolModule.forRoot({ connectionString, min: 1, max: 1, acquireTimeoutMs: 5_000, ...extra }), TerminusModule.forRoot({ logger: false })],
  controllers: [FastifyController],
  providers: [PgPoolHealthIndicator],
});

/** The same guarantees on @nestjs/platform-fastify as on Express, over real HTTP. */
describe('on Fastify (@nestjs/platform-fastify)', () => {
  let test: TestApp;
  let pool: PgPool;
  const http = () => request(test.app.getHttpServer());

  beforeAll(async () => {
    await adminQuery('CREATE TABLE IF NOT EXISTS fastify_spec (id int PRIMARY KEY)');
    await adminQuery('TRUNCATE fastify_spec');
    test = await startApp(modules(testUrlWithAppName()), { platform: 'fastify' });
    await test.app.listen(0, '127.0.0.1');
    pool = test.registry.get();
  });

  afterAll(async () => {
    await test.close();
  });

  it('serves @UseConnection routes and releases the connection', async () => {
    const { body } = await http().get('/fastify/pid').expect(200);
    expect(body.pid).toEqual(expect.any(Number));
    expect(pool.checkedOutCount).toBe(0);
  });

  it('commits a transactional route, and rolls back one that throws', async () => {
    await http().post('/fastify/write').send({ id: 1 }).expect(201);
    await http().post('/fastify/write').send({ id: 2, fail: true }).expect(500);
    expect(await adminQuery('SELECT id FROM fastify_spec ORDER BY id')).toEqual([{ id: 1 }]);
    expect(pool.checkedOutCount).toBe(0);
  });

  it('answers the Terminus health route with the pool stats, never the password', async () => {
    const { body, text } = await http().get('/fastify/health').expect(200);
    expect(body.details.database).toMatchObject({ status: 'up', pool: 'default', poolMax: 1 });
    expect(text).not.toContain(testPassword());
  });

  it('releases the connection and rolls back when the HTTP client goes away mid-request', async () => {
    const port = (test.app.getHttpServer().address() as { port: number }).port;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const payload = JSON.stringify({ id: 3 });
    socket.write(`POST /fastify/slow-tx HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n${payload}`);
    await eventually('the statement is running', async () => (await backendCount(appNameOf(pool), 'active')) >= 1, 5_000);
    socket.destroy();
    // Well before pg_sleep(5) would end: the statement was cancelled, the work rolled back.
    await eventually('the connection is back', () => pool.checkedOutCount === 0 && pool.idleCount === 1, 3_000);
    expect(await adminQuery('SELECT id FROM fastify_spec WHERE id = 3')).toEqual([]);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
    await http().get('/fastify/pid').expect(200);
  });

  it('abandons a pipelined request waiting behind another when the client leaves: neither commits', async () => {
    const port = (test.app.getHttpServer().address() as { port: number }).port;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    const post = (id: number): string => {
      const payload = JSON.stringify({ id });
      return `POST /fastify/slow-tx HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${payload.length}\r\n\r\n${payload}`;
    };
    // The pool has one connection: the second request waits for the first one's.
    socket.write(post(4) + post(5));
    await eventually('the first statement is running, the second request waits', async () =>
      (await backendCount(appNameOf(pool), 'active')) >= 1 && pool.getStats().requestsWaiting === 1, 5_000);
    socket.destroy();
    await eventually('the connection is back, nobody waits', () =>
      pool.checkedOutCount === 0 && pool.idleCount === 1 && pool.getStats().requestsWaiting === 0, 3_000);
    expect(await adminQuery('SELECT id FROM fastify_spec WHERE id IN (4, 5)')).toEqual([]);
    await http().get('/fastify/pid').expect(200);
  });

  it('streams a StreamableFile from the request\'s connection, holding it until the stream ends, and releases it when the client leaves halfway', async () => {
    const lines = (await bodyText(http().get('/fastify/rows').expect(200))).trim().split('\n');
    expect(lines).toHaveLength(2_000);
    expect(lines[1_999]).toBe('2000');
    await eventually('the connection is back', () => pool.checkedOutCount === 0);

    const port = (test.app.getHttpServer().address() as { port: number }).port;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const firstRows = new Promise<void>((resolve) => socket.once('data', () => resolve()));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /fastify/rows-endless HTTP/1.1\r\nHost: localhost\r\n\r\n');
    await firstRows;
    socket.destroy();
    await eventually('the connection is back', () => pool.checkedOutCount === 0 && pool.idleCount === 1);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
    await http().get('/fastify/pid').expect(200);
  });
});

describe('on Fastify while the database is down', () => {
  it('answers 503 "database unavailable" with Retry-After, not a 500', async () => {
    const config = parseIntoClientConfig(testUrl());
    const proxy = await FaultProxy.start({ host: String(config.host), port: Number(config.port) });
    const url = new URL(testUrl());
    url.host = `127.0.0.1:${proxy.port}`;
    url.searchParams.set('application_name', uniqueAppName());
    const test = await startApp(modules(url.toString(), { unavailableTimeoutMs: 300 }), { platform: 'fastify' });
    try {
      const http = () => request(test.app.getHttpServer());
      await http().get('/fastify/pid').expect(200);
      const refusing = proxy.setMode('refuse');
      proxy.cutAll();
      await refusing;
      const response = await http().get('/fastify/pid').expect(503);
      expect(response.body).toEqual({ statusCode: 503, error: 'Service Unavailable', pool: 'default', message: 'database unavailable; retry later' });
      expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      await proxy.setMode('pass');
      await eventually('it serves again', async () => (await http().get('/fastify/pid')).status === 200, 10_000);
    } finally {
      await test.close();
      await proxy.close();
    }
  });
});
