import { metrics, type Meter } from '@opentelemetry/api';
import { COUNTERS, DEFAULT_MAX_POOL_LABELS, GAUGES, HELP, metricName, statsByLabel, type PoolSource } from './pool-source.js';

/** Which meter the OpenTelemetry instruments are created on, and their names. */
export interface OpenTelemetryMetricsOptions {
  /** The meter to create the instruments on; default `metrics.getMeter('nestjs-pg-pool')`. */
  meter?: Meter;
  /** Instrument name prefix. Default `pg_pool_`. */
  prefix?: string;
  /** Pools labelled by name at most; the rest are summed under `pool="(other)"`. Default 50. */
  maxPoolLabels?: number;
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
  const maxLabels = options.maxPoolLabels ?? DEFAULT_MAX_POOL_LABELS;
  for (const stat of GAUGES) {
    meter.createObservableGauge(metricName(stat, prefix), { description: HELP[stat] }).addCallback((result) => {
      for (const [pool, stats] of statsByLabel(pools, maxLabels)) result.observe(stats[stat], { pool });
    });
  }
  for (const stat of COUNTERS) {
    meter.createObservableCounter(metricName(stat, prefix), { description: HELP[stat] }).addCallback((result) => {
      for (const [pool, stats] of statsByLabel(pools, maxLabels)) result.observe(stats[stat], { pool });
    });
  }
}
