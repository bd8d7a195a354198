/**
 * The one list of a pool's stats: each name with what it means. `PoolStats`, the zeroed
 * counters, the docs and the Prometheus and OpenTelemetry metrics are all made from it,
 * so a stat added here appears everywhere at once. The names are psycopg_pool's
 * (`get_stats()`), in camelCase, so its documentation applies as it stands.
 */
export const POOL_GAUGES = {
  poolMin: 'Configured minimum number of connections',
  poolMax: 'Configured maximum number of connections',
  poolSize: 'Connections managed now: idle, in use, being returned or being opened',
  poolAvailable: 'Idle connections ready to hand out',
  requestsWaiting: 'Requests waiting for a connection now',
  multiplexConnections: 'Connections shared by multiplexed statements now (the multiplex option)',
  multiplexInFlight: 'Statements written on shared connections and not yet answered',
} as const;

/** Counters add up since the pool's creation or its last `resetStats()`. */
export const POOL_COUNTERS = {
  requestsNum: 'Connection requests (acquire, connect, query, withConnection...)',
  requestsQueued: 'Requests that had to wait for a connection',
  requestsWaitMs: 'Total time requests waited for a connection, in ms',
  requestsErrors: 'Requests that failed (timeout, too many waiting, unavailable, pool closed)',
  requestsTimeouts: 'Requests that timed out waiting',
  returnsBad: 'Connections returned in a bad state: inside a transaction, or broken',
  connectionsNum: 'Connection attempts that succeeded',
  connectionsMs: 'Total time spent opening connections (including configure), in ms',
  connectionsErrors: 'Connection attempts that failed',
  connectionsLost: 'Connections found dead (server restart, terminated backend, failed check)',
  usageMs: 'Total time connections were checked out, in ms',
  leaksDetected: 'Clients held longer than leakDetectionMs (HikariCP\'s leak detection)',
  failovers: 'New connections that landed on another host than the previous one (multi-host pools)',
} as const;

/** A gauge's name: the pool now. */
export type PoolGaugeName = keyof typeof POOL_GAUGES;

/** A counter's name: adds up until `resetStats()`. */
export type PoolCounterName = keyof typeof POOL_COUNTERS;

/**
 * A snapshot of a pool's gauges and counters, by the names of `POOL_GAUGES` and
 * `POOL_COUNTERS` (where each is described).
 */
export type PoolStats = { [Name in PoolGaugeName | PoolCounterName]: number };

/** The counters half of `PoolStats`, in one object so that reset is one assignment. */
export type PoolCounters = { [Name in PoolCounterName]: number };

export function zeroCounters(): PoolCounters {
  return Object.fromEntries(Object.keys(POOL_COUNTERS).map((name) => [name, 0])) as PoolCounters;
}
