import type { PooledClient } from './pooled-client.js';

/**
 * The key of `PgPool`'s internal `withConnection` that may run its work before it returns
 * (see `PgPool[withConnectionNow]`). Not exported from the package: the public
 * `withConnection` always runs its work asynchronously, as callers may rely on; the Nest
 * binding, which calls the handler either way, saves a promise and a turn per request.
 */
export const withConnectionNow = Symbol('nestjs-pg-pool withConnectionNow');

/**
 * What `PgPool[withConnectionNow]` runs on the client: it reports its end by calling
 * `returned` or `failed`, rather than by a promise the pool would have to wait on.
 */
export type LentWork<T> = (client: PooledClient, returned: (value: T) => void, failed: (error: unknown) => void) => void;
