/**
 * A snapshot of a pool's state and counters. The names are psycopg_pool's
 * (`get_stats()`), in camelCase, so its documentation applies as it stands.
 * Gauges describe the pool now; counters add up since creation or `resetStats()`.
 */
export interface PoolStats {
  /** Gauge: the configured minimum size. */
  poolMin: number;
  /** Gauge: the configured maximum size. */
  poolMax: number;
  /** Gauge: connections the pool manages now: idle, in use, being returned or being opened. */
  poolSize: number;
  /** Gauge: idle connections ready to hand out. */
  poolAvailable: number;
  /** Gauge: requests waiting for a connection now. */
  requestsWaiting: number;
  /** Counter: connection requests (acquire, connect, query, withConnection…). */
  requestsNum: number;
  /** Counter: requests that had to wait because none was idle. */
  requestsQueued: number;
  /** Counter: total time requests spent waiting, in ms. */
  requestsWaitMs: number;
  /** Counter: requests that failed (timeout, too many waiting, pool closed). */
  requestsErrors: number;
  /** Counter: requests that timed out waiting. */
  requestsTimeouts: number;
  /** Counter: connections returned in a bad state (inside a transaction, or broken). */
  returnsBad: number;
  /** Counter: connection attempts that succeeded. */
  connectionsNum: number;
  /** Counter: total time spent opening connections (including `configure`), in ms. */
  connectionsMs: number;
  /** Counter: connection attempts that failed. */
  connectionsErrors: number;
  /** Counter: connections found dead (server restart, terminated backend, failed check). */
  connectionsLost: number;
  /** Counter: total time connections spent checked out by clients, in ms. */
  usageMs: number;
  /** Counter: clients held longer than `leakDetectionMs` (HikariCP's leak detection). */
  leaksDetected: number;
  /** Counter: new connections that landed on another host than the previous one (multi-host pools). */
  failovers: number;
}

export type PoolCounterName = Exclude<
  keyof PoolStats,
  'poolMin' | 'poolMax' | 'poolSize' | 'poolAvailable' | 'requestsWaiting'
>;

/** The counters half of `PoolStats`, in one place so that reset is one assignment. */
export type PoolCounters = Record<PoolCounterName, number>;

export function zeroCounters(): PoolCounters {
  return {
    requestsNum: 0,
    requestsQueued: 0,
    requestsWaitMs: 0,
    requestsErrors: 0,
    requestsTimeouts: 0,
    returnsBad: 0,
    connectionsNum: 0,
    connectionsMs: 0,
    connectionsErrors: 0,
    connectionsLost: 0,
    usageMs: 0,
    leaksDetected: 0,
    failovers: 0,
  };
}
