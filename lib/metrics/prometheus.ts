import { Counter, Gauge, register as defaultRegistry, type Registry } from 'prom-client';
import { COUNTERS, DEFAULT_MAX_POOL_LABELS, GAUGES, HELP, metricName, statsByLabel, type PoolSource } from './pool-source.js';

/** Where and under which names the Prometheus metrics are registered. */
export interface PrometheusMetricsOptions {
  /** Where to register; default prom-client's global registry. */
  registry?: Registry;
  /** Metric name prefix. Default `pg_pool_`. */
  prefix?: string;
  /** Pools labelled by name at most; the rest are summed under `pool="(other)"`. Default 50. */
  maxPoolLabels?: number;
}

/**
 * Exposes every pool's stats as Prometheus metrics labelled `pool`, read at each scrape
 * (no timers, no bookkeeping of our own). Import it from 'nestjs-pg-pool/prometheus',
 * which alone needs `prom-client` installed.
 *
 *     registerPrometheusMetrics(() => registry.ids().map((id) => registry.get(id)));
 */
export function registerPrometheusMetrics(pools: PoolSource, options: PrometheusMetricsOptions = {}): void {
  const registry = options.registry ?? defaultRegistry;
  const prefix = options.prefix ?? 'pg_pool_';
  const maxLabels = options.maxPoolLabels ?? DEFAULT_MAX_POOL_LABELS;
  for (const stat of GAUGES) {
    new Gauge({
      name: metricName(stat, prefix), help: HELP[stat], labelNames: ['pool'], registers: [registry],
      collect() {
        this.reset();
        for (const [pool, stats] of statsByLabel(pools, maxLabels)) this.set({ pool }, stats[stat]);
      },
    });
  }
  for (const stat of COUNTERS) {
    new Counter({
      name: `${metricName(stat, prefix)}_total`, help: HELP[stat], labelNames: ['pool'], registers: [registry],
      collect() {
        // The pool keeps the running total; a scrape copies it.
        this.reset();
        for (const [pool, stats] of statsByLabel(pools, maxLabels)) this.inc({ pool }, stats[stat]);
      },
    });
  }
}
