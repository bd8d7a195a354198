import { BadRequestException, Body, Controller, Get, Injectable, Post } from '@nestjs/common';
import { TerminusModule } from '@nestjs/terminus';
import type { Request } from 'express';
import request from 'supertest';
import { TenantPools, type PooledClient } from '../../lib/index.js';
import { Conn, currentConnection, PgPoolHealthIndicator, PgPoolModule, PgPoolRegistry, UseConnection } from '../../lib/nest/index.js';
import { adminQuery, eventually, testUrl, testUrlWithAppName, uniqueAppName } from '../support/database.js';
import { startApp, type TestApp } from '../support/nest-app.js';

const PREFIX = `nest_tenant_${process.pid}_`;
const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark'];
const appName = uniqueAppName();

/** The tenant of a request: its `x-tenant` header; a request without one is refused with 400. */
function tenantOf(req: Request): string {
  const tenant = req.header('x-tenant');
  if (!tenant) throw new BadRequestException('the x-tenant header is required');
  return tenant;
}

@Injectable()
class NotesService {
  async add(text: string): Promise<void> {
    await currentConnection().query('INSERT INTO notes (text) VALUES ($1)', [text]);
  }
}

@Controller('t')
@UseConnection({ pool: tenantOf })
class TenantController {
  constructor(private readonly notes: NotesService) {}

  @Get('whoami')
  async whoami(@Conn() client: PooledClient): Promise<{ db: string; scoped: string }> {
    const db = (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
    const scoped = (await currentConnection().query<{ db: string }>('SELECT current_database() AS db')).rows[0].db;
    return { db, scoped };
  }

  @Post('notes')
  @UseConnection({ pool: tenantOf, transaction: true })
  async add(@Body() body: { text: string; fail?: boolean }): Promise<{ count: number }> {
    await this.notes.add(body.text);
    if (body.fail) throw new BadRequestException('rolled back on purpose');
    const { rows } = await currentConnection().query<{ n: number }>('SELECT count(*)::int AS n FROM notes');
    return { count: rows[0].n };
  }

  @Get('setting')
  @UseConnection<Request>({ pool: tenantOf, transaction: true, settings: { 'app.tenant_id': (req) => req.header('x-tenant'), 'app.source': 'header' } })
  async setting(@Conn() client: PooledClient): Promise<unknown> {
    return (await client.query("SELECT current_setting('app.tenant_id') AS tenant, current_setting('app.source') AS source")).rows[0];
  }

  @Get('count')
  async count(@Conn() client: PooledClient): Promise<{ count: number }> {
    return { count: (await client.query<{ n: number }>('SELECT count(*)::int AS n FROM notes')).rows[0].n };
  }
}

@Controller('health')
class HealthController {
  constructor(private readonly health: PgPoolHealthIndicator) {}

  @Get()
  tenants(): Promise<unknown> {
    return this.health.isTenantPoolsHealthy('tenants');
  }
}

let app: TestApp;

async function ourSessions(): Promise<number> {
  const rows = await adminQuery<{ n: string }>('SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = $1', [appName]);
  return Number(rows[0].n);
}

beforeAll(async () => {
  await adminQuery(`CREATE DATABASE ${PREFIX}template`);
  const template = new URL(testUrl());
  template.pathname = `/${PREFIX}template`;
  const { Client } = (await import('pg')).default;
  const client = new Client(template.toString());
  await client.connect();
  await client.query('CREATE TABLE notes (id serial PRIMARY KEY, text text NOT NULL)');
  await client.end();
  await Promise.all(TENANTS.map((tenant) => adminQuery(`CREATE DATABASE ${PREFIX}${tenant} TEMPLATE ${PREFIX}template`)));

  app = await startApp({
    imports: [
      TerminusModule,
      PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1, max: 2 }),
      PgPoolModule.forTenantsAsync({
        useFactory: () => ({
          resolve: (tenant: string) => TENANTS.includes(tenant) || tenant === 'missing'
            ? {
              connectionString: testUrl(), connection: { database: `${PREFIX}${tenant}`, application_name: appName },
              max: 2, unavailableTimeoutMs: 500, reconnectDelayMs: 200,
            }
            : undefined,
          maxPools: 4,
          connectionBudget: 3,
        }),
      }),
    ],
    controllers: [TenantController, HealthController],
    providers: [NotesService, PgPoolHealthIndicator],
  });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await Promise.all([...TENANTS, 'template'].map((tenant) => adminQuery(`DROP DATABASE IF EXISTS ${PREFIX}${tenant} WITH (FORCE)`)));
});

describe('@UseConnection with a pool picked per request (PgPoolModule.forTenants)', () => {
  it("serves each request from its tenant's database, in @Conn() and currentConnection()", async () => {
    for (const tenant of TENANTS) {
      const response = await request(app.app.getHttpServer()).get('/t/whoami').set('x-tenant', tenant).expect(200);
      expect(response.body).toEqual({ db: `${PREFIX}${tenant}`, scoped: `${PREFIX}${tenant}` });
    }
    // Six tenants served, four pools at most: the least recently used were closed.
    const tenants = app.app.get(TenantPools);
    expect(tenants.size).toBeLessThanOrEqual(4);
    expect(tenants.ids()).toEqual(expect.arrayContaining(['hooli', 'stark']));
  });

  it('commits and rolls back in the tenant database, and never writes to another', async () => {
    const http = request(app.app.getHttpServer());
    await http.post('/t/notes').set('x-tenant', 'acme').send({ text: 'kept' }).expect(201);
    await http.post('/t/notes').set('x-tenant', 'acme').send({ text: 'dropped', fail: true }).expect(400);
    expect((await http.get('/t/count').set('x-tenant', 'acme').expect(200)).body).toEqual({ count: 1 });
    expect((await http.get('/t/count').set('x-tenant', 'globex').expect(200)).body).toEqual({ count: 0 });
  });

  it('answers 400 without a tenant, 404 for an unknown one, 503 for one whose database fails', async () => {
    const http = request(app.app.getHttpServer());
    await http.get('/t/whoami').expect(400);
    const unknown = await http.get('/t/whoami').set('x-tenant', 'nobody').expect(404);
    expect(unknown.body).toEqual({ statusCode: 404, error: 'Not Found', message: 'no such database id', pool: 'nobody' });
    const failing = await http.get('/t/whoami').set('x-tenant', 'missing').expect(503);
    expect(failing.body).toMatchObject({ statusCode: 503, pool: 'missing' });
    expect(failing.headers['retry-after']).toBeDefined();
    // The others are served all the while.
    await http.get('/t/whoami').set('x-tenant', 'initech').expect(200);
    const health = await http.get('/health').expect(200);
    expect(health.body).toMatchObject({ tenants: { status: 'up', maxPools: 4, failing: ['missing'], failingCount: 1, budget: { max: 3 } } });
    // With maxFailing set, enough failing tenants take the entry down.
    const indicator = app.app.get(PgPoolHealthIndicator);
    expect(await indicator.isTenantPoolsHealthy('tenants', { maxFailing: 0 })).toMatchObject({
      tenants: { status: 'down', failingCount: 1, message: '1 tenant pools are failing (more than 0)' },
    });
    await app.app.get(TenantPools).evict('missing');
  });

  it('keeps the server within the budget under concurrent requests for every tenant', async () => {
    const http = request(app.app.getHttpServer());
    let peak = 0;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) peak = Math.max(peak, await ourSessions());
    })();
    const responses = await Promise.all(Array.from({ length: 60 }, (_, i) =>
      http.get('/t/whoami').set('x-tenant', TENANTS[i % TENANTS.length])));
    sampling = false;
    await sampler;
    expect(responses.map((r) => r.status)).toEqual(responses.map(() => 200));
    expect(responses.every((r, i) => r.body.db === `${PREFIX}${TENANTS[i % TENANTS.length]}`)).toBe(true);
    expect(peak).toBeLessThanOrEqual(3);
    expect(app.registry.pools().length).toBeLessThanOrEqual(1 + 4);
  });

  it('applies per-request settings to the transaction alone, and refuses settings without a transaction', async () => {
    const http = request(app.app.getHttpServer());
    expect((await http.get('/t/setting').set('x-tenant', 'acme').expect(200)).body).toEqual({ tenant: 'acme', source: 'header' });
    const after = await (await app.registry.getOrCreate('acme')).query("SELECT nullif(current_setting('app.tenant_id', true), '') AS tenant");
    expect(after.rows[0].tenant).toBeNull();
    expect(() => UseConnection({ settings: { 'app.tenant_id': '1' } })).toThrow(/add `transaction: true`/);
  });

  it('closes every tenant pool on shutdown', async () => {
    const local = await startApp({
      imports: [PgPoolModule.forTenants({
        resolve: (tenant) => ({ connectionString: testUrl(), connection: { database: `${PREFIX}${tenant}`, application_name: appName } }),
      })],
      controllers: [TenantController],
      providers: [NotesService],
    });
    const registry = local.app.get(PgPoolRegistry);
    const before = await ourSessions();
    await Promise.all(['acme', 'globex'].map(async (tenant) => (await registry.getOrCreate(tenant)).query('SELECT 1')));
    expect(registry.tenants?.ids().sort()).toEqual(['acme', 'globex']);
    await local.close();
    expect(registry.tenants?.size).toBe(0);
    await eventually("the closed app's sessions have left the server", async () => (await ourSessions()) <= before, 5_000);
  });
});

