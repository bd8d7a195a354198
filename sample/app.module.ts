import { Module, type OnApplicationBootstrap } from '@nestjs/common';
import { ConfigModule, ConfigService } from '@nestjs/config';
import type { PgPool } from 'nestjs-pg-pool';
import { InjectPool, PgPoolModule } from 'nestjs-pg-pool/nest';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics.controller.js';
import { NotesModule } from './notes/notes.module.js';
import { PoolStatsController } from './pool-stats.controller.js';
import { createSchema } from './schema.js';

/**
 * The sample application: notes over one pool configured from the environment
 * (`DATABASE_URL`) through `@nestjs/config`, a readiness probe, the pool's stats and
 * Prometheus metrics.
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
})
export class AppModule implements OnApplicationBootstrap {
  constructor(@InjectPool() private readonly pool: PgPool) {}

  async onApplicationBootstrap(): Promise<void> {
    await createSchema(this.pool);
  }
}
