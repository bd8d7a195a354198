import type { TransactionOptions } from '../pool/index.js';

/** What `@UseConnection()` takes: a pool name, or these options. */
export interface UseConnectionOptions {
  /** The database id. Default `'default'`. */
  pool?: string;
  /** Run the handler in a transaction: COMMIT after success, ROLLBACK after any error. */
  transaction?: boolean | TransactionOptions;
  /** How long to wait for a connection; default the pool's `acquireTimeoutMs`. */
  timeoutMs?: number;
}

/** `UseConnectionOptions` after defaults: what the interceptor reads from metadata. */
export interface UseConnectionSettings {
  pool: string;
  transaction: TransactionOptions | undefined;
  timeoutMs: number | undefined;
}
