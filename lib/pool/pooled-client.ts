import type { PoolClient } from 'pg';

/**
 * What `acquire()` and `connect()` give: a handle of this checkout's own on the pg client
 * (a `pg.Client` to every caller, so ORMs that take a `pg.PoolClient` accept it).
 *
 * - `release()` returns at once; the pool rolls back / resets the client in the background.
 * - `release(err)` or `release(true)` closes the connection instead of reusing it.
 * - Once released, the handle's `query()` and a second `release()` throw `PoolUsageError`,
 *   even when the connection already serves its next user through another handle.
 * - `await using client = await pool.connection()` releases at the end of the scope and
 *   resolves once the client is back in the pool.
 */
export interface PooledClient extends PoolClient {
  /** Gives the client back to the pool at once; with an error or `true`, closes its connection instead. */
  release(destroy?: Error | boolean): void;
  /** Releases the client and resolves once it is back in the pool (`await using`). */
  [Symbol.asyncDispose](): Promise<void>;
}
