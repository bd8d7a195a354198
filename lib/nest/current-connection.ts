import { AsyncLocalStorage } from 'node:async_hooks';
import { PoolUsageError, type PooledClient } from '../pool/index.js';
import { DEFAULT_POOL_NAME } from './pg-pool.constants.js';

/** What `@UseConnection` puts in scope for the code below a handler. */
export interface ConnectionScope {
  /** The request's clients by pool name. */
  readonly clients: ReadonlyMap<string, PooledClient>;
  /** The pool of the innermost `@UseConnection`: what `@Conn()` without a name gives. */
  readonly primary: string;
}

const storage = new AsyncLocalStorage<ConnectionScope>();

/** Runs `fn` with `client` as the scope's connection for `pool` (and as its primary). */
export function runInConnectionScope<T>(pool: string, client: PooledClient, fn: () => T): T {
  const clients = new Map(storage.getStore()?.clients);
  clients.set(pool, client);
  return storage.run({ clients, primary: pool }, fn);
}

/** The scope below the current handler, if any. */
export function currentScope(): ConnectionScope | undefined {
  return storage.getStore();
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
  if (name === undefined) name = scope && !scope.clients.has(DEFAULT_POOL_NAME) ? scope.primary : DEFAULT_POOL_NAME;
  const client = scope?.clients.get(name);
  if (!client) {
    throw new PoolUsageError(name, `no connection in scope: currentConnection('${name}') works only in code called ` +
      `from a handler or controller decorated with @UseConnection('${name}')`);
  }
  return client;
}
