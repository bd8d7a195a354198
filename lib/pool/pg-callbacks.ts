import type { QueryResult, Submittable } from 'pg';
import type { PooledClient } from './pooled-client.js';

/** `pool.connect(callback)`'s callback, with pg.Pool's arguments: `done(err?)` releases the client. */
export type ConnectCallback = (
  error: Error | undefined,
  client: PooledClient | undefined,
  done: (destroy?: Error | boolean) => void,
) => void;

/** `pool.query(..., callback)`'s callback, with pg.Pool's arguments. */
export type QueryCallback<R = QueryResult> = (error: Error | undefined, result: R | undefined) => void;

/**
 * Calls a user's callback outside the pool's promise chain: a callback that throws
 * crashes as it would with pg.Pool (an uncaught exception), rather than becoming a
 * rejection of a promise nobody holds.
 */
export function callBack(call: () => void): void {
  try {
    call();
  } catch (error) {
    process.nextTick(() => {
      throw error;
    });
  }
}

/** A cursor, a stream or a pg `Query`: something the client `submit`s rather than sends as text. */
export function isSubmittable(value: unknown): value is Submittable {
  return typeof value === 'object' && value !== null && typeof (value as { submit?: unknown }).submit === 'function';
}
