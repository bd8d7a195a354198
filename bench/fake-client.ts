import { EventEmitter } from 'node:events';
import type { Client } from 'pg';

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

  query(): Promise<{ rows: never[]; rowCount: 0; command: string }> {
    return Promise.resolve({ rows: [], rowCount: 0, command: 'SELECT' });
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
