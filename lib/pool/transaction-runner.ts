import type { QueryResult } from 'pg';
import { connectionOf } from './checkout-handle.js';
import { PoolUsageError, TransactionRolledBackError } from './errors.js';
import type { PooledClient } from './pooled-client.js';
import type { TransactionOptions } from './transaction-options.js';

/** A statement and its parameters. */
interface Statement {
  text: string;
  values: unknown[];
}

/**
 * The pool's own statements go to the client itself: they must run even when the handle
 * was fenced off by abandon(), and they are transaction-local, nothing for
 * `resetOnReturn` to undo.
 */
function own(client: PooledClient): PooledClient {
  return (connectionOf(client)?.client ?? client) as PooledClient;
}

/**
 * Runs `fn` inside `begin` … COMMIT on `client`, with `settings` applied after BEGIN, or
 * ROLLBACK if it throws. If PostgreSQL turns the COMMIT into a rollback (a statement
 * failed and `fn` swallowed the error), this rejects.
 */
export async function runTransaction<T>(
  poolName: string,
  client: PooledClient,
  fn: (client: PooledClient) => PromiseLike<T> | T,
  begin: string,
  settings: Statement | undefined,
): Promise<T> {
  await client.query(begin);
  let result: T;
  try {
    if (settings) await own(client).query(settings.text, settings.values);
    result = await fn(client);
  } catch (error) {
    await own(client).query('ROLLBACK').catch(() => undefined);
    throw error;
  }
  const commit: QueryResult = await client.query('COMMIT');
  if (commit.command === 'ROLLBACK') {
    throw new TransactionRolledBackError(poolName, 'the transaction was rolled back at COMMIT because a statement in it failed');
  }
  return result;
}

const SAVEPOINT = 'nestjs_pg_pool_nested';

/**
 * Runs `fn` as a part of the transaction `client` is in already (a handler with a
 * transaction called by one of the same pool in its own): inside a SAVEPOINT, released
 * on success, rolled back to if `fn` throws, so that its work is undone and the outer
 * transaction goes on. PostgreSQL uses the latest savepoint of a name, so nesting deeper
 * needs no other names. What only BEGIN can set is refused, rather than silently dropped.
 */
export async function runInSavepoint<T>(
  poolName: string,
  client: PooledClient,
  fn: (client: PooledClient) => PromiseLike<T> | T,
  options: TransactionOptions,
): Promise<T> {
  const refused = (['isolationLevel', 'readOnly', 'deferrable', 'settings'] as const).filter((key) => options[key] !== undefined);
  if (refused.length > 0) {
    throw new PoolUsageError(poolName, `a transaction with ${refused.join(', ')} cannot run inside the transaction of the handler ` +
      'that called it on the same connection (it runs as a savepoint of that one); set them on the outer handler, ' +
      'or give the inner one a pool of its own');
  }
  await client.query(`SAVEPOINT ${SAVEPOINT}`);
  let result: T;
  try {
    result = await fn(client);
  } catch (error) {
    await own(client).query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`).catch(() => undefined);
    throw error;
  }
  await client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
  return result;
}
