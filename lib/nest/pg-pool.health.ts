import { Injectable } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { redactConnectionString, type PgPool } from '../pool/index.js';
import { withTimeout } from '../pool/with-timeout.js';
import { DEFAULT_POOL_NAME } from './pg-pool.constants.js';
import { PgPoolRegistry } from './pg-pool.registry.js';

/**
 * Terminus' result shape (`HealthIndicatorResult`), declared here so that this package's
 * typings do not require `@nestjs/terminus` for apps that do not use the indicator.
 */
export type PgPoolHealthResult<Key extends string = string> = Record<Key, PgPoolHealthStatus>;

/** One indicator's entry: up or down, with the pool's stats and, when down, the reason. */
export interface PgPoolHealthStatus extends Record<string, unknown> {
  /** Whether the pool answered `SELECT 1` in time. */
  status: 'up' | 'down';
}

/** The part of terminus' `HealthIndicatorService` the indicator uses. */
interface HealthIndicators {
  check<Key extends string>(key: Key): {
    up(data: Record<string, unknown>): PgPoolHealthResult<Key>;
    down(data: Record<string, unknown>): PgPoolHealthResult<Key>;
  };
}

/** What `PgPoolHealthIndicator.isHealthy` checks, and how long it may take. */
export interface PgPoolHealthCheckOptions {
  /** The database id. Default `'default'`. */
  pool?: string;
  /** How long the check may take, waiting for a connection included. Default 1000. */
  timeoutMs?: number;
}

/**
 * A Terminus health indicator for a pool, on terminus' current API
 * (`HealthIndicatorService.check(key).up/down`): up when a real `SELECT 1` through the
 * pool answers within the timeout, down with the reason otherwise ("timeout of 1000ms
 * exceeded", "cannot connect to host:port/db: ECONNREFUSED"). Its details hold the pool's
 * stats, never a connection string or a password.
 *
 * Provide it in a module that imports `TerminusModule`. `@nestjs/terminus` is loaded only
 * when a check first runs, so apps without it can use the rest of the module.
 */
@Injectable()
export class PgPoolHealthIndicator {
  private healthIndicatorService: HealthIndicators | undefined;

  constructor(
    private readonly registry: PgPoolRegistry,
    private readonly moduleRef: ModuleRef,
  ) {}

  /** Checks the pool with a real `SELECT 1` under the timeout: up with stats, or down with the reason. */
  async isHealthy<const Key extends string>(key: Key, options: PgPoolHealthCheckOptions = {}): Promise<PgPoolHealthResult<Key>> {
    const name = options.pool ?? DEFAULT_POOL_NAME;
    const timeoutMs = options.timeoutMs ?? 1_000;
    const indicator = (await this.healthIndicators()).check(key);
    let pool: PgPool;
    try {
      pool = this.registry.tenants ? await this.registry.getOrCreate(name) : this.registry.get(name);
    } catch (error) {
      if (this.registry.tenants) return indicator.down({ pool: name, message: redactConnectionString((error as Error).message) });
      return indicator.down({ pool: name, message: `no pool named '${name}'; registered: ${this.registry.ids().join(', ')}` });
    }
    try {
      await withTimeout(pool.withConnection((client) => client.query('SELECT 1'), { timeoutMs }), timeoutMs,
        `timeout of ${timeoutMs}ms exceeded`);
      return indicator.up({ pool: name, ...pool.getStats() });
    } catch (error) {
      return indicator.down({ pool: name, message: redactConnectionString((error as Error).message), ...pool.getStats() });
    }
  }

  /**
   * The tenant pools (`PgPoolModule.forTenants`) as a whole, in one entry however many
   * tenants there are: open pools, the connection budget in use, the failing tenants (up
   * to 10 ids, and their count). Up while at most `maxFailing` tenants are failing
   * (default: any number): one tenant's missing database must not take the service out
   * of the load balancer for every other tenant. Check a tenant itself with
   * `isHealthy(key, { pool: tenantId })` (its pool is created if need be).
   */
  async isTenantPoolsHealthy<const Key extends string>(key: Key, options: { maxFailing?: number } = {}): Promise<PgPoolHealthResult<Key>> {
    const indicator = (await this.healthIndicators()).check(key);
    const tenants = this.registry.tenants;
    if (!tenants) return indicator.down({ message: 'no tenant pools: PgPoolModule.forTenants is not registered' });
    const health = tenants.health();
    const maxFailing = options.maxFailing ?? Number.POSITIVE_INFINITY;
    const details = { ...health, budget: health.budget ?? null };
    if (health.failingCount > maxFailing) {
      return indicator.down({ ...details, message: `${health.failingCount} tenant pools are failing (more than ${maxFailing})` });
    }
    return indicator.up(details);
  }

  private async healthIndicators(): Promise<HealthIndicators> {
    if (this.healthIndicatorService) return this.healthIndicatorService;
    const terminus = await import('@nestjs/terminus');
    const service: HealthIndicators = this.moduleRef.get(terminus.HealthIndicatorService, { strict: false });
    this.healthIndicatorService = service;
    return service;
  }
}
