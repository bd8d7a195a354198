import type { Client } from 'pg';
import type { PoolConnection } from './pool-connection.js';
import type { PooledClient } from './pooled-client.js';

type Method = (...args: unknown[]) => unknown;

/** Where a handle finds its connection: a property of the handles' shared prototype. */
const CONNECTION = Symbol('nestjs-pg-pool connection');

/**
 * What a checkout hands out: a handle of its own on the connection's `pg.Client`, as
 * HikariCP hands out a proxy per borrow. Each handle has its own `release` and its own
 * `query`, so that once released (or abandoned) it refuses work while the client goes on
 * serving its next user through another handle: a stray second `release()` or a late
 * query from the previous user can never touch the next user's checkout.
 *
 * A handle is `Object.create(base)`, `base` being made once per connection: an object
 * whose prototype is the client (so `instanceof pg.Client`, `processID`, `readyForQuery`
 * and every field read through) and which holds each of the client's methods, delegating
 * to the client itself, so that pg's own state is only ever written on the client.
 */
export function handleBase(client: Client, connection: PoolConnection): object {
  const base = Object.create(client) as Record<PropertyKey, unknown>;
  const seen = new Set<PropertyKey>(['constructor']);
  for (let proto = Object.getPrototypeOf(client) as object | null; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto) as object | null) {
    for (const key of Reflect.ownKeys(proto)) {
      if (seen.has(key)) continue;
      seen.add(key);
      const descriptor = Reflect.getOwnPropertyDescriptor(proto, key);
      if (!descriptor || typeof descriptor.value !== 'function') continue;
      // Looked up at each call, so that a method the client's owner replaced is honoured.
      base[key] = function delegate(...args: unknown[]): unknown {
        return ((client as unknown as Record<PropertyKey, Method>)[key]).apply(client, args);
      };
    }
  }
  base[CONNECTION] = connection;
  return base;
}

/** A new handle for one checkout. */
export function newHandle(base: object): PooledClient {
  return Object.create(base) as PooledClient;
}

/** The connection behind a handle, or undefined for anything else (a client of another pool). */
export function connectionOf(handle: unknown): PoolConnection | undefined {
  return typeof handle === 'object' && handle !== null ? (handle as Record<PropertyKey, unknown>)[CONNECTION] as PoolConnection | undefined : undefined;
}

/** From now on this handle's queries throw, whatever becomes of its connection. */
export function fence(handle: PooledClient, refusal: Method): void {
  (handle as unknown as { query: Method }).query = refusal;
}
