import type { ClientBase, PoolClient, PoolConfig } from 'pg';
import type { PoolLogger } from './pool-logger.js';
import type { ClientHook, PgConnectionConfig, PgPoolOptions } from './pool-options.js';

/**
 * pg.Client's connection settings, which `pg.Pool` takes at the top level of its config
 * and hands to every client it creates. `PgPool` accepts them there too and moves them
 * into `connection`. (`connectionTimeoutMillis` is a pool setting here: see below.)
 */
export const PG_CLIENT_KEYS: ReadonlySet<string> = new Set([
  'user', 'database', 'password', 'port', 'host', 'keepAlive', 'keepAliveInitialDelayMillis', 'stream', 'ssl',
  'sslnegotiation', 'enableChannelBinding', 'statement_timeout', 'query_timeout', 'lock_timeout',
  'idle_in_transaction_session_timeout', 'application_name', 'fallback_application_name', 'types', 'options',
  'client_encoding', 'binary', 'pipeline', 'replication', 'scramMaxIterations', 'parseInputDatesAsUTC',
]);

/** pg-pool's own settings that have another name (or no twin) here; translated below. */
export const PG_POOL_KEYS: ReadonlySet<string> = new Set([
  'idleTimeoutMillis', 'connectionTimeoutMillis', 'maxLifetimeSeconds', 'log', 'onConnect', 'verify', 'Promise', 'poolSize',
]);

/**
 * What `new PgPool(config)` takes: our options, and everything `new pg.Pool(config)`
 * takes, with pg.Pool's meaning. Where a pg.Pool name and ours set the same thing
 * (`idleTimeoutMillis` and `maxIdleMs`), ours wins.
 */
export type PgPoolConfig = PgPoolOptions & Omit<PoolConfig, keyof PgPoolOptions | 'Client'> & {
  /** pg-pool's old name of `max`. */
  poolSize?: number;
};

/** A lifetime or idle time of "never" (pg.Pool's 0). */
const NEVER = Number.POSITIVE_INFINITY;

/**
 * Translates a pg.Pool-style config into `PgPoolOptions`: connection settings into
 * `connection` (whose own fields win), pg-pool's pool settings onto ours. Keys of
 * neither kind are left for `resolvePoolOptions`, which refuses the unknown ones.
 */
export function fromPgPoolConfig(config: PgPoolConfig, fail: (message: string) => never): PgPoolOptions {
  const options: Record<string, unknown> = {};
  const connection: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(config)) {
    if (PG_CLIENT_KEYS.has(key)) connection[key] = value;
    else if (!PG_POOL_KEYS.has(key)) options[key] = value;
  }
  const translated = options as PgPoolOptions;
  if (Object.keys(connection).length > 0) {
    translated.connection = { ...(connection as PgConnectionConfig), ...config.connection };
  }
  const {
    idleTimeoutMillis, connectionTimeoutMillis, maxLifetimeSeconds, log, onConnect, verify, Promise: promiseClass, poolSize,
  } = config;

  if (poolSize !== undefined && translated.max === undefined) translated.max = poolSize;
  // pg.Pool: 0 or null = an idle client is never closed.
  if (idleTimeoutMillis !== undefined && translated.maxIdleMs === undefined) {
    translated.maxIdleMs = idleTimeoutMillis === 0 || idleTimeoutMillis === null ? NEVER : idleTimeoutMillis;
  }
  // pg.Pool: 0 = never expire.
  if (maxLifetimeSeconds !== undefined && translated.maxLifetimeMs === undefined) {
    if (typeof maxLifetimeSeconds !== 'number') fail(`\`maxLifetimeSeconds\` must be a number, not ${String(maxLifetimeSeconds)}`);
    translated.maxLifetimeMs = maxLifetimeSeconds === 0 ? NEVER : Math.round(maxLifetimeSeconds * 1000);
  }
  // pg.Pool's one timeout bounds both the wait for a client and opening one. Its 0 ("wait
  // for ever") keeps our defaults: a request that can wait for ever is what we set out to end.
  if (connectionTimeoutMillis !== undefined && connectionTimeoutMillis !== 0) {
    translated.acquireTimeoutMs ??= connectionTimeoutMillis;
    translated.connectTimeoutMs ??= connectionTimeoutMillis;
  }
  if (log !== undefined && translated.logger === undefined) {
    if (typeof log !== 'function') fail('`log` must be a function (message, ...details) => void');
    translated.logger = loggerFromLog(log);
  }
  if ((onConnect !== undefined || verify !== undefined) && translated.configure === undefined) {
    if (onConnect !== undefined && typeof onConnect !== 'function') fail('`onConnect` must be a function (client) => Promise<void>');
    if (verify !== undefined && typeof verify !== 'function') fail('`verify` must be a function (client, done) => void');
    translated.configure = configureFrom(onConnect, verify);
  }
  if (promiseClass !== undefined && promiseClass !== globalThis.Promise) {
    fail('`Promise`: a custom Promise class is not supported (pg deprecated it); PgPool returns native promises');
  }
  return translated;
}

/** pg-pool's `log(message, ...details)` as a `PoolLogger`: every line goes to it. */
function loggerFromLog(log: (...messages: unknown[]) => void): PoolLogger {
  return { debug: log, log, warn: log, error: log };
}

/** pg-pool's `onConnect(client)` and `verify(client, done)`, run in that order on each new connection. */
function configureFrom(
  onConnect: ((client: ClientBase) => unknown) | undefined,
  verify: ((client: PoolClient, done: (error?: Error) => void) => void) | undefined,
): ClientHook {
  return async (client) => {
    if (onConnect) await onConnect(client);
    if (verify) {
      await new Promise<void>((resolve, reject) => {
        verify(client as PoolClient, (error) => (error ? reject(error) : resolve()));
      });
    }
  };
}
