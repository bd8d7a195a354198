import { Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService } from '@nestjs/core';
import { serveControllers, stopServing } from './handler-binding.js';
import { PgPool, PoolConfigError, type PoolStats } from '../pool/index.js';
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
  private readonly pools = new Map<string, RegisteredPool>();
  /** Pools still opening: a bootstrap that fails waits for them before closing all. */
  private readonly opening = new Set<Promise<void>>();
  /** Set once the application has started: a failure after that is one pool's alone. */
  private bootstrapped = false;

  constructor(private readonly maintenance: PgPoolMaintenanceService, private readonly discovery: DiscoveryService) {}

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
    if (this.pools.has(name)) {
      throw new PoolConfigError(name, 'a pool with this name is already registered; give each pool a distinct `name`');
    }
    const { failFast = true, openTimeoutMs, shutdownTimeoutMs = DEFAULT_SHUTDOWN_TIMEOUT_MS, ...poolOptions } = options;
    const pool = new PgPool({ logger: new Logger(`PgPool:${name}`), ...poolOptions, name });
    this.pools.set(name, { pool, shutdownTimeoutMs });
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
    await this.closeAll();
  }

  /** The pool registered under this name; a clear error listing the known names otherwise. */
  get(name: string = DEFAULT_POOL_NAME): PgPool {
    const entry = this.pools.get(name);
    if (!entry) {
      throw new PoolConfigError(name, `no such pool; registered pools: ${this.ids().map((id) => `'${id}'`).join(', ') || '(none)'}. ` +
        'Register it with PgPoolModule.forRoot({ name, ... })');
    }
    return entry.pool;
  }

  /** Whether a pool is registered under this name. */
  has(name: string): boolean {
    return this.pools.has(name);
  }

  /** The registered database ids. */
  ids(): string[] {
    return [...this.pools.keys()];
  }

  /** Every pool's stats, by name. */
  stats(): Record<string, PoolStats> {
    const all: Record<string, PoolStats> = {};
    for (const [name, { pool }] of this.pools) all[name] = pool.getStats();
    return all;
  }

  /** Closes one pool and forgets it. */
  async close(name: string): Promise<void> {
    const entry = this.pools.get(name);
    if (!entry) return;
    this.pools.delete(name);
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
    await this.closeAll();
  }
}
