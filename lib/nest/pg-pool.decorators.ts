import { applyDecorators, createParamDecorator, Inject, SetMetadata, UseInterceptors, type ExecutionContext } from '@nestjs/common';
import type { PooledClient } from '../pool/index.js';
import { currentConnection, currentScope } from './current-connection.js';
import { PgConnectionInterceptor } from './pg-connection.interceptor.js';
import { DEFAULT_POOL_NAME, USE_CONNECTION_METADATA } from './pg-pool.constants.js';
import { getPoolToken } from './pg-pool.utils.js';
import type { UseConnectionOptions, UseConnectionSettings } from './use-connection-options.js';

/** Injects the pool registered under `name` (default `'default'`). */
export const InjectPool = (name: string = DEFAULT_POOL_NAME): PropertyDecorator & ParameterDecorator =>
  Inject(getPoolToken(name));

/**
 * Gives the handler (or every handler of a controller) a connection of its own for the
 * request, released whatever happens; with `transaction`, inside BEGIN … COMMIT/ROLLBACK.
 *
 *     @UseConnection()                                   // the 'default' pool
 *     @UseConnection('analytics')
 *     @UseConnection({ pool: 'default', transaction: { isolationLevel: 'serializable' }, timeoutMs: 2000 })
 *
 * On a handler, it overrides one on its controller.
 */
export function UseConnection(poolOrOptions: string | UseConnectionOptions = {}): ClassDecorator & MethodDecorator {
  const options = typeof poolOrOptions === 'string' ? { pool: poolOrOptions } : poolOrOptions;
  const settings: UseConnectionSettings = {
    pool: options.pool ?? DEFAULT_POOL_NAME,
    transaction: options.transaction === true ? {} : options.transaction || undefined,
    timeoutMs: options.timeoutMs,
    fallback: options.fallback,
  };
  return applyDecorators(SetMetadata(USE_CONNECTION_METADATA, settings), UseInterceptors(PgConnectionInterceptor));
}

/**
 * The request's client in a `@UseConnection` handler: `@Conn() client: PooledClient`.
 * Without a name, the connection of the handler's `@UseConnection`; with one, that pool's.
 */
export const Conn = createParamDecorator((name: string | undefined, _context: ExecutionContext): PooledClient =>
  currentConnection(name ?? currentScope()?.primary ?? DEFAULT_POOL_NAME));
