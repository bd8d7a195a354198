import { HttpException, StreamableFile } from '@nestjs/common';
import { ServerResponse } from 'node:http';
import { finished, Readable } from 'node:stream';
import { isObservable, lastValueFrom, Observable, type Subscription } from 'rxjs';
import { withConnectionNow } from '../pool/connection-now.js';
import { beginStatement, settingsStatement } from '../pool/transaction-options.js';
import { runInSavepoint, runTransaction } from '../pool/transaction-runner.js';
import { PoolUsageError, type PgPool, type PooledClient, type TransactionSettings } from '../pool/index.js';
import { abandonWithRequestOf, runInConnectionScope, type AbandonableRequest, type ConnectionScope } from './current-connection.js';
import type { PgPoolRegistry } from './pg-pool.registry.js';
import type { UseConnectionSettings } from './use-connection-options.js';
import { unwatchDisconnect, watchDisconnect, type ClosableResponse, type DisconnectWatch } from './disconnect-watch.js';

export type { ClosableResponse } from './disconnect-watch.js';

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
  // Express's response is a ServerResponse: no need to look for a `raw` it does not have.
  if (response instanceof ServerResponse) return response;
  const candidate = (response as { raw?: unknown } | undefined)?.raw ?? response;
  const closable = candidate as Partial<ClosableResponse> | undefined;
  return typeof closable?.on === 'function' && typeof closable.off === 'function' ? closable as ClosableResponse : undefined;
}

/** The pool a request uses, and the name its client is in scope under. */
export interface BoundPool {
  name: string;
  pool: PgPool;
}

/**
 * The pool a request uses: `settings.pool`, or what its selector picks for the request
 * (a tenant pool, created on first use), or the fallback while that one is down.
 * Synchronous when the pool is open already, the common case.
 */
export function poolFor(registry: PgPoolRegistry, settings: UseConnectionSettings, request?: unknown): BoundPool | Promise<BoundPool> {
  const { pool } = settings;
  if (typeof pool === 'string') return boundTo(registry, settings, pool, false);
  const selected = (pool as (request: unknown) => string | Promise<string>)(request);
  if (typeof selected === 'string') return boundTo(registry, settings, selected, true);
  return Promise.resolve(selected).then((name) => boundTo(registry, settings, name, true));
}

/** The name the binding's errors use before the request's pool is known. */
export function poolLabel(settings: UseConnectionSettings): string {
  return typeof settings.pool === 'string' ? settings.pool : '(selected per request)';
}

/** A selector's id (`tenant`) is looked up among tenant pools only: a request can never reach a registered pool. */
function boundTo(registry: PgPoolRegistry, settings: UseConnectionSettings, name: unknown, tenant: boolean): BoundPool | Promise<BoundPool> {
  if (typeof name !== 'string' || name === '') {
    throw new PoolUsageError(poolLabel(settings), `@UseConnection: the pool selector returned ${name === '' ? 'an empty string' : typeof name}; ` +
      'it must return a database id (throw an HttpException to refuse the request)');
  }
  const found = tenant ? registry.tenantPool(name) : registry.find(name) ?? registry.getOrCreate(name);
  if (!(found instanceof Promise)) return withFallback(registry, settings, name, found);
  return found.then((pool) => withFallback(registry, settings, name, pool));
}

function withFallback(registry: PgPoolRegistry, settings: UseConnectionSettings, name: string, wanted: PgPool): BoundPool {
  return { name, pool: settings.fallback !== undefined && !wanted.available ? registry.get(settings.fallback) : wanted };
}

/**
 * `@UseConnection` as an Observable: for routes whose result an interceptor may
 * unsubscribe from (`timeout()`), SSE handlers, and other transports. Unsubscribing
 * abandons the work (see `runBound`).
 */
export function bindConnection(
  target: BoundPool | Promise<BoundPool>,
  settings: UseConnectionSettings,
  response: ClosableResponse | undefined,
  invoke: (name: string, client: PooledClient) => unknown,
  request: unknown,
  outer: ConnectionScope | undefined,
): Observable<unknown> {
  return new Observable<unknown>((subscriber) => {
    const bound = runBound(target, settings, response, invoke, request, outer, (value) => subscriber.next(value));
    bound.done.then(() => subscriber.complete(), (error: unknown) => subscriber.error(error));
    return bound.abort;
  });
}

/**
 * `@UseConnection` as a promise of the handler's (last) value: for HTTP routes without
 * interceptors, which nothing can unsubscribe from. Nest then has no Observable to pipe
 * through its disconnect handling per request; the client's disconnect is watched here.
 */
export function bindConnectionAsPromise(
  target: BoundPool | Promise<BoundPool>,
  settings: UseConnectionSettings,
  response: ClosableResponse | undefined,
  invoke: (name: string, client: PooledClient) => unknown,
  request: unknown,
  outer: ConnectionScope | undefined,
): Promise<unknown> {
  return runBound(target, settings, response, invoke, request, outer, undefined).done;
}

/** What a handler gives, as a promise: a synchronous throw rejects it, an Observable gives its last value. */
export function settledAsPromise(run: () => unknown): Promise<unknown> {
  let result: unknown;
  try {
    result = run();
  } catch (error) {
    return Promise.reject(error);
  }
  return isObservable(result) ? lastValueFrom(result, { defaultValue: undefined }) : Promise.resolve(result);
}

/**
 * A handler called by code from a handler of its own pool: on that handler's connection,
 * as a promise. With `transaction`, its work is still a transaction of its own: BEGIN …
 * COMMIT when the connection is in none, else a savepoint of the caller's, so that what
 * it did is undone if it throws and the caller's transaction goes on.
 */
export function bindHeldConnection(settings: UseConnectionSettings, client: PooledClient, invoke: () => unknown): Promise<unknown> {
  const { transaction } = settings;
  if (!transaction) return settledAsPromise(invoke);
  const name = poolLabel(settings);
  const work = (): Promise<unknown> => settledAsPromise(invoke);
  try {
    const values = settingsFor(settings, undefined);
    return client.getTransactionStatus() === 'I'
      ? runTransaction(name, client, work, beginStatement(name, transaction), settingsStatement(name, values))
      : runInSavepoint(name, client, work, { ...transaction, settings: values });
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A running binding: its end (the handler's last value, once the connection is back) and its abort. */
interface BoundWork {
  readonly done: Promise<unknown>;
  readonly abort: () => void;
}

/**
 * The heart of `@UseConnection`: acquires a connection, runs the handler (`invoke`,
 * whatever it returns: a value, a promise, an Observable) with the client in scope
 * (`@Conn()`, `currentConnection()`), and releases the client once the handler's result
 * completes or errors, after COMMIT or ROLLBACK with `transaction`. `done` resolves with
 * the handler's last value once the client is back; `onValue` hears each value. `outer`
 * is the scope the binding was called in (a handler's that called this one by code): its
 * request's abandonment abandons this work too, and the new scope is nested in it.
 *
 * The transaction and release are the engine's `withConnection`/`withTransaction`, so the
 * rules are the same as anywhere else. If the HTTP client disconnects first, or the
 * subscriber unsubscribes (an interceptor's `timeout()`, an SSE client gone), the
 * statement in flight is cancelled, the work rolled back and the connection released;
 * the pool hands it to no one before the cancel has settled, and the handler, if it goes
 * on, can no longer use it.
 *
 * With an idle connection at hand, the handler runs before this returns: no promise or
 * turn is spent on waiting for what is there already.
 */
function runBound(
  target: BoundPool | Promise<BoundPool>,
  settings: UseConnectionSettings,
  response: ClosableResponse | undefined,
  invoke: (name: string, client: PooledClient) => unknown,
  request: unknown,
  outer: ConnectionScope | undefined,
  onValue: ((value: unknown) => void) | undefined,
): BoundWork {
  let name = poolLabel(settings);
  let inner: Subscription | undefined;
  let settled = false;
  let aborted = false;
  let client: PooledClient | undefined;
  let stopHandler: ((error: unknown) => void) | undefined;
  let pool: PgPool | undefined;
  let last: unknown;
  /** A stream the handler answered with (a `StreamableFile`'s): it holds the connection until it ends. */
  let body: Readable | undefined;
  /** Set once the handler's answer has gone to Nest ahead of the connection's release (a stream). */
  let handOver: ((value: unknown) => void) | undefined;
  let handedOver = false;
  // The request is abandoned: cancel the statement in flight, fence the client off from
  // the handler (a query it still makes throws), and end the work, so that the
  // transaction rolls back and the connection is released.
  let served: AbandonableRequest | undefined;
  /** What the handler's Observable threw as it was ended here (a `finalize()` that fails). */
  let teardownFailure: { error: unknown } | undefined;
  const abort = (): void => {
    if (settled || aborted) return;
    aborted = true;
    // A teardown that throws must not stop the rest: the connection would stay checked
    // out, and the throw escape into the socket's 'close' listener. It becomes the work's
    // error, which Nest logs, rather than the client's leaving.
    try {
      inner?.unsubscribe();
    } catch (error) {
      teardownFailure = { error };
    }
    if (client) pool?.abandon(client);
    body?.destroy();
    stopHandler?.(teardownFailure ? teardownFailure.error : new RequestAbortedError(name));
    // Handlers this one called (on other pools) belong to the same request.
    if (served) {
      served.abandoned = true;
      if (served.dependents) for (const dependent of served.dependents) dependent();
    }
  };
  // Called from a handler's scope (directly, by code): abandoned with that handler's request.
  abandonWithRequestOf(outer, abort);
  const onClose = (): void => {
    if (!response?.writableFinished) abort();
  };
  const watch: DisconnectWatch = response && watchDisconnect(response, onClose);
  // The client left before the handler was reached (while a guard or a pipe ran, or its
  // body was read): the close event is past, and there is nobody to run the handler for.
  if (response?.closed === true && response.writableFinished !== true) abort();
  const deliver = (value: unknown): void => {
    if (aborted) return;
    last = value;
    onValue?.(value);
  };
  // The handler's final value. A stream is read after the handler has returned (Nest pipes
  // it into the response): it goes to Nest now, and the work (the connection, the
  // transaction) ends when the stream does. Waiting for the release first would wait for
  // a stream nobody reads.
  const conclude = (value: unknown, resolve: () => void, reject: (error: unknown) => void): void => {
    deliver(value);
    const stream = aborted ? undefined : streamOf(value);
    if (stream === undefined || handOver === undefined) return resolve();
    body = stream;
    handedOver = true;
    handOver(value);
    finished(stream, (error) => (error ? reject(error) : resolve()));
  };

  // The handler's work on the client: it reports its end to `resolve` or `reject`, the
  // first call counting (an abort's reject, then the handler ending later, changes
  // nothing). Callbacks rather than a promise of its own: the engine gives the client back
  // as soon as it hears, without a promise and a turn in between.
  const work = (acquired: PooledClient, resolve: (value: unknown) => void, reject: (error: unknown) => void): void => {
    client = acquired;
    if (aborted) return reject(new RequestAbortedError(name));
    stopHandler = reject;
    const finish = (): void => resolve(undefined);
    // `currentConnection: false` opens no scope, unless it runs inside one already (a
    // handler called by another's): then the process pays for AsyncLocalStorage anyway,
    // and without a scope of its own, code below would see the outer pool's client.
    const inScope = settings.inScope !== false || outer !== undefined;
    if (inScope) served = { abandoned: false, dependents: undefined };
    let result: unknown;
    try {
      result = inScope ? runInConnectionScope(name, acquired, served as AbandonableRequest, outer, () => invoke(name, acquired)) : invoke(name, acquired);
    } catch (error) {
      return reject(error);
    }
    if (isObservable(result)) {
      // Subscribed inside the scope too: its work runs when subscribed, and sees the client.
      const observable = result;
      const subscribe = (): Subscription => observable.subscribe({ next: deliver, error: reject, complete: finish });
      inner = inScope ? runInConnectionScope(name, acquired, served as AbandonableRequest, outer, subscribe) : subscribe();
      // Abandoned during subscribe() (a value emitted at once, then take(1)): abort()
      // found no subscription to end yet.
      if (aborted) inner.unsubscribe();
    } else if (result !== null && typeof (result as PromiseLike<unknown>)?.then === 'function') {
      // The common case, a promise: awaited directly, no Observable around it.
      (result as PromiseLike<unknown>).then((value) => conclude(value, finish, reject), reject);
    } else {
      conclude(result, finish, reject);
    }
  };

  const done = new Promise<unknown>((resolve, reject) => {
    handOver = resolve;
    // Settled before the subscriber hears of it: its teardown must not abort finished work.
    const ended = (): void => {
      settled = true;
      unwatchDisconnect(watch, onClose);
      resolve(last);
    };
    const failed = (error: unknown): void => {
      settled = true;
      unwatchDisconnect(watch, onClose);
      if (!handedOver) return reject(error);
      // The stream failed, or the COMMIT after it: the response, if still going out, is
      // cut off rather than ended as if all went well.
      if (response?.writableFinished !== true) response?.destroy?.();
    };
    const start = (bound: BoundPool): void => {
      // Abandoned while a tenant's pool was being created: nothing to acquire for.
      if (aborted) return failed(new RequestAbortedError(bound.name));
      name = bound.name;
      pool = bound.pool;
      const acquire = settings.timeoutMs === undefined ? undefined : { timeoutMs: settings.timeoutMs };
      if (!settings.transaction) return pool[withConnectionNow](work, acquire, ended, failed);
      let running: Promise<unknown>;
      try {
        running = pool.withTransaction((acquired) => new Promise<unknown>((resolve, reject) => work(acquired, resolve, reject)), { ...settings.transaction, ...acquire, settings: settingsFor(settings, request) });
      } catch (error) {
        // A setting's function threw for this request: its answer, nothing acquired.
        return failed(error);
      }
      running.then(ended, failed);
    };
    if (target instanceof Promise) target.then(start, failed);
    else start(target);
  });
  // What a subscriber's teardown does: abandon the work, unless its answer (a stream) went
  // out ahead of it, which then ends with the stream or the client's disconnect.
  const unsubscribed = (): void => {
    if (handedOver) return;
    abort();
    // Whoever unsubscribed hears of a teardown that threw, as rxjs would have told it.
    if (teardownFailure) throw teardownFailure.error;
  };
  return { done, abort: unsubscribed };
}

/** The stream a handler answered with: a `StreamableFile`'s, or a Readable itself. */
function streamOf(value: unknown): Readable | undefined {
  if (value instanceof StreamableFile) return value.getStream() as Readable;
  return value instanceof Readable ? value : undefined;
}

/** The request's transaction-local settings: each fixed value, or its function's value for this request. */
function settingsFor(settings: UseConnectionSettings, request: unknown): TransactionSettings | undefined {
  if (settings.settings === undefined) return undefined;
  const values: Record<string, string | number | boolean | null | undefined> = {};
  for (const [name, source] of Object.entries(settings.settings)) {
    values[name] = typeof source === 'function' ? (source as (request: unknown) => string | number | boolean | null | undefined)(request) : source;
  }
  return values;
}
