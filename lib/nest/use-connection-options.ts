import type { TransactionOptions } from '../pool/index.js';

/** What `@UseConnection()` takes: a pool name, or these options. */
export interface UseConnectionOptions {
  /** The database id. Default `'default'`. */
  pool?: string;
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
  pool: string;
  transaction: TransactionOptions | undefined;
  timeoutMs: number | undefined;
  fallback: string | undefined;
}
