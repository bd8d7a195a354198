import { AsyncLocalStorage } from 'node:async_hooks';
import { PoolUsageError, type PooledClient } from '../pool/index.js';
import { DEFAULT_POOL_NAME } from './pg-pool.constants.js';

/**
 * What `@UseConnection` puts in scope for the code below a handler: one pool's client,
 * and the scope it is nested in (a handler of another pool's `@UseConnection` calling
 * this one). A small linked record rather than a Map copied per request: a request
 * almost always holds one client.
 */
export interface ConnectionScope {
  /** The pool of this (the innermost) `@UseConnection`: what `@Conn()` without a name gives. */
  readonly primary: string;
  readonly client: PooledClient;
  readonly outer: ConnectionScope | undefined;
  /**
   * Ties the work of a handler called from this one (on any pool) to this request: if
   * the request is abandoned, so is that work.
   */
  readonly onAbandon: (abandon: () => void) => void;
}

const storage = new AsyncLocalStorage<ConnectionScope>();

/** Runs `fn` with `client` as the scope's connection for `pool` (and as its primary). */
export function runInConnectionScope<T>(pool: string, client: PooledClient, onAbandon: ConnectionScope['onAbandon'], fn: () => T): T {
  return storage.run({ primary: pool, client, outer: storage.getStore(), onAbandon }, fn);
}

/** The scope below the current handler, if any. */
export function currentScope(): ConnectionScope | undefined {
  return storage.getStore();
}

/** The client a scope (or one it is nested in) holds for `pool`. */
export function clientIn(scope: ConnectionScope | undefined, pool: string): PooledClient | undefined {
  for (let s = scope; s !== undefined; s = s.outer) if (s.primary === pool) return s.client;
  return undefined;
}

/**
 * The client that `@UseConnection(name)` acquired for the current request, from anywhere
 * below the handler (services, repositories), through AsyncLocalStorage. Without a name:
 * the `'default'` pool's client, or, when the request has none (a tenant's pool picked
 * per request), the innermost `@UseConnection`'s. Throws a `PoolUsageError` outside such
 * a scope, rather than silently using another connection.
 */
export function currentConnection(name?: string): PooledClient {
  const scope = storage.getStore();
  const client = name === undefined ? clientIn(scope, DEFAULT_POOL_NAME) ?? scope?.client : clientIn(scope, name);
  name ??= DEFAULT_POOL_NAME;
  if (!client) {
    throw new PoolUsageError(name, `no connection in scope: currentConnection('${name}') works only in code called ` +
      `from a handler or controller decorated with @UseConnection('${name}')`);
  }
  return client;
}
