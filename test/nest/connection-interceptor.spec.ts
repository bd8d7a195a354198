import { Controller, Get, HttpException } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import request from 'supertest';
import type { PgPool, PooledClient } from '../../lib/index.js';
import { Conn, currentConnection, PgConnectionInterceptor, PgPoolModule, UseConnection } from '../../lib/nest/index.js';
import { testUrlWithAppName } from '../support/database.js';
import { startApp, type TestApp } from '../support/nest-app.js';

/**
 * PgConnectionInterceptor as a global interceptor, in front of `@UseConnection` handlers:
 * the interceptor opens the request's scope before Nest resolves the handler's
 * parameters, and the handler runs on that connection, not on a second one.
 */
@Controller('intercepted')
@UseConnection()
class InterceptedController {
  @Get('conn')
  async conn(@Conn() client: PooledClient): Promise<{ sameAsScope: boolean; pid: number }> {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return { sameAsScope: currentConnection() === client, pid: rows[0].pid };
  }

  @Get('fails')
  async fails(@Conn() client: PooledClient): Promise<never> {
    await client.query('SELECT 1');
    throw new HttpException('refused', 409);
  }
}

describe('PgConnectionInterceptor in front of @UseConnection', () => {
  let test: TestApp;
  let pool: PgPool;

  beforeEach(async () => {
    test = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1, max: 2 })],
      controllers: [InterceptedController],
      providers: [{ provide: APP_INTERCEPTOR, useClass: PgConnectionInterceptor }],
    });
    pool = test.registry.get();
    await pool.open({ wait: true });
  });

  afterEach(() => test.close());

  const http = () => request(test.app.getHttpServer());

  it('gives the handler the connection the interceptor took, one checkout per request, from the first request on', async () => {
    const before = pool.getStats().requestsNum;
    const first = (await http().get('/intercepted/conn').expect(200)).body as { sameAsScope: boolean; pid: number };
    const second = (await http().get('/intercepted/conn').expect(200)).body as { sameAsScope: boolean; pid: number };
    expect(first.sameAsScope).toBe(true);
    expect(second.sameAsScope).toBe(true);
    expect(pool.getStats().requestsNum - before).toBe(2);
    expect(pool.idleCount).toBe(pool.getStats().poolSize);
  });

  it('releases the connection once when the handler throws, and answers with its error', async () => {
    await http().get('/intercepted/fails').expect(409);
    await http().get('/intercepted/fails').expect(409);
    expect(pool.getStats().poolSize - pool.idleCount).toBe(0);
  });
});
