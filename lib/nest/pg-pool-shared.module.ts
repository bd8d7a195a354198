import { Global, Module } from '@nestjs/common';
import { APP_FILTER, DiscoveryModule } from '@nestjs/core';
import { PgConnectionInterceptor } from './pg-connection.interceptor.js';
import { PgPoolExceptionFilter } from './pg-pool-exception.filter.js';
import { PgPoolMaintenanceService } from './pg-pool-maintenance.service.js';
import { PgPoolRegistry } from './pg-pool.registry.js';

/**
 * What every pool shares, once per application: the registry, the maintenance service,
 * the interceptor and the 503 filter. A static module, so that the many core modules
 * (one per pool) import the same single instance.
 */
@Global()
@Module({
  imports: [DiscoveryModule],
  providers: [
    PgPoolRegistry,
    PgPoolMaintenanceService,
    PgConnectionInterceptor,
    { provide: APP_FILTER, useClass: PgPoolExceptionFilter },
  ],
  exports: [PgPoolRegistry, PgPoolMaintenanceService, PgConnectionInterceptor],
})
export class PgPoolSharedModule {}
