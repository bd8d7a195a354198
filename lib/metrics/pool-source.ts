import type { PgPool, PoolStats } from '../pool/index.js';
import { POOL_COUNTERS, POOL_GAUGES, type PoolCounterName, type PoolGaugeName } from '../pool/pool-stats.js';

/** The pools to export: a list, or a function read at each scrape (e.g. `PgPoolRegistry`'s pools). */
export type PoolSource = Iterable<PgPool> | (() => Iterable<PgPool>);

export function poolsOf(source: PoolSource): PgPool[] {
  return [...(typeof source === 'function' ? source() : source)];
}

/**
 * Every stat as a metric: gauges describe the pool now, counters only grow (until
 * `resetStats()`). Names are `pg_pool_` + the stat in snake case, e.g. `pg_pool_requests_wait_ms`.
 */
export const GAUGES = Object.keys(POOL_GAUGES) as PoolGaugeName[];
export const COUNTERS = Object.keys(POOL_COUNTERS) as PoolCounterName[];
export const HELP: Record<PoolGaugeName | PoolCounterName, string> = { ...POOL_GAUGES, ...POOL_COUNTERS };

export function metricName(stat: string, prefix: string): string {
  return prefix + stat.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/** The `pool` label of the pools past `maxPoolLabels`, whose stats are summed. */
export const OTHER_POOLS_LABEL = '(other)';

/** Labels per pool at most, by default: tenant pools must not blow up a metrics backend. */
export const DEFAULT_MAX_POOL_LABELS = 50;

/**
 * Each pool's stats under its name, for the first `maxLabels` pools of the source (the
 * registered ones come first), and the rest summed under `(other)`: a database per tenant
 * gives a bounded number of series, however many tenants there are. The `(other)`
 * counters can go down when a tenant's pool is closed (a counter reset to Prometheus).
 */
export function statsByLabel(source: PoolSource, maxLabels: number): Array<[label: string, stats: PoolStats]> {
  const pools = poolsOf(source);
  const labelled: Array<[string, PoolStats]> = pools.slice(0, maxLabels).map((pool) => [pool.name, pool.getStats()]);
  if (pools.length > maxLabels) {
    const others = pools.slice(maxLabels).map((pool) => pool.getStats());
    const sum = { ...others[0] };
    for (const stats of others.slice(1)) {
      for (const key of Object.keys(sum) as Array<keyof PoolStats>) sum[key] += stats[key];
    }
    labelled.push([OTHER_POOLS_LABEL, sum]);
  }
  return labelled;
}
