import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { ApplicationConfig, DiscoveryService } from '@nestjs/core';
import { serveControllers, stopServing } from './handler-binding.js';
import { PgPool, PoolConfigError, TenantPools, UnknownPoolError, type PoolStats, type TenantPoolsOptions } from '../pool/index.js';
import { DEFAULT_POOL_NAME, DEFAULT_SHUTDOWN_TIMEOUT_MS } from './pg-pool.constants.js';
import type { PgPoolModuleOptions } from './pg-pool-module-options.js';
import { PgPoolMaintenanceService } from './pg-pool-maintenance.service.js';

interface RegisteredPool {
  pool: PgPool;
  shutdownTimeoutMs: number;
}

/**
 * Every pool of the application by database id: the seed's "pools manager". The module
 * creates its pools here; an application can add more at run time with `create()`.
 * On application shutdown it drains and closes them all.
 */
@Injectable()
export class PgPoolRegistry implements OnModuleInit, OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('PgPoolModule');
  private readonly registered = new Map<string, RegisteredPool>();
  /** Pools still opening: a bootstrap that fails waits for them before closing all. */
  private readonly opening = new Set<Promise<void>>();
  /** Set once the application has started: a failure after that is one pool's alone. */
  private bootstrapped = false;
  /** With `PgPoolModule.forTenants`: the pools created per database id on first use. */
  private tenantPools: TenantPools | undefined;

  constructor(
    private readonly maintenance: PgPoolMaintenanceService,
    private readonly discovery: DiscoveryService,
    private readonly applicationConfig: ApplicationConfig,
  ) {}

  /**
   * Whether the application has global interceptors (`useGlobalInterceptors`,
   * `APP_INTERCEPTOR`): they may unsubscribe from a handler's result, so `@UseConnection`
   * then hands Nest an Observable it can unsubscribe from.
   */
  hasGlobalInterceptors(): boolean {
    return this.applicationConfig.getGlobalInterceptors().length > 0 || this.applicationConfig.getGlobalRequestInterceptors().length > 0;
  }

  /** `@UseConnection` handlers find this registry on their controller instance. */
  onModuleInit(): void {
    serveControllers(this, this.discovery.getControllers().map((wrapper) => wrapper.instance as unknown));
  }

  /**
   * Creates a pool, registers it under its name, schedules its maintenance and opens it.
   * With `failFast` (the default) it resolves once `min` connections are open, or
   * rejects with the server's reason. During start-up a failure closes every pool
   * registered so far (a bootstrap that fails must not leave connections holding the
   * process open); at run time (a tenant's pool added later) it closes and forgets
   * only the pool that failed.
   */
  async create(name: string, options: PgPoolModuleOptions): Promise<PgPool> {
    if (this.registered.has(name)) {
      throw new PoolConfigError(name, 'a pool with this name is already registered; give each pool a distinct `name`');
    }
    const { failFast = true, openTimeoutMs, shutdownTimeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS, ...poolOptions } = options;
    const pool = new PgPool({ logger: new Logger(`PgPool:${name}`), ...poolOptions, name });
    this.registered.set(name, { pool, shutdownTimeoutMs });
    this.maintenance.schedule(pool);
    const opened = pool.open({ wait: failFast, timeoutMs: openTimeoutMs });
    const tracked = opened.catch(() => undefined);
    this.opening.add(tracked);
    try {
      await opened;
    } catch (error) {
      this.opening.delete(tracked);
      if (this.bootstrapped) {
        this.logger.error(`cannot open pool '${name}': ${(error as Error).message}`);
        await this.close(name);
      } else {
        // Nest's own handler reports a failed bootstrap (with this error): said once.
        await this.abortBootstrap();
      }
      throw error;
    } finally {
      this.opening.delete(tracked);
    }
    this.logger.log(`pool '${name}' ${failFast ? 'open' : 'opening'}: ${pool.target} (min ${pool.options.min}, max ${pool.options.max})`);
    return pool;
  }

  /**
   * Closes every pool because the bootstrap is failing, once those still opening have
   * settled (so their own outcome does not race the real error).
   */
  async abortBootstrap(): Promise<void> {
    await Promise.all(this.opening);
    await Promise.all([this.closeAll(), this.tenantPools?.close()]);
  }

  /**
   * Turns on tenant pools (`PgPoolModule.forTenants` does): pools created per database id
   * on first use, from `resolve(id)`. Once per application.
   */
  enableTenants(options: TenantPoolsOptions): TenantPools {
    if (this.tenantPools) throw new PoolConfigError('tenants', 'PgPoolModule.forTenants is registered twice; register it once');
    const resolve = options.resolve;
    this.tenantPools = new TenantPools({
      logger: new Logger('PgPoolModule'),
      ...options,
      // Each tenant's pool logs through Nest, as a registered pool does, unless told otherwise.
      resolve: async (id) => {
        const config = await resolve(id);
        return config && typeof config === 'object' ? { logger: new Logger(`PgPool:${id}`), ...config } : config;
      },
    });
    return this.tenantPools;
  }

  /** The tenant pools, if `PgPoolModule.forTenants` is registered: per-tenant stats on demand, health, eviction. */
  get tenants(): TenantPools | undefined {
    return this.tenantPools;
  }

  /** The pool registered under this name, or the tenant pool of this id if it is open now. */
  find(name: string): PgPool | undefined {
    return this.registered.get(name)?.pool ?? this.tenantPools?.peek(name);
  }

  /**
   * The pool of this database id: a registered one, or its tenant pool, created on first
   * use (`PgPoolModule.forTenants`). Rejects with `UnknownPoolError` for an id that is
   * neither, saying how ids are resolved.
   */
  async getOrCreate(name: string): Promise<PgPool> {
    const found = this.find(name);
    if (found) return found;
    if (!this.tenantPools) return this.get(name);
    try {
      return await this.tenantPools.get(name);
    } catch (error) {
      if (error instanceof UnknownPoolError) throw this.unknown(name);
      throw error;
    }
  }

  /**
   * The tenant pool of this id, created on first use: never a pool registered with
   * forRoot, whatever the id. What `@UseConnection({ pool: (request) => id })` uses, so
   * that an id taken from a request can only ever reach a tenant's database.
   */
  tenantPool(id: string): PgPool | Promise<PgPool> {
    if (!this.tenantPools) {
      throw new PoolConfigError(id, '@UseConnection: a pool picked per request is a tenant pool; register PgPoolModule.forTenants');
    }
    return this.tenantPools.peek(id) ?? this.tenantPools.get(id).catch((error: unknown) => {
      throw error instanceof UnknownPoolError
        ? new UnknownPoolError(id, `no such tenant: the resolver of PgPoolModule.forTenants returned no options for '${id}'`)
        : error;
    });
  }

  /** The pool registered under this name (or an open tenant pool); a clear error listing the known names otherwise. */
  get(name: string = DEFAULT_POOL_NAME): PgPool {
    const found = this.find(name);
    if (!found) {
      if (this.tenantPools) throw this.unknown(name);
      throw new PoolConfigError(name, `no such pool; registered pools: ${this.ids().map((id) => `'${id}'`).join(', ') || '(none)'}. ` +
        'Register it with PgPoolModule.forRoot({ name, ... })');
    }
    return found;
  }

  private unknown(name: string): UnknownPoolError {
    const registered = this.ids().map((id) => `'${id}'`).join(', ') || '(none)';
    return new UnknownPoolError(name, `no such database id. Ids resolve as: the pools registered with forRoot (${registered}), ` +
      `then the tenant resolver of PgPoolModule.forTenants, which returned no options for '${name}'`);
  }

  /** Whether a pool is registered under this name. */
  has(name: string): boolean {
    return this.registered.has(name);
  }

  /**
   * Every pool open now: the registered ones, then the tenant pools. What to hand the
   * metrics exporters (`registerPrometheusMetrics(() => registry.pools())`).
   */
  pools(): PgPool[] {
    return [...[...this.registered.values()].map((entry) => entry.pool), ...(this.tenantPools?.pools() ?? [])];
  }

  /** The registered database ids. */
  ids(): string[] {
    return [...this.registered.keys()];
  }

  /** Every pool's stats, by name. */
  stats(): Record<string, PoolStats> {
    const all: Record<string, PoolStats> = {};
    for (const [name, { pool }] of this.registered) all[name] = pool.getStats();
    return all;
  }

  /** Closes one pool and forgets it. */
  async close(name: string): Promise<void> {
    const entry = this.registered.get(name);
    if (!entry) return;
    this.registered.delete(name);
    this.maintenance.unschedule(name);
    await entry.pool.close({ timeoutMs: entry.shutdownTimeoutMs });
  }

  /** Closes every pool: each waits up to its `shutdownTimeoutMs` for checked-out clients. */
  async closeAll(): Promise<void> {
    await Promise.all(this.ids().map((name) => this.close(name)));
  }

  /** Nest's bootstrap hook: from now on, a pool that fails to open fails alone. */
  onApplicationBootstrap(): void {
    this.bootstrapped = true;
  }

  /** Nest's shutdown hook: drains and closes every pool. */
  async onApplicationShutdown(): Promise<void> {
    stopServing(this);
    await Promise.all([this.closeAll(), this.tenantPools?.close()]);
  }
}
