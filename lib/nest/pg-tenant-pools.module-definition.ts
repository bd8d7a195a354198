import { ConfigurableModuleBuilder, type ConfigurableModuleAsyncOptions } from '@nestjs/common';
import type { TenantPoolsOptions } from '../pool/index.js';

/**
 * `PgPoolModule.forTenants` options: the resolver from a database id to its pool's
 * options, and the bounds (`maxPools`, `idleCloseMs`, `connectionBudget`).
 */
export type PgTenantPoolsOptions = TenantPoolsOptions;

/**
 * forTenants/forTenantsAsync come from Nest's ConfigurableModuleBuilder, as forRoot's do:
 * the async form takes `imports`, `inject` and `useFactory`, `useClass` or `useExisting`.
 */
export const {
  ConfigurableModuleClass: ConfigurablePgTenantPoolsModule,
  MODULE_OPTIONS_TOKEN: PG_TENANT_POOLS_OPTIONS,
} = new ConfigurableModuleBuilder<PgTenantPoolsOptions>({ moduleName: 'PgTenantPools' })
  .setClassMethodName('forTenants')
  .setFactoryMethodName('createPgTenantPoolsOptions')
  .build();

/** `PgPoolModule.forTenantsAsync` options. */
export type PgTenantPoolsAsyncOptions = ConfigurableModuleAsyncOptions<PgTenantPoolsOptions, 'createPgTenantPoolsOptions'>;

/** A class that builds the tenant pools' options, for `forTenantsAsync({ useClass | useExisting })`. */
export interface PgTenantPoolsOptionsFactory {
  /** Returns the resolver and bounds; may be async. */
  createPgTenantPoolsOptions(): Promise<PgTenantPoolsOptions> | PgTenantPoolsOptions;
}
