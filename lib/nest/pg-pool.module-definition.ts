import { ConfigurableModuleBuilder } from '@nestjs/common';
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
  OPTIONS_TYPE: PG_POOL_OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE: PG_POOL_ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<PgPoolModuleOptions>({ moduleName: 'PgPool' })
  .setClassMethodName('forRoot')
  .setFactoryMethodName('createPgPoolOptions')
  .setExtras({ name: DEFAULT_POOL_NAME }, (definition) => definition)
  .build();

export type PgPoolForRootOptions = typeof PG_POOL_OPTIONS_TYPE;
export type PgPoolForRootAsyncOptions = typeof PG_POOL_ASYNC_OPTIONS_TYPE;
