import { BadRequestException, Controller, Get } from '@nestjs/common';
import type { Request } from 'express';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { TenantPools, type PooledClient } from '../../lib/index.js';
import { Conn, PgPoolModule, UseConnection } from '../../lib/nest/index.js';
import { adminQuery, eventually, testUrl, testUrlWithAppName, uniqueAppName } from '../support/database.js';
import { startApp, type TestApp } from '../support/nest-app.js';

const PREFIX = `r18_tenant_${process.pid}_`;
const appName = uniqueAppName();

/** The README's selector, verbatim. */
const TENANT_ID = /^[a-z][a-z0-9_]{0,30}$/;
function tenantOf(req: Request): string {
  const tenant = req.header('x-tenant') ?? '';
  if (!TENANT_ID.test(tenant)) throw new BadRequestException('a valid x-tenant header is required');
  return tenant;
}

/** Resolution of the tenants in this file can be held, to act while a pool is being created. */
let gate: Promise<void> = Promise.resolve();

@Controller('t')
@UseConnection({ pool: async (req: Request) => tenantOf(req) })
class TenantController {
  @Get('whoami')
  async whoami(@Conn() client: PooledClient): Promise<{ db: string }> {
    return (await client.query<{ db: string }>('SELECT current_database() AS db')).rows[0];
  }
}

let app: TestApp;

beforeAll(async () => {
  await Promise.all(['acme', 'globex'].map((tenant) => adminQuery(`CREATE DATABASE ${PREFIX}${tenant}`)));
  app = await startApp({
    imports: [
      // The catalogue, as in the README: registered with forRoot under the name 'default'.
      PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1, max: 2 }),
      PgPoolModule.forTenants({
        resolve: async (tenant) => {
          await gate;
          return { connectionString: testUrl(), connection: { database: `${PREFIX}${tenant}`, application_name: appName }, max: 2 };
        },
        maxPools: 4,
        connectionBudget: 3,
      }),
    ],
    controllers: [TenantController],
  });
}, 60_000);

afterAll(async () => {
  await app?.close();
  await Promise.all(['acme', 'globex'].map((tenant) => adminQuery(`DROP DATABASE IF EXISTS ${PREFIX}${tenant} WITH (FORCE)`)));
});

describe('tenants through Nest', () => {
  it('never serves a tenant request from the catalogue: x-tenant "default" is a tenant id like any other', async () => {
    // The README's TENANT_ID pattern accepts "default"; the registry looks registered pools up
    // first, so the request runs on the catalogue pool (forRoot's), not on tenant_default.
    const response = await request(app.app.getHttpServer()).get('/t/whoami').set('x-tenant', 'default');
    const catalogue = new URL(testUrl()).pathname.slice(1);
    expect({ status: response.status, db: response.body.db }).not.toEqual({ status: 200, db: catalogue });
  });

  it('leaks no connection when the client aborts while its tenant pool is being created', async () => {
    let open!: () => void;
    gate = new Promise<void>((resolve) => { open = resolve; });
    const server = app.app.getHttpServer() as http.Server;
    if (!server.listening) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const req = http.get({ port, host: '127.0.0.1', path: '/t/whoami', headers: { 'x-tenant': 'globex' } });
    req.on('error', () => undefined);
    await eventually('the request is in', () => true);
    await new Promise((resolve) => setTimeout(resolve, 100));
    req.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    open();
    gate = Promise.resolve();
    const tenants = app.app.get(TenantPools);
    await eventually('the pool is created', () => tenants.ids().includes('globex'));
    await new Promise((resolve) => setTimeout(resolve, 200));
    const pool = tenants.pools().find((p) => p.name === 'globex');
    expect(pool?.checkedOutCount).toBe(0);
    expect(pool?.getStats().requestsWaiting).toBe(0);
  });

  it('answers a request whose tenant pool is being created at shutdown (200 or 503, never 500)', async () => {
    const local = await startApp({
      imports: [PgPoolModule.forTenants({
        resolve: async (tenant) => {
          await new Promise((resolve) => setTimeout(resolve, 300));
          return { connectionString: testUrl(), connection: { database: `${PREFIX}${tenant}`, application_name: appName } };
        },
      })],
      controllers: [TenantController],
    });
    const server = local.app.getHttpServer() as http.Server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const status = new Promise<number>((resolve, reject) => {
      http.get({ port, host: '127.0.0.1', path: '/t/whoami', headers: { 'x-tenant': 'acme' } }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      }).on('error', reject);
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Shutdown starts while the tenant's pool is being created (the resolver is slow).
    const closing = local.close();
    const code = await status;
    await closing;
    // Held up: Nest closes the HTTP server before the shutdown hooks, so the request is served.
    expect([200, 503]).toContain(code);
  });
});
