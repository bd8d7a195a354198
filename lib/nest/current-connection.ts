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
  /** The request this scope's handler serves: the work of handlers it calls is abandoned with it. */
  readonly request: AbandonableRequest;
}

/**
 * Whether a request was abandoned (its HTTP client left), and what to abandon with it: the
 * bindings of handlers its handler called by code, on any pool. A plain record rather
 * than a closure, so that what the scope holds on to is this, not the binding's state.
 */
export interface AbandonableRequest {
  abandoned: boolean;
  dependents: Array<() => void> | undefined;
}

/** Ties `abandon` to the request of `scope` (the caller's), if any: run at once if it was abandoned already. */
export function abandonWithRequestOf(scope: ConnectionScope | undefined, abandon: () => void): void {
  const request = scope?.request;
  if (request === undefined) return;
  if (request.abandoned) abandon();
  else (request.dependents ??= []).push(abandon);
}

const storage = new AsyncLocalStorage<ConnectionScope>();

/** Runs `fn` with `client` as the scope's connection for `pool` (and as its primary), inside `outer` (the current scope). */
export function runInConnectionScope<T>(pool: string, client: PooledClient, request: AbandonableRequest, outer: ConnectionScope | undefined, fn: () => T): T {
  return storage.run({ primary: pool, client, outer, request }, fn);
}

/**
 * Whether a scope can be open when Nest calls a handler (and resolves its `@Conn()`
 * parameters): only PgConnectionInterceptor opens one before the handler, and until it
 * has, a handler Nest calls starts in none. A request Nest routes is a request of its own,
 * even when something routes it from inside another's handler. The look-up this spares
 * costs about a µs on Node 20 and 22, several times per request.
 */
let scopesOpenBeforeHandlers = false;

/** Called by PgConnectionInterceptor before it opens its first scope. */
export function scopeMayPrecedeHandlers(): void {
  scopesOpenBeforeHandlers = true;
}

/** The scope a handler Nest calls runs in: none, unless PgConnectionInterceptor may have opened one. */
export function scopeAtHandlerCall(): ConnectionScope | undefined {
  return scopesOpenBeforeHandlers ? storage.getStore() : undefined;
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
