import { Module, type DynamicModule, type Provider } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import { PgPool, PoolConfigError } from '../pool/index.js';
import { PgPoolCoreModule } from './pg-pool-core.module.js';
import { PgPoolRegistry } from './pg-pool.registry.js';
import { DEFAULT_POOL_NAME } from './pg-pool.constants.js';
import type { PgPoolForRootAsyncOptions, PgPoolForRootOptions } from './pg-pool.module-definition.js';
import { getPoolToken, poolNameOfToken } from './pg-pool.utils.js';
import { PgTenantPoolsModule } from './pg-tenant-pools.module.js';
import type { PgTenantPoolsAsyncOptions, PgTenantPoolsOptions } from './pg-tenant-pools.module-definition.js';

/**
 * The module applications import, a thin facade in the manner of `TypeOrmModule`:
 *
 *     PgPoolModule.forRoot({ connectionString, min: 2, max: 10 })          // pool 'default'
 *     PgPoolModule.forRoot([{ name: 'default', ... }, { name: 'analytics', ... }])
 *     PgPoolModule.forRootAsync({ name, imports, inject, useFactory | useClass | useExisting })
 *     PgPoolModule.forFeature(['default', 'analytics'])                    // in a feature module
 *     PgPoolModule.forTenants({ resolve: (id) => ({ connectionString: urlOf(id) }), connectionBudget: 20 })
 */
@Module({})
export class PgPoolModule {
  /** Registers one pool, or several (an array with distinct names), opened at start-up. */
  static forRoot(options: PgPoolForRootOptions | PgPoolForRootOptions[]): DynamicModule {
    const list = Array.isArray(options) ? options : [options];
    const seen = new Set<string>();
    for (const entry of list) {
      const name = entry.name ?? DEFAULT_POOL_NAME;
      if (seen.has(name)) throw new PoolConfigError(name, 'PgPoolModule.forRoot: two pools have this name; give each a distinct `name`');
      seen.add(name);
    }
    return { module: PgPoolModule, imports: list.map((entry) => PgPoolCoreModule.forRoot(entry)) };
  }

  /** Registers one pool whose options come from a factory, a class or an existing provider. */
  static forRootAsync(options: PgPoolForRootAsyncOptions): DynamicModule {
    return { module: PgPoolModule, imports: [PgPoolCoreModule.forRootAsync(options)] };
  }

  /**
   * A pool per database id, created on first use from `resolve(id)` (a database or a role
   * per tenant): at most `maxPools` open, each closed after `idleCloseMs` unused, all
   * within one `connectionBudget`. `@UseConnection({ pool: (request) => tenantOf(request) })`
   * picks the pool per request; `PgPoolRegistry.getOrCreate(id)` and the injectable
   * `TenantPools` reach them from code. Alongside `forRoot`'s pools, not instead.
   */
  static forTenants(options: PgTenantPoolsOptions): DynamicModule {
    return { module: PgPoolModule, imports: [PgTenantPoolsModule.forTenants(options)] };
  }

  /** `forTenants` with options from a factory, a class or an existing provider (Nest injection). */
  static forTenantsAsync(options: PgTenantPoolsAsyncOptions): DynamicModule {
    return { module: PgPoolModule, imports: [PgTenantPoolsModule.forTenantsAsync(options)] };
  }

  /**
   * Declares the pools a feature module uses. Pools are global, so this adds no new
   * instance; it makes the dependency explicit and fails the bootstrap, naming the pools
   * that do exist, when one of these ids was never registered.
   */
  static forFeature(names: string[] = [DEFAULT_POOL_NAME]): DynamicModule {
    const providers: Provider[] = names.map((name) => ({
      provide: `nestjs-pg-pool:feature:${name}`,
      useFactory: async (pool: PgPool | undefined, modules: ModulesContainer, registry: PgPoolRegistry) => {
        if (pool) return pool;
        // The bootstrap fails here: close what the pools already opened.
        await registry.abortBootstrap();
        throw new PoolConfigError(name, `PgPoolModule.forFeature: no pool '${name}' is registered; ` +
          `registered pools: ${registeredPoolNames(modules).map((id) => `'${id}'`).join(', ') || '(none)'}. ` +
          'Register it with PgPoolModule.forRoot({ name, ... }) or forRootAsync');
      },
      inject: [{ token: getPoolToken(name), optional: true }, ModulesContainer, PgPoolRegistry],
    }));
    return { module: PgPoolModule, providers, exports: providers };
  }
}

/** Every pool token declared in the application, scanned before any pool is created. */
function registeredPoolNames(modules: ModulesContainer): string[] {
  const names = new Set<string>();
  for (const module of modules.values()) {
    for (const token of module.providers.keys()) {
      const name = poolNameOfToken(token);
      if (name !== undefined) names.add(name);
    }
  }
  return [...names].sort();
}
