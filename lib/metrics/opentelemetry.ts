import { metrics, type Meter } from '@opentelemetry/api';
import { COUNTERS, GAUGES, HELP, metricName, poolsOf, type PoolSource } from './pool-source.js';

/** Which meter the OpenTelemetry instruments are created on, and their names. */
export interface OpenTelemetryMetricsOptions {
  /** The meter to create the instruments on; default `metrics.getMeter('nestjs-pg-pool')`. */
  meter?: Meter;
  /** Instrument name prefix. Default `pg_pool_`. */
  prefix?: string;
}

/**
 * Exposes every pool's stats through the OpenTelemetry metrics API as observable gauges
 * and counters with a `pool` attribute, read at each collection. Import it from
 * 'nestjs-pg-pool/opentelemetry', which alone needs `@opentelemetry/api` installed; the
 * SDK and exporter are the application's choice.
 */
export function registerOpenTelemetryMetrics(pools: PoolSource, options: OpenTelemetryMetricsOptions = {}): void {
  const meter = options.meter ?? metrics.getMeter('nestjs-pg-pool');
  const prefix = options.prefix ?? 'pg_pool_';
  for (const stat of GAUGES) {
    meter.createObservableGauge(metricName(stat, prefix), { description: HELP[stat] }).addCallback((result) => {
      for (const pool of poolsOf(pools)) result.observe(pool.getStats()[stat], { pool: pool.name });
    });
  }
  for (const stat of COUNTERS) {
    meter.createObservableCounter(metricName(stat, prefix), { description: HELP[stat] }).addCallback((result) => {
      for (const pool of poolsOf(pools)) result.observe(pool.getStats()[stat], { pool: pool.name });
    });
  }
}
