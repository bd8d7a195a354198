import { Module, type DynamicModule } from '@nestjs/common';
import { TenantPools } from '../pool/index.js';
import { PgPoolRegistry } from './pg-pool.registry.js';
import { PgPoolSharedModule } from './pg-pool-shared.module.js';
import {
  ConfigurablePgTenantPoolsModule,
  PG_TENANT_POOLS_OPTIONS,
  type PgTenantPoolsAsyncOptions,
  type PgTenantPoolsOptions,
} from './pg-tenant-pools.module-definition.js';

/**
 * Tenant pools for the application: the registry learns how to make a pool for any
 * database id, and `TenantPools` becomes injectable. Global, as the pools are.
 */
@Module({ imports: [PgPoolSharedModule] })
export class PgTenantPoolsModule extends ConfigurablePgTenantPoolsModule {
  static override forTenants(options: PgTenantPoolsOptions): DynamicModule {
    return withTenantPools(super.forTenants(options));
  }

  static override forTenantsAsync(options: PgTenantPoolsAsyncOptions): DynamicModule {
    return withTenantPools(super.forTenantsAsync(options));
  }
}

function withTenantPools(definition: DynamicModule): DynamicModule {
  return {
    ...definition,
    global: true,
    providers: [
      ...(definition.providers ?? []),
      {
        provide: TenantPools,
        useFactory: (options: PgTenantPoolsOptions, registry: PgPoolRegistry) => registry.enableTenants(options),
        inject: [PG_TENANT_POOLS_OPTIONS, PgPoolRegistry],
      },
    ],
    exports: [TenantPools],
  };
}
