import { Injectable, Module } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import { parseIntoClientConfig } from 'pg-connection-string';
import { PgPool, PoolConfigError, PoolOpenError } from '../../lib/index.js';
import {
  InjectPool,
  PgPoolModule,
  PgPoolRegistry,
  getPoolToken,
  type PgPoolModuleOptions,
  type PgPoolOptionsFactory,
} from '../../lib/nest/index.js';
import { backendCount, eventually, testPassword, testUrl, testUrlWithAppName, uniqueAppName } from '../support/database.js';
import { bootstrapError, startApp } from '../support/nest-app.js';
import { freePort } from '../support/postgres-server.js';

@Injectable()
class UsesPools {
  constructor(
    @InjectPool() readonly main: PgPool,
    @InjectPool('analytics') readonly analytics: PgPool,
  ) {}
}

const wrongPasswordUrl = (): string => {
  const config = parseIntoClientConfig(testUrl());
  return `postgresql://${config.user}:wrong-password@${config.host}:${config.port}/${config.database}`;
};

describe('PgPoolModule.forRoot', () => {
  it('registers one injectable pool per database id, opened at start-up', async () => {
    const { app, registry, close } = await startApp({
      imports: [PgPoolModule.forRoot([
        { connectionString: testUrlWithAppName(), min: 2 },
        { name: 'analytics', connectionString: testUrlWithAppName(), min: 1, max: 3 },
      ])],
      providers: [UsesPools],
    });
    try {
      const service = app.get(UsesPools);
      expect(service.main).toBeInstanceOf(PgPool);
      expect(service.main.name).toBe('default');
      expect(service.analytics.name).toBe('analytics');
      expect(app.get(getPoolToken('analytics'))).toBe(service.analytics);
      expect(registry.ids().sort()).toEqual(['analytics', 'default']);
      expect(service.main.getStats()).toMatchObject({ poolMin: 2, poolAvailable: 2 });
      expect((await service.analytics.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect(Object.keys(registry.stats()).sort()).toEqual(['analytics', 'default']);
    } finally {
      await close();
    }
  });

  it('fails the bootstrap fast, naming the pool and the reason, never the password', async () => {
    const error = await bootstrapError({ imports: [PgPoolModule.forRoot({ name: 'orders', connectionString: wrongPasswordUrl() })] });
    expect(error).toBeInstanceOf(PoolOpenError);
    expect(error.message).toMatch(/^pool 'orders': cannot connect to .*password authentication failed/);
    expect(error.message).not.toContain('wrong-password');
    expect(error.message).not.toContain(testPassword());
  });

  it('closes the pools it had opened when a later pool fails the bootstrap', async () => {
    const goodApp = uniqueAppName();
    const error = await bootstrapError({
      imports: [PgPoolModule.forRoot([
        { name: 'good', connectionString: testUrlWithAppName(goodApp), min: 2 },
        { name: 'bad', connectionString: `postgresql://u:p@127.0.0.1:${await freePort()}/db`, openTimeoutMs: 5_000 },
      ])],
    });
    expect(error.message).toMatch(/^pool 'bad': cannot connect to 127\.0\.0\.1:\d+\/db: .*ECONNREFUSED/);
    await eventually('the good pool has left the server', async () => (await backendCount(goodApp)) === 0);
  });

  it('with failFast: false, starts against an unreachable database and keeps trying', async () => {
    const { registry, close } = await startApp({
      imports: [PgPoolModule.forRoot({
        connectionString: `postgresql://u:p@127.0.0.1:${await freePort()}/db`, failFast: false, min: 1,
        reconnectDelayMs: 20, reconnectMaxDelayMs: 40,
      })],
    });
    try {
      const pool = registry.get();
      expect(pool.state).toBe('open');
      await eventually('it retried', () => pool.getStats().connectionsErrors >= 2);
    } finally {
      await close();
    }
  });

  it('refuses two pools with the same name', () => {
    expect(() => PgPoolModule.forRoot([{ connectionString: testUrl() }, { connectionString: testUrl() }]))
      .toThrow(/^pool 'default': PgPoolModule.forRoot: two pools have this name/);
  });

  it('rejects bad options with a PoolConfigError at bootstrap', async () => {
    const error = await bootstrapError({ imports: [PgPoolModule.forRoot({ connectionString: testUrl(), min: 3, max: 1 })] });
    expect(error).toBeInstanceOf(PoolConfigError);
    expect(error.message).toMatch(/`min` \(3\) must not exceed `max` \(1\)/);
  });
});

describe('PgPoolModule.forRootAsync', () => {
  const url = testUrlWithAppName;

  it('builds the options with useFactory from ConfigService', async () => {
    const { registry, close } = await startApp({
      imports: [
        ConfigModule.forRoot({ ignoreEnvFile: true, load: [() => ({ database: { url: url(), max: 3 } })] }),
        PgPoolModule.forRootAsync({
          name: 'reports',
          imports: [ConfigModule],
          inject: [ConfigService],
          useFactory: (config: ConfigService): PgPoolModuleOptions => ({
            connectionString: config.getOrThrow<string>('database.url'),
            min: 1,
            max: config.getOrThrow<number>('database.max'),
          }),
        }),
      ],
    });
    try {
      expect(registry.get('reports').getStats()).toMatchObject({ poolMax: 3, poolAvailable: 1 });
    } finally {
      await close();
    }
  });

  it('builds the options with useClass and useExisting', async () => {
    @Injectable()
    class PoolConfig implements PgPoolOptionsFactory {
      createPgPoolOptions(): PgPoolModuleOptions {
        return { connectionString: url(), min: 1, max: 2 };
      }
    }
    @Module({ providers: [PoolConfig], exports: [PoolConfig] })
    class PoolConfigModule {}

    const { registry, close } = await startApp({
      imports: [
        PgPoolModule.forRootAsync({ name: 'by-class', useClass: PoolConfig }),
        PgPoolModule.forRootAsync({ name: 'by-existing', imports: [PoolConfigModule], useExisting: PoolConfig }),
      ],
    });
    try {
      expect(registry.get('by-class').getStats().poolMax).toBe(2);
      expect(registry.get('by-existing').getStats().poolMax).toBe(2);
    } finally {
      await close();
    }
  });
});

describe('PgPoolModule.forFeature', () => {
  it('exposes registered pools to a feature module', async () => {
    @Injectable()
    class Feature {
      constructor(@InjectPool('default') readonly pool: PgPool) {}
    }
    @Module({ imports: [PgPoolModule.forFeature(['default'])], providers: [Feature] })
    class FeatureModule {}
    const { app, close } = await startApp({ imports: [PgPoolModule.forRoot({ connectionString: url(), min: 1 }), FeatureModule] });
    try {
      expect(app.get(Feature).pool.name).toBe('default');
    } finally {
      await close();
    }
  });

  it('fails the bootstrap for an unknown id, listing the registered ones, and closes the pools', async () => {
    @Module({ imports: [PgPoolModule.forFeature(['default', 'analytcs'])] })
    class FeatureModule {}
    const appName = uniqueAppName();
    const error = await bootstrapError({
      imports: [
        PgPoolModule.forRoot([{ connectionString: url(), min: 1 }, { name: 'analytics', connectionString: testUrlWithAppName(appName), min: 1 }]),
        FeatureModule,
      ],
    });
    await eventually('the opened pools have left the server', async () => (await backendCount(appName)) === 0);
    expect(error.message).toBe("pool 'analytcs': PgPoolModule.forFeature: no pool 'analytcs' is registered; " +
      "registered pools: 'analytics', 'default'. Register it with PgPoolModule.forRoot({ name, ... }) or forRootAsync");
  });

  function url(): string {
    return testUrlWithAppName();
  }
});

describe('PgPoolRegistry', () => {
  it('creates pools at run time, lists them, and names the known ones for an unknown id', async () => {
    const { app, registry, close } = await startApp({ imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1 })] });
    try {
      expect(app.get(PgPoolRegistry)).toBe(registry);
      const tenant = await registry.create('tenant-42', { connectionString: testUrlWithAppName(), min: 1 });
      expect(registry.get('tenant-42')).toBe(tenant);
      expect(registry.ids().sort()).toEqual(['default', 'tenant-42']);
      expect(() => registry.get('nope')).toThrow("pool 'nope': no such pool; registered pools: 'default', 'tenant-42'");
      await expect(registry.create('tenant-42', { connectionString: testUrl() })).rejects.toThrow(/already registered/);
      await registry.close('tenant-42');
      expect(tenant.state).toBe('closed');
    } finally {
      await close();
    }
  });
});

describe('PgPoolRegistry at run time', () => {
  it('a pool that fails to open at run time fails alone: the app\'s pools stay open and registered', async () => {
    const { registry, close } = await startApp({ imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1 })] });
    try {
      const wrongPassword = testUrlWithAppName().replace(encodeURIComponent(testPassword()), 'wrong-password');
      const error = await registry.create('tenant-7', { connectionString: wrongPassword, min: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(PoolOpenError);
      expect(registry.ids()).toEqual(['default']);
      expect(registry.get('default').state).toBe('open');
      expect((await registry.get('default').query('SELECT 1 AS ok')).rows).toEqual([{ ok: 1 }]);
    } finally {
      await close();
    }
  });
});

describe('shutdown', () => {
  it('waits for checked-out clients up to shutdownTimeoutMs, then closes every pool', async () => {
    const { registry, close } = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 1, shutdownTimeoutMs: 5_000 })],
    });
    const pool = registry.get();
    const client = await pool.acquire();
    let closed = false;
    const closing = close().then(() => { closed = true; });
    await eventually('the pool is draining', () => pool.state === 'closing');
    expect(closed).toBe(false);
    client.release();
    await closing;
    expect(pool.state).toBe('closed');
    expect(registry.ids()).toEqual([]);
  });

  it('leaves no open socket or timer behind after app.close()', async () => {
    const active = (): string[] => (process as unknown as { getActiveResourcesInfo(): string[] }).getActiveResourcesInfo()
      .filter((kind) => kind === 'TCPSocketWrap' || kind === 'Timeout');
    const before = active().length;
    const { close } = await startApp({
      imports: [PgPoolModule.forRoot({ connectionString: testUrlWithAppName(), min: 2, keepaliveIntervalMs: 50 })],
    });
    expect(active().length).toBeGreaterThan(before);
    await close();
    expect(active().length).toBeLessThanOrEqual(before);
  });
});
