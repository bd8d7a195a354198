import type { PgPool } from '../pool/index.js';

/** The pools to export: a list, or a function read at each scrape (e.g. `PgPoolRegistry`'s pools). */
export type PoolSource = Iterable<PgPool> | (() => Iterable<PgPool>);

export function poolsOf(source: PoolSource): PgPool[] {
  return [...(typeof source === 'function' ? source() : source)];
}

/**
 * Every stat as a metric: gauges describe the pool now, counters only grow (until
 * `resetStats()`). Names are `pg_pool_` + the stat in snake case, e.g. `pg_pool_requests_wait_ms`.
 */
export const GAUGES = ['poolMin', 'poolMax', 'poolSize', 'poolAvailable', 'requestsWaiting'] as const;
export const COUNTERS = [
  'requestsNum', 'requestsQueued', 'requestsWaitMs', 'requestsErrors', 'requestsTimeouts', 'returnsBad',
  'connectionsNum', 'connectionsMs', 'connectionsErrors', 'connectionsLost', 'usageMs', 'leaksDetected', 'failovers',
] as const;

export const HELP: Record<(typeof GAUGES)[number] | (typeof COUNTERS)[number], string> = {
  poolMin: 'Configured minimum number of connections',
  poolMax: 'Configured maximum number of connections',
  poolSize: 'Connections managed now: idle, in use, being returned or being opened',
  poolAvailable: 'Idle connections ready to hand out',
  requestsWaiting: 'Requests waiting for a connection now',
  requestsNum: 'Connection requests',
  requestsQueued: 'Requests that had to wait for a connection',
  requestsWaitMs: 'Total time requests waited for a connection, in ms',
  requestsErrors: 'Requests that failed (timeout, too many waiting, pool closed)',
  requestsTimeouts: 'Requests that timed out waiting',
  returnsBad: 'Connections returned inside a transaction or broken',
  connectionsNum: 'Connection attempts that succeeded',
  connectionsMs: 'Total time spent opening connections, in ms',
  connectionsErrors: 'Connection attempts that failed',
  connectionsLost: 'Connections found dead',
  usageMs: 'Total time connections were checked out, in ms',
  leaksDetected: 'Clients held longer than leakDetectionMs',
  failovers: 'New connections that landed on another host than the previous one',
};

export function metricName(stat: string, prefix: string): string {
  return prefix + stat.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
