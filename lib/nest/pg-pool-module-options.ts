import type { PgPoolConfig } from '../pool/index.js';

/**
 * `PgPoolModule.forRoot` options: the engine's options (ours or pg.Pool's, as
 * `new PgPool()` takes them) plus how the module runs the pool.
 */
export interface PgPoolModuleOptions extends PgPoolConfig {
  /**
   * Open the pool at start-up and fail the bootstrap if the database cannot be reached,
   * with the pool's name and the server's reason. Default true. With false the app starts
   * anyway and the maintainer keeps reconnecting with backoff.
   */
  failFast?: boolean;
  /** How long start-up waits for `min` connections (failFast). Default `acquireTimeoutMs`. */
  openTimeoutMs?: number;
  /** On shutdown, how long to wait for checked-out clients before closing them. Default 10000. */
  shutdownTimeoutMs?: number;
}

/** A class that builds pool options, for `forRootAsync({ useClass | useExisting })`. */
export interface PgPoolOptionsFactory {
  /** Returns the pool's options; may be async (read a secret, call a config service). */
  createPgPoolOptions(): Promise<PgPoolModuleOptions> | PgPoolModuleOptions;
}
