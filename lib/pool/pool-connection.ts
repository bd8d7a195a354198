import type { Client } from 'pg';

/**
 * Where a connection is in its life. Exactly one of these at a time, and the pool's
 * bookkeeping (the idle deque, the checked-out count) follows it:
 * - `idle`: in the idle deque, ready to hand out;
 * - `checking`: taken out of the deque for a check (on acquire, keepalive or `check()`);
 * - `in-use`: checked out to a client;
 * - `returning`: released, being rolled back / reset before reuse;
 * - `closed`: removed from the pool; never handed out again.
 */
export type PoolConnectionState = 'idle' | 'checking' | 'in-use' | 'returning' | 'closed';

/** Why a connection left the pool: the `remove` event's second argument. */
export type RemoveReason =
  | 'broken' // the connection died or failed a check
  | 'released-with-error' // the client called release(err) or release(true)
  | 'reset-failed' // ROLLBACK or the `reset` hook failed on return
  | 'lifetime' // older than maxLifetimeMs
  | 'idle' // idle above min longer than maxIdleMs
  | 'keepalive' // failed a keepalive check
  | 'resize' // the pool shrank below its size
  | 'closed'; // the pool closed

/**
 * One server connection as the pool sees it: the pg client and the facts the engine
 * needs about it. The client itself is what users get; this record never leaves the pool.
 */
export class PoolConnection {
  state: PoolConnectionState = 'idle';
  /** When it last went idle: for `maxIdleMs`. */
  idleSince: number;
  /** The first error the client reported (socket closed, backend terminated). */
  lostWith: Error | undefined;
  /** Bumped at each checkout, so a `release` kept from an earlier checkout is recognised. */
  checkouts = 0;
  checkedOutAt = 0;

  constructor(
    readonly client: Client,
    readonly createdAt: number,
    /** `createdAt + maxLifetimeMs` minus up to 5% jitter, so a pool's connections don't all expire together. */
    readonly expiresAt: number,
  ) {
    this.idleSince = createdAt;
  }

  get isLost(): boolean {
    return this.lostWith !== undefined;
  }
}
