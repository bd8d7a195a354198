/**
 * The pool's error hierarchy. Every error carries the pool's `name` (the database id)
 * in `poolName` and in its message, so a log line says which database is in trouble.
 * None of them ever holds a password: connection targets go through
 * `describeTarget()`, which only knows host, port and database.
 */
export class PoolError extends Error {
  /** The name of the pool (its database id) that raised this error. */
  readonly poolName: string;

  constructor(poolName: string, message: string, options?: { cause?: unknown }) {
    super(`pool '${poolName}': ${message}`, options);
    this.name = new.target.name;
    this.poolName = poolName;
  }
}

/** No connection became available within the request's timeout. */
export class PoolTimeoutError extends PoolError {}

/**
 * The database is unavailable: the pool holds no connection and its attempts to open one
 * are failing (server down, refused, password rejected). Raised after
 * `unavailableTimeoutMs` rather than the whole acquire timeout; the message and `code`
 * carry the server's reason. The Nest filter answers it with 503 and `Retry-After`.
 */
export class PoolUnavailableError extends PoolError {
  /** The last connection error's code (`ECONNREFUSED`, `28P01`, ...), if it had one. */
  readonly code: string | undefined;
  /** When a retry may succeed at the earliest: the pool's next attempt. */
  readonly retryAfterMs: number;

  constructor(poolName: string, message: string, options: { cause?: unknown; code?: string; retryAfterMs: number }) {
    super(poolName, message, { cause: options.cause });
    this.code = options.code;
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** More requests are already waiting than `maxWaiting` allows. */
export class TooManyRequestsError extends PoolError {}

/** The pool is closing or closed and hands out no more connections. */
export class PoolClosedError extends PoolError {}

/** `open({ wait: true })` could not reach `min` connections; the message holds the server's reason. */
export class PoolOpenError extends PoolError {}

/**
 * One attempt to open a connection failed. `reason` is the server's or the network's
 * (password-free), `code` its SQLSTATE (`28P01` bad password, `3D000` unknown database)
 * or Node's (`ECONNREFUSED`). Carried by `connectError` events, and as the `cause` of
 * `PoolOpenError` and `PoolUnavailableError`.
 */
export class ConnectError extends PoolError {
  /** `cannot connect to host:port/database: <reason>`, without the pool's name. */
  readonly reason: string;
  /** The server's SQLSTATE or Node's error code, if the failure had one. */
  readonly code: string | undefined;

  constructor(poolName: string, target: string, reason: string, code?: string) {
    const detail = `cannot connect to ${target}: ${reason}`;
    super(poolName, detail);
    this.reason = detail;
    this.code = code;
  }
}

/**
 * PostgreSQL rolled the transaction back at COMMIT: a statement in it had failed and the
 * callback went on (it swallowed the error). Nothing of the transaction was written.
 */
export class TransactionRolledBackError extends PoolError {}

/** The options given to the pool are invalid; the message says which one and how to fix it. */
export class PoolConfigError extends PoolError {}

/** The pool was used wrongly: a client released twice, a client from another pool, a bad argument. */
export class PoolUsageError extends PoolError {}

/**
 * No pool exists for this database id and none can be made: the tenant resolver returned
 * no options for it. The Nest filter answers it with 404 (an unknown tenant).
 */
export class UnknownPoolError extends PoolError {}
