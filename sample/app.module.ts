import { Module, ValidationPipe, type OnApplicationBootstrap } from '@nestjs/common';
import { APP_FILTER, APP_PIPE } from '@nestjs/core';
import { ConfigModule, ConfigService } from '@nestjs/config';
import type { PgPool } from 'nestjs-pg-pool';
import { InjectPool, PgPoolModule } from 'nestjs-pg-pool/nest';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics.controller.js';
import { NotesModule } from './notes/notes.module.js';
import { PoolStatsController } from './pool-stats.controller.js';
import { createSchema } from './schema.js';
import { DatabaseErrorFilter } from './database-error.filter.js';

/**
 * The sample application: notes over one pool configured from the environment
 * (`DATABASE_URL`) through `@nestjs/config`, a readiness probe, the pool's stats and
 * Prometheus metrics; request bodies validated, database errors a request caused answered 4xx.
 */
@Module({
  imports: [
    ConfigModule.forRoot({ ignoreEnvFile: true }),
    PgPoolModule.forRootAsync({
      name: 'default',
      imports: [ConfigModule],
      inject: [ConfigService],
      useFactory: (config: ConfigService) => ({
        connectionString: config.getOrThrow<string>('DATABASE_URL'),
        min: 2,
        max: 10,
        acquireTimeoutMs: 5_000,
        checkOnAcquire: false,
        keepaliveIntervalMs: 30_000,
      }),
    }),
    NotesModule,
    HealthModule,
    MetricsModule,
  ],
  controllers: [PoolStatsController],
  providers: [
    // Request bodies checked against their DTO classes: a bad one is a 400 saying what is wrong.
    { provide: APP_PIPE, useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, stopAtFirstError: true }) },
    { provide: APP_FILTER, useClass: DatabaseErrorFilter },
  ],
})
export class AppModule implements OnApplicationBootstrap {
  constructor(@InjectPool() private readonly pool: PgPool) {}

  async onApplicationBootstrap(): Promise<void> {
    await createSchema(this.pool);
  }
}
