import { Module, type DynamicModule } from '@nestjs/common';
import { DEFAULT_POOL_NAME } from './pg-pool.constants.js';
import {
  ConfigurablePgPoolCoreModule,
  PG_POOL_MODULE_OPTIONS,
  type PgPoolForRootAsyncOptions,
  type PgPoolForRootOptions,
} from './pg-pool.module-definition.js';
import type { PgPoolModuleOptions } from './pg-pool-module-options.js';
import { PgPoolRegistry } from './pg-pool.registry.js';
import { PgPoolSharedModule } from './pg-pool-shared.module.js';
import { getPoolToken } from './pg-pool.utils.js';

/**
 * One pool: its options provider (from ConfigurableModuleBuilder) and the pool provider,
 * global so that `@InjectPool(name)` works in every module. The pool is created and
 * opened by the registry when Nest resolves the provider, which fails the bootstrap
 * when `failFast` and the database cannot be reached.
 */
@Module({ imports: [PgPoolSharedModule] })
export class PgPoolCoreModule extends ConfigurablePgPoolCoreModule {
  static override forRoot(options: PgPoolForRootOptions): DynamicModule {
    return withPoolProvider(super.forRoot(options), options.name ?? DEFAULT_POOL_NAME);
  }

  static override forRootAsync(options: PgPoolForRootAsyncOptions): DynamicModule {
    return withPoolProvider(super.forRootAsync(options), options.name ?? DEFAULT_POOL_NAME);
  }
}

function withPoolProvider(definition: DynamicModule, name: string): DynamicModule {
  const token = getPoolToken(name);
  return {
    ...definition,
    global: true,
    providers: [
      ...(definition.providers ?? []),
      {
        provide: token,
        useFactory: (options: PgPoolModuleOptions, registry: PgPoolRegistry) => registry.create(name, options),
        inject: [PG_POOL_MODULE_OPTIONS, PgPoolRegistry],
      },
    ],
    exports: [token],
  };
}
