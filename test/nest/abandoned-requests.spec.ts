import { Body, Controller, Get, Injectable, Post, Sse, type CallHandler, type ExecutionContext, type MessageEvent, type NestInterceptor } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { connect } from 'node:net';
import { interval, map, timeout, type Observable } from 'rxjs';
import request from 'supertest';
import type { PgPool, PooledClient } from '../../lib/index.js';
import { Conn, PgPoolModule, UseConnection } from '../../lib/nest/index.js';
import { adminQuery, appNameOf, backendCount, eventually, testUrlWithAppName } from '../support/database.js';
import { startApp, type TestApp } from '../support/nest-app.js';

/** What many apps register globally: no request may take longer than this. */
@Injectable()
class RequestTimeoutInterceptor implements NestInterceptor {
  intercept(_context: ExecutionContext, next: CallHandler): Observable<unknown> {
    return next.handle().pipe(timeout(50));
  }
}

const stubbornDone: number[] = [];

@Controller('abandoned')
class AbandonedController {
  @Get('slow')
  @UseConnection()
  async slow(@Conn() client: PooledClient): Promise<string> {
    await client.query('SELECT pg_sleep(0.2)');
    return 'finished';
  }

  @Post('slow-tx')
  @UseConnection({ transaction: true })
  async slowTx(@Body() body: { id: number }, @Conn() client: PooledClient): Promise<string> {
    await client.query('INSERT INTO abandoned_spec (id) VALUES ($1)', [body.id]);
    await client.query('SELECT pg_sleep(0.2)');
    return 'finished';
  }

  /** A handler that carries on after its statement was cancelled, and writes again. */
  @Post('stubborn-tx')
  @UseConnection({ transaction: true })
  async stubbornTx(@Body() body: { id: number }, @Conn() client: PooledClient): Promise<string> {
    try {
      await client.query('SELECT pg_sleep(0.2)');
    } catch {
      // carries on regardless
    }
    try {
      await client.query('INSERT INTO abandoned_spec (id) VALUES ($1)', [body.id]);
    } catch {
      // the fence: the write is refused
    }
    stubbornDone.push(body.id);
    return 'finished';
  }

  @Sse('events')
  @UseConnection()
  events(@Conn() client: PooledClient): Observable<MessageEvent> {
    return interval(10).pipe(map((n) => ({ data: { n, pid: (client as unknown as { processID: number }).processID } })));
  }
}

/**
 * A subscriber that goes away before the handler ends (an rxjs `timeout()` around it, an
 * SSE client that disconnects) must not keep the request's connection: it is released,
 * and its transaction rolled back, or a `max: 1` pool would be stuck for good.
 */
describe('@UseConnection when the subscriber goes away', () => {
  let test: TestApp;
  let pool: PgPool;

  beforeAll(async () => {
    await adminQuery('CREATE TABLE IF NOT EXISTS abandoned_spec (id int PRIMARY KEY)');
    test = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1, max: 1, acquireTimeoutMs: 2_000 })],
      controllers: [AbandonedController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: RequestTimeoutInterceptor }],
    });
    await test.app.listen(0, '127.0.0.1');
    pool = test.registry.get();
  });

  afterAll(async () => {
    await test.close();
  });

  it('releases the connection when a global timeout() unsubscribes before the handler ends', async () => {
    await request(test.app.getHttpServer()).get('/abandoned/slow').expect(500);
    await eventually('the connection is back', () => pool.checkedOutCount === 0 && pool.idleCount === 1);
    // The pool (max 1) serves the next request: it is not stuck.
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });

  it('rolls back the transaction of a request that timed out', async () => {
    await request(test.app.getHttpServer()).post('/abandoned/slow-tx').send({ id: 1 }).expect(500);
    await eventually('the connection is back', () => pool.checkedOutCount === 0 && pool.idleCount === 1);
    expect(await adminQuery('SELECT id FROM abandoned_spec WHERE id = 1')).toEqual([]);
    expect(await backendCount(appNameOf(pool), 'idle in transaction')).toBe(0);
  });

  it('fences the client off from a handler that carries on: its later write is neither run nor committed', async () => {
    await request(test.app.getHttpServer()).post('/abandoned/stubborn-tx').send({ id: 2 }).expect(500);
    await eventually('the handler has finished', () => stubbornDone.includes(2));
    await eventually('the connection is back', () => pool.checkedOutCount === 0 && pool.idleCount === 1);
    expect(await adminQuery('SELECT id FROM abandoned_spec WHERE id = 2')).toEqual([]);
  });

  it('releases the connection of an @Sse stream whose client disconnects', async () => {
    const port = (test.app.getHttpServer().address() as { port: number }).port;
    const socket = connect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    const firstEvent = new Promise<void>((resolve) => socket.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('data:')) resolve();
    }));
    await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
    socket.write('GET /abandoned/events HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n');
    await firstEvent;
    expect(pool.checkedOutCount).toBe(1);
    socket.destroy();
    await eventually('the connection is back', () => pool.checkedOutCount === 0 && pool.idleCount === 1);
    expect((await pool.query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
  });
});
