import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { bindConnection, closableResponse, poolFor } from './connection-binding.js';
import { clientIn, currentScope, scopeMayPrecedeHandlers } from './current-connection.js';
import { USE_CONNECTION_METADATA } from './pg-pool.constants.js';
import { PgPoolRegistry } from './pg-pool.registry.js';
import type { UseConnectionSettings } from './use-connection-options.js';

export { RequestAbortedError } from './connection-binding.js';

/**
 * `@UseConnection` as an interceptor, for metadata set by hand
 * (`SetMetadata(USE_CONNECTION_METADATA, settings)` with `UseInterceptors(PgConnectionInterceptor)`).
 * `@UseConnection` itself binds the connection in the handler and needs no interceptor;
 * both go through `bindConnection`, with the same guarantees.
 */
@Injectable()
export class PgConnectionInterceptor implements NestInterceptor {
  constructor(
    private readonly reflector: Reflector,
    private readonly registry: PgPoolRegistry,
  ) {}

  /**
   * The settings of each handler, read once: metadata does not change after bootstrap,
   * and reading it is a measurable part of a one-query request. Keyed by handler, then
   * class (a handler inherited by two controllers may get different class-level settings).
   */
  private readonly settingsOf = new WeakMap<object, WeakMap<object, UseConnectionSettings | null>>();

  private settings(context: ExecutionContext): UseConnectionSettings | undefined {
    const handler = context.getHandler();
    const controller = context.getClass();
    let byClass = this.settingsOf.get(handler);
    if (!byClass) {
      byClass = new WeakMap();
      this.settingsOf.set(handler, byClass);
    }
    let settings = byClass.get(controller);
    if (settings === undefined) {
      const found = this.reflector.getAllAndOverride<UseConnectionSettings | undefined>(USE_CONNECTION_METADATA, [handler, controller]);
      // Always in a scope: the interceptor runs before Nest resolves `@Conn()`, which finds the client there.
      settings = found ? { ...found, inScope: true } : null;
      byClass.set(controller, settings);
    }
    return settings ?? undefined;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const settings = this.settings(context);
    // Decorated on both the class and the handler, the interceptor runs twice: the outer
    // run opens the scope, the inner one finds it open and passes through.
    if (!settings) return next.handle();
    const outer = currentScope();
    if (typeof settings.pool === 'string' && clientIn(outer, settings.pool)) return next.handle();
    // From now on, handlers may start inside a scope: `@Conn()` and `@UseConnection` look for one.
    scopeMayPrecedeHandlers();
    const http = context.getType() === 'http' ? context.switchToHttp() : undefined;
    const response = http ? closableResponse(http.getResponse()) : undefined;
    const request: unknown = http?.getRequest();
    return bindConnection(poolFor(this.registry, settings, request), settings, response, () => next.handle(), request, outer);
  }
}
