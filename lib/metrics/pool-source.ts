import type { PgPool } from '../pool/index.js';
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
