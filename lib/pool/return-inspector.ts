import { toError } from './connection-opener.js';
import type { PoolConnection, RemoveReason } from './pool-connection.js';
import type { ResolvedPoolOptions } from './pool-options.js';
import type { PoolCounters } from './pool-stats.js';
import { sessionMismatch } from './target-session.js';
import { TimeoutError, withTimeout } from './with-timeout.js';

/** What a returned connection's inspection found: reuse it, or close it and why. */
export type ReturnVerdict =
  | { reuse: true }
  | { reuse: false; reason: RemoveReason; lost: boolean };

const REUSE: ReturnVerdict = { reuse: true };

/**
 * The `ReturnConnection` task's inspection, after psycopg_pool: before a released
 * connection goes to anyone else, a cancel on it settles and a statement still on the
 * wire ends; a transaction left open is rolled back (counted in `returnsBad`); the
 * `reset` hook runs, and must leave the connection idle; a connection that saw a
 * "read-only transaction" error on a read-write pool asks the server whether it was
 * demoted. Each step is bounded by `boundMs`: past it the socket is destroyed, so a
 * server that stopped answering cannot hold the pool's slots. It decides; the pool acts.
 */
export class ReturnInspector {
  constructor(
    private readonly settings: ResolvedPoolOptions,
    private readonly counters: PoolCounters,
    /** The bound on each step, in ms. */
    private readonly boundMs: number,
  ) {}

  /** Nothing to wait for, roll back or reset: the connection can go back at once. */
  isClean(connection: PoolConnection): boolean {
    if (connection.isLost || connection.isBusy || this.settings.reset || connection.cancelling || connection.suspectReadOnly) return false;
    if (this.settings.resetOnReturn === 'always' || (connection.sessionChanged && this.settings.resetOnReturn === 'auto')) return false;
    const status = connection.client.getTransactionStatus();
    return status !== 'T' && status !== 'E';
  }

  /** The slow path: waits, rolls back, resets and asks as needed, within the bounds. */
  async inspect(connection: PoolConnection): Promise<ReturnVerdict> {
    const bound = this.boundMs;
    let timedOut = false;
    const step = async (work: () => Promise<unknown>, what: string): Promise<void> => {
      await withTimeout(work(), bound, `${what} took more than ${bound} ms`).catch((error: unknown) => {
        timedOut = error instanceof TimeoutError;
        throw error;
      });
    };
    try {
      // A statement being cancelled: nobody gets the connection before the server has
      // taken the CancelRequest, or the cancel could land on the next user's statement.
      if (connection.cancelling) await step(() => connection.cancelling as Promise<unknown>, 'the cancel request');
      if (connection.isBusy) await step(() => connection.whenIdle(), 'waiting for the statement in flight');
      if (connection.isLost) {
        this.counters.returnsBad++;
        return { reuse: false, reason: 'broken', lost: true };
      }
      const status = connection.client.getTransactionStatus();
      if (status === 'T' || status === 'E') {
        this.counters.returnsBad++;
        await step(() => connection.client.query('ROLLBACK'), 'ROLLBACK');
      }
      const { resetOnReturn } = this.settings;
      if (resetOnReturn === 'always' || (resetOnReturn === 'auto' && connection.sessionChanged)) {
        // Settings and role back to the session's defaults; RESET ROLE as well, which RESET ALL may leave.
        await step(() => connection.client.query('RESET ALL; RESET ROLE; RESET SESSION AUTHORIZATION'), 'RESET ALL');
        // The connection as new: what `configure` set at connect time is set again.
        const { configure } = this.settings;
        if (configure) await step(async () => configure(connection.client), 'configure after RESET ALL');
      }
      connection.sessionChanged = false;
      const { reset } = this.settings;
      if (reset) {
        await step(async () => reset(connection.client), 'the reset hook');
        if (connection.client.getTransactionStatus() !== 'I' || connection.isBusy) {
          throw new Error('the `reset` hook left the connection inside a transaction or with a query running; ' +
            'await every query it runs and end any transaction it opens');
        }
      }
      if (connection.suspectReadOnly && !connection.isLost) {
        // A 25006 was seen: the user's own read-only transaction, or a demoted primary.
        connection.suspectReadOnly = false;
        let mismatch: string | undefined;
        await step(async () => {
          mismatch = await sessionMismatch(connection.client, this.settings.target.targetSessionAttrs);
        }, 'the read-only check');
        if (mismatch) connection.lostWith = new Error(`the server ${mismatch} now`);
      }
    } catch (error) {
      this.settings.logger.warn(`pool '${this.settings.name}': a returned connection could not be reset, closing it: ` +
        this.settings.target.redact(toError(error).message));
      // Past the bound the peer is not answering: shut the socket now.
      if (timedOut) connection.destroy();
      return { reuse: false, reason: 'reset-failed', lost: false };
    } finally {
      connection.cancelling = undefined;
    }
    return connection.isLost ? { reuse: false, reason: 'broken', lost: true } : REUSE;
  }
}
