import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import request from 'supertest';
import type { PooledClient } from '../../lib/index.js';
import { Conn, PgPoolHealthIndicator, PgPoolModule, UseConnection } from '../../lib/nest/index.js';
import { eventually, testUrlWithAppName } from '../support/database.js';
import { startApp } from '../support/nest-app.js';
import { PostgresServer } from '../support/postgres-server.js';
import { TEST_PASSWORD } from '../support/test-secrets.js';

@Controller()
class ReportsController {
  constructor(private readonly health: HealthCheckService, private readonly database: PgPoolHealthIndicator) {}

  @Get('report')
  @UseConnection({ pool: 'replica', fallback: 'default' })
  async report(@Conn() client: PooledClient): Promise<{ port: number }> {
    return (await client.query<{ port: number }>("SELECT current_setting('port')::int AS port")).rows[0];
  }

  @Get('health')
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.database.isHealthy('primary', { pool: 'default', timeoutMs: 500 }),
      () => this.database.isHealthy('replica', { pool: 'replica', timeoutMs: 500 }),
    ]);
  }
}

describe('read replicas', () => {
  it('routes reads to the replica, falls back to the primary while the replica is down, and health reports each', async () => {
    const replica = await PostgresServer.create({ password: TEST_PASSWORD });
    await replica.start();
    const { app, registry, close } = await startApp({
      imports: [
        PgPoolModule.forRoot([
          { connectionString: testUrlWithAppName(), min: 1 },
          { name: 'replica', connectionString: replica.url(), min: 1, acquireTimeoutMs: 1_000, reconnectDelayMs: 50, reconnectMaxDelayMs: 200 },
        ]),
        TerminusModule.forRoot({ logger: false }),
      ],
      controllers: [ReportsController],
      providers: [PgPoolHealthIndicator],
    });
    const http = () => request(app.getHttpServer());
    const primaryPort = Number((await registry.get('default').query<{ port: string }>("SELECT current_setting('port') AS port")).rows[0].port);
    try {
      expect((await http().get('/report').expect(200)).body).toEqual({ port: replica.port });

      await replica.stop();
      await eventually('reads fall back to the primary', async () => (await http().get('/report')).body.port === primaryPort, 15_000);
      const health = await http().get('/health').expect(503);
      expect(health.body.details.primary.status).toBe('up');
      expect(health.body.details.replica.status).toBe('down');

      await replica.start();
      await eventually('reads go to the replica again', async () => (await http().get('/report')).body.port === replica.port, 15_000);
      await http().get('/health').expect(200);
    } finally {
      await close();
      await replica.destroy();
    }
  });
});
