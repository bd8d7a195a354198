/**
 * Where a pool writes its log lines. Nest's `Logger` fits this shape, and so does
 * `console`; the Nest module passes a `Logger` named after the pool.
 */
export interface PoolLogger {
  /** Routine detail: maintenance passes that changed something. */
  debug?(message: string): void;
  /** Notable events: a listener reconnected. */
  log(message: string): void;
  /** Trouble the pool handles: a lost connection, a failed reset, a leak, a retry. */
  warn(message: string): void;
  /** Trouble the pool cannot handle alone: reconnecting has failed for too long. */
  error(message: string): void;
}

/**
 * Without a logger the pool reports warnings and errors on the console (an idle
 * connection lost, reconnecting failing) and keeps quiet otherwise, as a library should.
 */
export const defaultPoolLogger: PoolLogger = {
  log: () => undefined,
  warn: (message) => console.warn(`[nestjs-pg-pool] ${message}`),
  error: (message) => console.error(`[nestjs-pg-pool] ${message}`),
};
