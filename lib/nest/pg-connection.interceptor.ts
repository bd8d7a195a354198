import { HttpException, Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { Observable, type Subscription } from 'rxjs';
import type { PgPool, PooledClient } from '../pool/index.js';
import { currentScope, runInConnectionScope } from './current-connection.js';
import { USE_CONNECTION_METADATA } from './pg-pool.constants.js';
import { PgPoolRegistry } from './pg-pool.registry.js';
import type { UseConnectionSettings } from './use-connection-options.js';

/** The HTTP response as far as disconnect detection needs it (Express's, or Fastify's `raw`). */
interface ClosableResponse {
  writableFinished?: boolean;
  on(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/**
 * The request was abandoned by its client: the work is rolled back, not committed.
 * An HttpException (499, nginx's "client closed request") so Nest does not log it as a
 * crash; nobody is left to read the response anyway.
 */
export class RequestAbortedError extends HttpException {
  constructor(pool: string) {
    super(`pool '${pool}': the client disconnected before the response was sent; the request's work was rolled back`, 499);
    this.name = 'RequestAbortedError';
  }
}

/**
 * Binds a connection to a request for `@UseConnection()`: acquires before the handler,
 * puts the client in scope (`@Conn()`, `currentConnection()`), and releases it once the
 * handler's Observable completes or errors, after COMMIT or ROLLBACK with `transaction`.
 *
 * The transaction and release are the engine's `withConnection`/`withTransaction`, so
 * the rules are the same as anywhere else. If the HTTP client disconnects first, or the
 * subscriber unsubscribes (an interceptor's `timeout()`, an SSE client gone), the
 * statement in flight is cancelled, the work rolled back and the connection released;
 * the pool hands it to no one before the cancel has settled, and the handler, if it goes
 * on, can no longer use it.
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
      settings = this.reflector.getAllAndOverride<UseConnectionSettings | undefined>(USE_CONNECTION_METADATA, [handler, controller]) ?? null;
      byClass.set(controller, settings);
    }
    return settings ?? undefined;
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const settings = this.settings(context);
    // Decorated on both the class and the handler, the interceptor runs twice: the outer
    // run opens the scope, the inner one finds it open and passes through.
    if (!settings || currentScope()?.clients.has(settings.pool)) return next.handle();
    const wanted = this.registry.get(settings.pool);
    const pool = settings.fallback !== undefined && !wanted.available ? this.registry.get(settings.fallback) : wanted;
    const response = context.getType() === 'http' ? closableResponse(context.switchToHttp().getResponse()) : undefined;

    return new Observable<unknown>((subscriber) => {
      let inner: Subscription | undefined;
      let settled = false;
      let aborted = false;
      let client: PooledClient | undefined;
      let stopHandler: ((error: Error) => void) | undefined;
      // The request is abandoned: its HTTP client went away, or the subscriber
      // unsubscribed (an rxjs timeout(), an SSE client gone). Cancel the statement in
      // flight, fence the client off from the handler (a query it still makes throws),
      // and end the work, so that the transaction rolls back and the connection is
      // released.
      const abort = (): void => {
        if (settled || aborted) return;
        aborted = true;
        inner?.unsubscribe();
        if (client) pool.abandon(client);
        stopHandler?.(new RequestAbortedError(settings.pool));
      };
      const onClose = (): void => {
        if (!response?.writableFinished) abort();
      };
      // on/off rather than once: once() wraps the listener in a closure per request.
      response?.on('close', onClose);

      const work = async (acquired: PooledClient): Promise<void> => {
        client = acquired;
        if (aborted) throw new RequestAbortedError(settings.pool);
        await new Promise<void>((resolve, reject) => {
          stopHandler = reject;
          inner = runInConnectionScope(settings.pool, acquired, () => next.handle().subscribe({
            next: (value) => subscriber.next(value),
            error: reject,
            complete: resolve,
          }));
        });
        if (aborted) throw new RequestAbortedError(settings.pool);
      };

      const finish = (): void => {
        // Before the subscriber hears of it: its teardown must not abort finished work.
        settled = true;
        response?.off('close', onClose);
      };
      run(pool, settings, work).then(
        () => {
          finish();
          subscriber.complete();
        },
        (error: unknown) => {
          finish();
          subscriber.error(error);
        },
      );
      return abort;
    });
  }
}

function run(pool: PgPool, settings: UseConnectionSettings, work: (client: PooledClient) => Promise<void>): Promise<void> {
  const acquire = { timeoutMs: settings.timeoutMs };
  return settings.transaction
    ? pool.withTransaction(work, { ...settings.transaction, ...acquire })
    : pool.withConnection(work, acquire);
}

function closableResponse(response: unknown): ClosableResponse | undefined {
  const candidate = (response as { raw?: unknown } | undefined)?.raw ?? response;
  const closable = candidate as Partial<ClosableResponse> | undefined;
  return typeof closable?.on === 'function' && typeof closable.off === 'function' ? closable as ClosableResponse : undefined;
}
