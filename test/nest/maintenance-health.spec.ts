import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import request from 'supertest';
import { PgPoolHealthIndicator, PgPoolMaintenanceService, PgPoolModule } from '../../lib/nest/index.js';
import { parseIntoClientConfig } from 'pg-connection-string';
import { eventually, testPassword, testUrl, testUrlWithAppName } from '../support/database.js';
import { FaultProxy } from '../support/fault-proxy.js';
import { startApp } from '../support/nest-app.js';
import { PostgresServer } from '../support/postgres-server.js';
import { TEST_PASSWORD } from '../support/test-secrets.js';

@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly database: PgPoolHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([() => this.database.isHealthy('database', { timeoutMs: 500 })]);
  }

  @Get('missing')
  @HealthCheck()
  missing(): Promise<HealthCheckResult> {
    return this.health.check([() => this.database.isHealthy('other', { pool: 'nope' })]);
  }
}

const healthModule = { imports: [TerminusModule.forRoot({ logger: false })], controllers: [HealthController], providers: [PgPoolHealthIndicator] };

describe('PgPoolMaintenanceService', () => {
  it('schedules every pool, runs passes on demand, logs what they did at debug level, and stops on shutdown', async () => {
    const { app, logger, close } = await startApp({
      imports: [PgPoolModule.forRoot([
        { connectionString: testUrlWithAppName(), min: 1, max: 2, maxLifetimeMs: 60 },
        { name: 'quiet', connectionString: testUrlWithAppName(), min: 1 },
      ])],
    });
    const maintenance = app.get(PgPoolMaintenanceService);
    try {
      expect(maintenance.names().sort()).toEqual(['default', 'quiet']);
      await eventually('a scheduled pass expired a connection of the default pool',
        () => logger.lines.some((l) => l.level === 'debug' && l.context === 'PgPool:default' && /^pool 'default': maintenance expired [1-9]/.test(l.message)));
      const runs = await maintenance.runNow();
      expect(Object.keys(runs).sort()).toEqual(['default', 'quiet']);
      expect(runs.quiet).toMatchObject({ expired: 0, shrunk: 0 });
      expect(maintenance.lastRun('quiet')).toBe(runs.quiet);
      await expect(maintenance.runNow('nope')).rejects.toThrow(/no pool named 'nope' is scheduled; scheduled pools: default,quiet/);
    } finally {
      await close();
    }
    expect(maintenance.names()).toEqual([]);
  });
});

describe('PgPoolHealthIndicator', () => {
  it('reports up with the pool stats, and never the connection string or password', async () => {
    const { app, close } = await startApp({ imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1 }), healthModule.imports[0]], controllers: healthModule.controllers, providers: healthModule.providers });
    try {
      const { body, text } = await request(app.getHttpServer()).get('/health').expect(200);
      expect(body.status).toBe('ok');
      expect(body.details.database).toMatchObject({ status: 'up', pool: 'default', poolMin: 1, requestsNum: expect.any(Number) });
      expect(text).not.toContain(testPassword());
      expect(text).not.toContain(encodeURIComponent(testPassword()));
      expect(text).not.toContain('postgresql://');
      const missing = await request(app.getHttpServer()).get('/health/missing').expect(503);
      expect(missing.body.details.other).toMatchObject({ status: 'down', message: "no pool named 'nope'; registered: default" });
    } finally {
      await close();
    }
  });

  it('reports down within its timeout when no connection is free', async () => {
    const { app, registry, close } = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1, max: 1 }), healthModule.imports[0]],
      controllers: healthModule.controllers, providers: healthModule.providers,
    });
    const held = await registry.get().acquire();
    try {
      const startedAt = Date.now();
      const { body } = await request(app.getHttpServer()).get('/health').expect(503);
      expect(Date.now() - startedAt).toBeLessThan(5_000);
      expect(body.details.database.status).toBe('down');
      expect(body.details.database.message).toMatch(/no connection available within 500 ms|timeout of 500ms exceeded/);
    } finally {
      held.release();
      await close();
    }
  });

  it('reports down within its timeout when the server is black-holed', async () => {
    const config = parseIntoClientConfig(testUrl());
    const proxy = await FaultProxy.start({ host: String(config.host), port: Number(config.port) });
    const { app, close } = await startApp({
      imports: [PgPoolModule.forRoot({
        connectionString: testUrlWithAppName(), connection: { host: '127.0.0.1', port: proxy.port }, min: 1, connectTimeoutMs: 2_000,
      }), healthModule.imports[0]],
      controllers: healthModule.controllers, providers: healthModule.providers,
    });
    try {
      await request(app.getHttpServer()).get('/health').expect(200);
      await proxy.setMode('blackhole');
      const startedAt = Date.now();
      const { body } = await request(app.getHttpServer()).get('/health').expect(503);
      expect(Date.now() - startedAt).toBeLessThan(3_000);
      expect(body.details.database).toMatchObject({ status: 'down', message: 'timeout of 500ms exceeded' });
    } finally {
      await proxy.close();
      await close();
    }
  });

  it('goes down while the database is stopped and up again once it is back', async () => {
    const server = await PostgresServer.create({ password: TEST_PASSWORD });
    await server.start();
    const { app, close } = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: server.url(), min: 1, reconnectDelayMs: 50, reconnectMaxDelayMs: 200 }), healthModule.imports[0]],
      controllers: healthModule.controllers, providers: healthModule.providers,
    });
    try {
      const probe = async (): Promise<number> => (await request(app.getHttpServer()).get('/health')).status;
      expect(await probe()).toBe(200);
      await server.stop();
      await eventually('the probe reports down', async () => (await probe()) === 503);
      const { body } = await request(app.getHttpServer()).get('/health').expect(503);
      expect(body.details.database.message).not.toContain(TEST_PASSWORD);
      await server.start();
      await eventually('the probe reports up again', async () => (await probe()) === 200, 15_000);
    } finally {
      await close();
      await server.destroy();
    }
  });
});
