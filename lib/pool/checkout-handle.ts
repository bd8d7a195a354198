import { AsyncResource } from 'node:async_hooks';
import type { Client } from 'pg';
import type { PoolConnection } from './pool-connection.js';
import type { PooledClient } from './pooled-client.js';

type Method = (...args: unknown[]) => unknown;

/** Where a handle finds its connection: a property of its connection's handle prototype. */
const CONNECTION = Symbol('nestjs-pg-pool connection');
/** A handle's own field: the promise of its release, once released. */
const RETURNED = Symbol('nestjs-pg-pool returned');

interface HandleFields {
  [RETURNED]: Promise<void> | undefined;
  query: unknown;
}

/** What a handle's `release` and `[Symbol.asyncDispose]` call: the pool's, with the handle. */
export type GiveBack = (handle: PooledClient, destroy: Error | boolean | undefined, strict: boolean) => Promise<void>;

/** Makes a connection's checkout handles. */
export type HandleConstructor = new () => PooledClient;

/**
 * What a checkout hands out: a handle of its own on the connection's `pg.Client`, as
 * HikariCP hands out a proxy per borrow. Each handle has its own `query` and its own
 * release state, so that once released (or abandoned) it refuses work while the client
 * goes on serving its next user through another handle: a stray second `release()` or a
 * late query from the previous user can never touch the next user's checkout.
 *
 * A connection's handles share a prototype made at its first checkout, whose own
 * prototype is the client itself: `instanceof pg.Client` holds, and every field reads
 * through to the client, including ones set on it later (a tag set in a `connect`
 * listener). It holds each of the client's methods, delegating to the client, so that
 * pg's state is only ever written on the client. A property a caller assigns on a handle
 * stays on that handle. A checkout costs one small object of a fixed shape and one closure.
 */
export function handleConstructor(client: Client, connection: PoolConnection, giveBack: GiveBack, watchSession: boolean): HandleConstructor {
  const proto = Object.create(client) as Record<PropertyKey, unknown>;
  const methods = client as unknown as Record<PropertyKey, Method>;
  const seen = new Set<PropertyKey>(['constructor', 'release', 'query']);
  for (let source = Object.getPrototypeOf(client) as object | null; source && source !== Object.prototype; source = Object.getPrototypeOf(source) as object | null) {
    for (const key of Reflect.ownKeys(source)) {
      if (seen.has(key)) continue;
      seen.add(key);
      const descriptor = Reflect.getOwnPropertyDescriptor(source, key);
      if (!descriptor || typeof descriptor.value !== 'function') continue;
      // Looked up at each call, so that a method the client's owner replaced is honoured.
      proto[key] = function delegate(...args: unknown[]): unknown {
        return methods[key].apply(client, args);
      };
    }
  }
  // The hot path, without rest arguments: pg's query takes (config, values, callback).
  const query = function query(config: unknown, values?: unknown, callback?: unknown): unknown {
    // Only `resetOnReturn: 'auto'` needs to know: the others pay nothing per query.
    if (watchSession && !connection.sessionChanged && changesSession(config)) connection.sessionChanged = true;
    // pg calls a callback from the socket, in the context the connection was opened in
    // (the pool's): it runs in its caller's instead, with its AsyncLocalStorage stores
    // (`currentConnection()`), as a promise's continuation does.
    if (typeof callback === 'function') callback = AsyncResource.bind(callback as Method);
    else if (typeof values === 'function') values = AsyncResource.bind(values as Method);
    return methods.query.call(client, config, values, callback);
  };
  proto[Symbol.asyncDispose] = function dispose(this: PooledClient): Promise<void> {
    return giveBack(this, false, false);
  };
  proto[CONNECTION] = connection;
  const Handle = function Handle(this: HandleFields & { release(destroy?: Error | boolean): void }) {
    this[RETURNED] = undefined;
    this.query = query;
    // A closure, not a shared method: callers pass `client.release` around unbound
    // (`finally(client.release)`, pg.Pool's `done`), as pg.Pool allows.
    const handle = this as unknown as PooledClient;
    this.release = (destroy?: Error | boolean): void => {
      void giveBack(handle, destroy, true);
    };
  } as unknown as HandleConstructor;
  Handle.prototype = proto;
  return Handle;
}

/**
 * SET (not SET LOCAL), RESET, DISCARD, or a set_config() call anywhere in the text: a
 * statement that may leave a setting or a role behind for the next borrower. A look at
 * the text, not a parse: a false positive costs one RESET ALL on return; settings changed
 * out of sight (inside a function) need `resetOnReturn: 'always'`.
 */
const SESSION_CHANGE = /(?:^|;)\s*(?:set(?!\s+local\b)(?!\s+transaction\b)|reset|discard)\b|set_config\s*\(/i;

function changesSession(config: unknown): boolean {
  const text = typeof config === 'string' ? config : (config as { text?: unknown } | null | undefined)?.text;
  return typeof text === 'string' && SESSION_CHANGE.test(text);
}

/** The connection behind a handle, or undefined for anything else (a client of another pool). */
export function connectionOf(handle: unknown): PoolConnection | undefined {
  return typeof handle === 'object' && handle !== null ? (handle as { [CONNECTION]?: PoolConnection })[CONNECTION] : undefined;
}

/** Whether the handle still holds its connection: not released (an abandoned one still does, fenced off). */
export function holdsConnection(handle: PooledClient): boolean {
  return connectionOf(handle)?.handle === handle;
}

/** The promise of this handle's release, if it was released. */
export function returnedOf(handle: PooledClient): Promise<void> | undefined {
  return (handle as unknown as HandleFields)[RETURNED];
}

/** Records the handle's release. */
export function markReturned(handle: PooledClient, returned: Promise<void>): void {
  (handle as unknown as HandleFields)[RETURNED] = returned;
}

/** From now on this handle's queries throw, whatever becomes of its connection. */
export function fence(handle: PooledClient, refusal: Method): void {
  (handle as unknown as HandleFields).query = refusal;
}
