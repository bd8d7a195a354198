import type { Client } from 'pg';
import type { PoolConnection } from './pool-connection.js';
import type { PooledClient } from './pooled-client.js';

type Method = (...args: unknown[]) => unknown;

/** A handle's own fields: its connection, the promise of its release, its `query` and `release`. */
const CONNECTION = Symbol('nestjs-pg-pool connection');
const RETURNED = Symbol('nestjs-pg-pool returned');

interface HandleFields {
  [CONNECTION]: PoolConnection;
  [RETURNED]: Promise<void> | undefined;
  query: unknown;
}

/** What a handle's `release` and `[Symbol.asyncDispose]` call: the pool's, with the handle. */
export type GiveBack = (handle: PooledClient, destroy: Error | boolean | undefined, strict: boolean) => Promise<void>;

/** Makes a pool's checkout handles. */
export type HandleConstructor = new (connection: PoolConnection) => PooledClient;

/**
 * What a checkout hands out: a handle of its own on the connection's `pg.Client`, as
 * HikariCP hands out a proxy per borrow. Each handle has its own `query` and its own
 * release state, so that once released (or abandoned) it refuses work while the client
 * goes on serving its next user through another handle: a stray second `release()` or a
 * late query from the previous user can never touch the next user's checkout.
 *
 * The handles of a pool share one prototype, made from its first client: its prototype
 * is the client class's (so `instanceof pg.Client` holds), every method of the client
 * delegates to the handle's client (so pg's state is only ever written there), and every
 * field of a client instance is an accessor to the handle's client. One prototype and one
 * shape for every handle of the pool: a checkout costs one small object, and the code that
 * uses handles stays monomorphic.
 */
export function handleConstructor(sample: Client, giveBack: GiveBack): HandleConstructor {
  const clientProto = Object.getPrototypeOf(sample) as object;
  const proto = Object.create(clientProto) as Record<PropertyKey, unknown>;
  const clientOf = (handle: unknown): Record<PropertyKey, unknown> =>
    (handle as HandleFields)[CONNECTION].client as unknown as Record<PropertyKey, unknown>;
  const seen = new Set<PropertyKey>(['constructor', 'release', 'query']);
  for (let source: object | null = clientProto; source && source !== Object.prototype; source = Object.getPrototypeOf(source) as object | null) {
    for (const key of Reflect.ownKeys(source)) {
      if (seen.has(key)) continue;
      seen.add(key);
      const descriptor = Reflect.getOwnPropertyDescriptor(source, key);
      if (!descriptor) continue;
      if (typeof descriptor.value === 'function') {
        // Looked up at each call, so that a method the client's owner replaced is honoured.
        proto[key] = function delegate(this: unknown, ...args: unknown[]): unknown {
          const client = clientOf(this);
          return (client[key] as Method).apply(client, args);
        };
      } else if (descriptor.get || descriptor.set) {
        Object.defineProperty(proto, key, {
          get(this: unknown) { return clientOf(this)[key]; },
          set(this: unknown, value: unknown) { clientOf(this)[key] = value; },
        });
      }
    }
  }
  // The client's own fields (processID, readyForQuery, connection, ...), read and written on it.
  for (const key of Reflect.ownKeys(sample)) {
    if (seen.has(key)) continue;
    seen.add(key);
    Object.defineProperty(proto, key, {
      get(this: unknown) { return clientOf(this)[key]; },
      set(this: unknown, value: unknown) { clientOf(this)[key] = value; },
    });
  }
  // The hot path, without rest arguments: pg's query takes (config, values, callback).
  const query = function query(this: unknown, config: unknown, values?: unknown, callback?: unknown): unknown {
    const client = clientOf(this);
    return (client.query as Method).call(client, config, values, callback);
  };
  proto[Symbol.asyncDispose] = function dispose(this: PooledClient): Promise<void> {
    return giveBack(this, false, false);
  };
  const Handle = function Handle(this: HandleFields & { release(destroy?: Error | boolean): void }, connection: PoolConnection) {
    this[CONNECTION] = connection;
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

/** The connection behind a handle, or undefined for anything else (a client of another pool). */
export function connectionOf(handle: unknown): PoolConnection | undefined {
  return typeof handle === 'object' && handle !== null ? (handle as Partial<HandleFields>)[CONNECTION] : undefined;
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
