import { Controller, Get } from '@nestjs/common';
import { parseIntoClientConfig } from 'pg-connection-string';
import request from 'supertest';
import type { PooledClient } from '../../lib/index.js';
import { Conn, PgPoolModule, UseConnection } from '../../lib/nest/index.js';
import { testUrl, uniqueAppName } from '../support/database.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { startApp, type TestApp } from '../support/nest-app.js';

@Controller('outage')
class OutageController {
  @Get()
  @UseConnection()
  async one(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query('SELECT 1 AS one')).rows[0];
  }
}

/**
 * While the database is down, a web app answers at once with 503 "database unavailable"
 * and Retry-After, not after the whole acquire timeout with "busy".
 */
describe('requests while the database is down', () => {
  let proxy: FaultProxy;
  let test: TestApp;

  beforeAll(async () => {
    const config = parseIntoClientConfig(testUrl());
    proxy = await FaultProxy.start({ host: String(config.host), port: Number(config.port) });
    const url = new URL(testUrl());
    url.host = `127.0.0.1:${proxy.port}`;
    url.searchParams.set('application_name', uniqueAppName());
    test = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: url.toString(), min: 1, max: 2, acquireTimeoutMs: 20_000, unavailableTimeoutMs: 300 })],
      controllers: [OutageController],
    });
  });

  afterAll(async () => {
    await test.close();
    await proxy.close();
  });

  it('answers 503 "database unavailable" with Retry-After within the bound, then serves again once it is back', async () => {
    const http = () => request(test.app.getHttpServer());
    await http().get('/outage').expect(200);
    const refusing = proxy.setMode('refuse');
    proxy.cutAll();
    await refusing;
    const startedAt = performance.now();
    const response = await http().get('/outage').expect(503);
    expect(performance.now() - startedAt).toBeLessThan(5_000);
    expect(response.body).toEqual({ statusCode: 503, error: 'Service Unavailable', pool: 'default', message: 'database unavailable; retry later' });
    expect(Number(response.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    await proxy.setMode('pass');
    await http().get('/outage').expect(200);
  });
});
