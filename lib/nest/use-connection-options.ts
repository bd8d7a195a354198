import type { TransactionOptions } from '../pool/index.js';

/**
 * Picks the database id of a request, for a database per tenant: from a header, a JWT
 * claim, the host name. May be async. A throw (e.g. `BadRequestException` for a missing
 * header) is the request's answer. See `PgPoolModule.forTenants`.
 */
export type PoolSelector<Request = unknown> = (request: Request) => string | Promise<string>;

/** What `@UseConnection()` takes: a pool name, or these options. */
export interface UseConnectionOptions<Request = unknown> {
  /**
   * The database id, default `'default'`; or a function from the request to it, for
   * tenant pools (created on first use by `PgPoolModule.forTenants`).
   */
  pool?: string | PoolSelector<Request>;
  /** Run the handler in a transaction: COMMIT after success, ROLLBACK after any error. */
  transaction?: boolean | TransactionOptions;
  /** How long to wait for a connection; default the pool's `acquireTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Another pool to use while `pool` is down (no connection, and connecting fails): e.g.
   * `{ pool: 'replica', fallback: 'primary' }` sends reads to the primary when no replica
   * answers. The client is still in scope under `pool`'s name.
   */
  fallback?: string;
}

/** `UseConnectionOptions` after defaults: what the interceptor reads from metadata. */
export interface UseConnectionSettings {
  pool: string | PoolSelector<never>;
  transaction: TransactionOptions | undefined;
  timeoutMs: number | undefined;
  fallback: string | undefined;
}
