import { Controller, Get, Header, Inject, Module } from '@nestjs/common';
import { PgPoolRegistry } from 'nestjs-pg-pool/nest';
import { registerPrometheusMetrics } from 'nestjs-pg-pool/prometheus';
import { Registry } from 'prom-client';

const METRICS_REGISTRY = 'METRICS_REGISTRY';

/** Prometheus' scrape endpoint: every pool's stats as `pg_pool_*{pool="…"}`. */
@Controller('metrics')
export class MetricsController {
  constructor(@Inject(METRICS_REGISTRY) private readonly registry: Registry) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4')
  metrics(): Promise<string> {
    return this.registry.metrics();
  }
}

@Module({
  controllers: [MetricsController],
  providers: [{
    provide: METRICS_REGISTRY,
    inject: [PgPoolRegistry],
    // A registry of the app's own (not prom-client's global one), read at each scrape.
    useFactory: (pools: PgPoolRegistry) => {
      const registry = new Registry();
      registerPrometheusMetrics(() => pools.ids().map((id) => pools.get(id)), { registry });
      return registry;
    },
  }],
})
export class MetricsModule {}
