import { AsyncResource } from 'node:async_hooks';

/**
 * The async context the pool opens its connections in: the one this module was loaded in
 * (an application's start-up), never that of the request which made the pool open one.
 *
 * A socket keeps the context it was created in, and pg calls back from its socket: the
 * callback of a callback-style query, a stream's events, a LISTEN notification. A
 * connection opened inside a request's AsyncLocalStorage scope (a handler whose
 * `pool.query()` grew the pool, a `release(true)` whose replacement was opened at once)
 * would hand that request's store, its `currentConnection()` included, to every later
 * user of the connection, in those callbacks.
 */
const poolContext = new AsyncResource('nestjs-pg-pool.connection');

/** Runs `open` (which creates a client and connects it) in the pool's own context. */
export function inPoolContext<T>(open: () => T): T {
  return poolContext.runInAsyncScope(open);
}
