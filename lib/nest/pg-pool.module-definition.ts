import { ConfigurableModuleBuilder, type ConfigurableModuleAsyncOptions } from '@nestjs/common';
import { DEFAULT_POOL_NAME } from './pg-pool.constants.js';
import type { PgPoolModuleOptions } from './pg-pool-module-options.js';

/**
 * Nest's ConfigurableModuleBuilder gives forRoot/forRootAsync (useFactory, useClass,
 * useExisting, inject, imports) and the options provider. `name` is an extra: it must
 * be known when the module is defined, since the pool's injection token is made from it.
 * The core module adds the pool provider itself (see PgPoolCoreModule).
 */
export const {
  ConfigurableModuleClass: ConfigurablePgPoolCoreModule,
  MODULE_OPTIONS_TOKEN: PG_POOL_MODULE_OPTIONS,
} = new ConfigurableModuleBuilder<PgPoolModuleOptions>({ moduleName: 'PgPool' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createPgPoolOptions')
  .setExtras({ name: DEFAULT_POOL_NAME }, (definition) => definition)
  .build();

/** `PgPoolModule.forRoot` options: `PgPoolModuleOptions` with its `name`. */
export type PgPoolForRootOptions = PgPoolModuleOptions & PoolName;

/** `PgPoolModule.forRootAsync` options: `name`, `imports`, `inject` and `useFactory`, `useClass` or `useExisting`. */
export type PgPoolForRootAsyncOptions = ConfigurableModuleAsyncOptions<PgPoolModuleOptions, 'createPgPoolOptions'> & PoolName;

/** The database id a module registers its pool under. */
export interface PoolName {
  /** Default `'default'`; the pool's injection token is `getPoolToken(name)`. */
  name?: string;
}
