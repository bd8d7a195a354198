import { EventEmitter } from 'node:events';
import type { Client } from 'pg';

interface FakeResult {
  rows: never[];
  rowCount: 0;
  command: string;
}

/** A fresh empty result per query, as pg gives. */
const emptyResult = (): FakeResult => ({ rows: [], rowCount: 0, command: 'SELECT' });

/**
 * A client that does nothing, for measuring a pool's own cost: connect, query and end
 * complete at once. It speaks both styles the pools use: pg.Pool (pg-pool) calls
 * `connect(callback)`, PgPool awaits `connect()`.
 */
export class FakeClient extends EventEmitter {
  readyForQuery = true;

  connect(callback?: (error?: Error) => void): Promise<void> | void {
    if (callback) {
      process.nextTick(callback);
      return;
    }
    return Promise.resolve();
  }

  /** Answers at once, as a promise, or through a callback (pg.Pool's `query` passes one). */
  query(_config?: unknown, values?: unknown, callback?: unknown): Promise<FakeResult> | undefined {
    const done = typeof values === 'function' ? values : callback;
    if (typeof done === 'function') {
      queueMicrotask(() => (done as (error: Error | null, result: FakeResult) => void)(null, emptyResult()));
      return undefined;
    }
    return Promise.resolve(emptyResult());
  }

  getTransactionStatus(): 'I' {
    return 'I';
  }

  end(callback?: () => void): Promise<void> | void {
    if (callback) {
      process.nextTick(callback);
      return;
    }
    return Promise.resolve();
  }
}

/** The fake client as the pools' option types want it. */
export const FakeClientClass = FakeClient as unknown as typeof Client;
