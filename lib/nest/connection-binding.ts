import { HttpException } from '@nestjs/common';
import { from, isObservable, Observable, of, type Subscription } from 'rxjs';
import type { PgPool, PooledClient } from '../pool/index.js';
import { runInConnectionScope } from './current-connection.js';
import type { PgPoolRegistry } from './pg-pool.registry.js';
import type { UseConnectionSettings } from './use-connection-options.js';

/** The HTTP response as far as disconnect detection needs it (Express's, or Fastify's `raw`). */
export interface ClosableResponse {
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

/** Express's response, or the raw Node response under Fastify's reply, if it can tell us the client left. */
export function closableResponse(response: unknown): ClosableResponse | undefined {
  const candidate = (response as { raw?: unknown } | undefined)?.raw ?? response;
  const closable = candidate as Partial<ClosableResponse> | undefined;
  return typeof closable?.on === 'function' && typeof closable.off === 'function' ? closable as ClosableResponse : undefined;
}

/** The pool a request uses: `settings.pool`, or its fallback while that one is down. */
export function poolFor(registry: PgPoolRegistry, settings: UseConnectionSettings): PgPool {
  const wanted = registry.get(settings.pool);
  return settings.fallback !== undefined && !wanted.available ? registry.get(settings.fallback) : wanted;
}

/**
 * The heart of `@UseConnection`: an Observable that acquires a connection, runs the
 * handler (`invoke`, whatever it returns: a value, a promise, an Observable) with the
 * client in scope (`@Conn()`, `currentConnection()`), and releases the client once the
 * handler's result completes or errors, after COMMIT or ROLLBACK with `transaction`.
 *
 * The transaction and release are the engine's `withConnection`/`withTransaction`, so the
 * rules are the same as anywhere else. If the HTTP client disconnects first, or the
 * subscriber unsubscribes (an interceptor's `timeout()`, an SSE client gone), the
 * statement in flight is cancelled, the work rolled back and the connection released;
 * the pool hands it to no one before the cancel has settled, and the handler, if it goes
 * on, can no longer use it.
 */
export function bindConnection(
  pool: PgPool,
  settings: UseConnectionSettings,
  response: ClosableResponse | undefined,
  invoke: () => unknown,
): Observable<unknown> {
  return new Observable<unknown>((subscriber) => {
    let inner: Subscription | undefined;
    let settled = false;
    let aborted = false;
    let client: PooledClient | undefined;
    let stopHandler: ((error: Error) => void) | undefined;
    // The request is abandoned: cancel the statement in flight, fence the client off from
    // the handler (a query it still makes throws), and end the work, so that the
    // transaction rolls back and the connection is released.
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
        inner = runInConnectionScope(settings.pool, acquired, () => toObservable(invoke).subscribe({
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
    const acquire = { timeoutMs: settings.timeoutMs };
    const running = settings.transaction
      ? pool.withTransaction(work, { ...settings.transaction, ...acquire })
      : pool.withConnection(work, acquire);
    running.then(
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

/** What a handler returned, as an Observable; a throw becomes its error. */
function toObservable(invoke: () => unknown): Observable<unknown> {
  let result: unknown;
  try {
    result = invoke();
  } catch (error) {
    return new Observable((subscriber) => subscriber.error(error));
  }
  if (isObservable(result)) return result;
  if (result !== null && typeof (result as PromiseLike<unknown>)?.then === 'function') return from(result as PromiseLike<unknown>);
  return of(result);
}
