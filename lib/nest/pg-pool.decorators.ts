import { createParamDecorator, Inject } from '@nestjs/common';
import { PoolConfigError } from '../pool/index.js';
import { bindHandler, isBound, resolveConn, routeHandlers, unwrappedByClass } from './handler-binding.js';
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
 *     @UseConnection({ pool: (request: Request) => request.header('x-tenant') ?? 'default' })   // tenant pools
 *
 * On a handler, it overrides one on its controller.
 */
export function UseConnection<Request = unknown>(poolOrOptions: string | UseConnectionOptions<Request> = {}): ClassDecorator & MethodDecorator {
  const options = typeof poolOrOptions === 'string' ? { pool: poolOrOptions } : poolOrOptions;
  if (options.settings !== undefined && !options.transaction) {
    throw new PoolConfigError(typeof options.pool === 'string' ? options.pool : DEFAULT_POOL_NAME,
      '@UseConnection: `settings` apply to the request\'s transaction alone (set_config(..., true)); add `transaction: true`');
  }
  const settings: UseConnectionSettings = {
    settings: options.settings as UseConnectionSettings['settings'],
    pool: (options.pool ?? DEFAULT_POOL_NAME) as UseConnectionSettings['pool'],
    transaction: options.transaction === true ? {} : options.transaction || undefined,
    timeoutMs: options.timeoutMs,
    fallback: options.fallback,
    inScope: options.currentConnection !== false,
  };
  return ((target: object, key?: string | symbol, descriptor?: PropertyDescriptor): PropertyDescriptor | void => {
    if (key !== undefined && descriptor) {
      descriptor.value = bindHandler(target, key, descriptor.value as (...args: unknown[]) => unknown, settings, 'method');
      Reflect.defineMetadata(USE_CONNECTION_METADATA, settings, descriptor.value as object);
      return descriptor;
    }
    // On a controller: every route handler, own or inherited, that has no @UseConnection of its own.
    // An inherited one that a base class's class-level @UseConnection wrapped gets this one's instead.
    const controller = target as { prototype: object };
    Reflect.defineMetadata(USE_CONNECTION_METADATA, settings, controller);
    for (const { key: name, handler } of routeHandlers(controller)) {
      if (isBound(handler)) continue;
      const wrapped = bindHandler(controller.prototype, name, unwrappedByClass(handler), settings, 'class');
      Reflect.defineMetadata(USE_CONNECTION_METADATA, settings, wrapped);
      Object.defineProperty(controller.prototype, name, { value: wrapped, writable: true, configurable: true, enumerable: false });
    }
  }) as ClassDecorator & MethodDecorator;
}

/**
 * The request's client in a `@UseConnection` handler: `@Conn() client: PooledClient`.
 * Without a name, the connection of the handler's `@UseConnection`; with one, that pool's.
 */
export const Conn = createParamDecorator(resolveConn);
