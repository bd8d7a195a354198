import type { PoolClient } from 'pg';

/**
 * What `acquire()` and `connect()` give: the pg client itself (as `pg.Pool` gives it, so
 * ORMs that take a `pg.PoolClient` accept it), with a `release` bound to this checkout.
 *
 * - `release()` returns at once; the pool rolls back / resets the client in the background.
 * - `release(err)` or `release(true)` closes the connection instead of reusing it.
 * - Releasing twice throws a `PoolUsageError`; a `release` kept from an earlier checkout
 *   cannot release the client from under its next user.
 * - `await using client = await pool.connection()` releases at the end of the scope and
 *   resolves once the client is back in the pool.
 */
export interface PooledClient extends PoolClient {
  /** Gives the client back to the pool at once; with an error or `true`, closes its connection instead. */
  release(destroy?: Error | boolean): void;
  /** Releases the client and resolves once it is back in the pool (`await using`). */
  [Symbol.asyncDispose](): Promise<void>;
}
