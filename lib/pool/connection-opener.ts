import { PoolConnection } from './pool-connection.js';
import type { ResolvedPoolOptions } from './pool-options.js';
import { hostsToTry, sessionMismatch, type HostAddress, type TargetSessionAttrs } from './target-session.js';
import { describeTarget, redactSecret } from './redact.js';

/** Spread `maxLifetimeMs` by up to this fraction, so connections opened together expire apart. */
const LIFETIME_JITTER = 0.05;

/**
 * Opens one server connection with the pool's settings: the `AddConnection` task's work.
 * Resolves with a connection that has run `configure`; rejects with an error whose
 * message names the target and the server's reason, and never the password.
 */
export async function openConnection(
  options: ResolvedPoolOptions,
  onLost: (connection: PoolConnection, error: Error) => void,
): Promise<PoolConnection> {
  const { hosts, targetSessionAttrs: wanted } = options;
  if (hosts.length === 1 && wanted === 'any') return openOn(options, hosts[0], 'any', onLost);
  // Several hosts, or a kind of server to find: libpq's algorithm. Try each host in order
  // until one accepts and matches; with prefer-standby, a second pass takes any server.
  const order = hostsToTry(hosts, options.loadBalanceHosts);
  const passes: TargetSessionAttrs[] = wanted === 'prefer-standby' ? ['standby', 'any'] : [wanted];
  const refusals: string[] = [];
  for (const pass of passes) {
    for (const host of order) {
      try {
        return await openOn(options, host, pass, onLost);
      } catch (error) {
        refusals.push(`${host.host}:${host.port}: ${redactSecret(toError(error).message, passwordOf(options))}`);
      }
    }
  }
  throw new ConnectError(options, new Error(wanted === 'any'
    ? `every host failed: ${refusals.join('; ')}`
    : `no host matched target_session_attrs=${wanted}: ${refusals.join('; ')}`));
}

/** One connection attempt to one host, checked against `wanted`. */
async function openOn(
  options: ResolvedPoolOptions,
  address: HostAddress,
  wanted: TargetSessionAttrs,
  onLost: (connection: PoolConnection, error: Error) => void,
): Promise<PoolConnection> {
  const single = options.hosts.length === 1;
  const client = new options.Client(single ? options.clientConfig : { ...options.clientConfig, host: address.host, port: address.port });
  const startedAt = Date.now();
  const lifetime = options.maxLifetimeMs * (1 - Math.random() * LIFETIME_JITTER);
  const connection = new PoolConnection(client, startedAt, startedAt + lifetime, `${address.host}:${address.port}`);
  const needsWrites = options.targetSessionAttrs === 'read-write' || options.targetSessionAttrs === 'primary';
  // Listen before connecting: a pg client that emits 'error' with no listener takes
  // the whole process down, and a restarting server can do that at any moment.
  const lost = (error: Error): void => {
    if (connection.lostWith) return;
    connection.lostWith = error;
    onLost(connection, error);
  };
  client.on('error', lost);
  client.on('end', () => lost(new Error('connection ended by the server')));
  // A FATAL error response (pg_terminate_backend, admin shutdown) means the server is
  // ending the session, but the socket's 'end' follows only later: a client released
  // in between would look healthy and go to the next user dead. pg emits the server's
  // ErrorResponse as 'errorMessage' on its connection, before failing the query.
  (client as unknown as { connection?: WireEvents }).connection?.on('errorMessage', (message) => {
    if (message.severity === 'FATAL' || message.severity === 'PANIC') {
      lost(new Error(`the server ended the session: ${message.message ?? message.severity}`));
    } else if (needsWrites && message.code === READ_ONLY_SQL_TRANSACTION) {
      // A write refused by a server that turned read-only (a failover demoted it): this
      // connection can never serve a read-write pool again. Dropped on release.
      lost(new Error(`the server is read-only now: ${message.message ?? ''}`));
    }
  });
  try {
    await client.connect();
    const mismatch = await sessionMismatch(client, wanted);
    if (mismatch) throw new Error(mismatch);
    if (options.configure) await options.configure(client);
  } catch (error) {
    client.removeAllListeners('end');
    connection.lostWith = toError(error);
    await client.end().catch(() => undefined);
    throw single && wanted === 'any' ? new ConnectError(options, error) : error;
  }
  return connection;
}

/** SQLSTATE 25006: "cannot execute … in a read-only transaction". */
const READ_ONLY_SQL_TRANSACTION = '25006';

/** The part of pg's internal `Connection` the pool listens to. */
interface WireEvents {
  on(event: 'errorMessage', listener: (message: { severity?: string; message?: string; code?: string }) => void): unknown;
}

/** A failed connection attempt, with the server's reason in a password-free message. */
export class ConnectError extends Error {
  constructor(options: ResolvedPoolOptions, cause: unknown) {
    const reason = redactSecret(toError(cause).message, passwordOf(options));
    super(`cannot connect to ${describeTarget(options.clientConfig, options.hosts)}: ${reason}`);
    this.name = 'ConnectError';
    const code = (cause as { code?: unknown } | null)?.code;
    if (typeof code === 'string') this.code = code;
  }

  /** The server's SQLSTATE (`28P01` bad password, `3D000` unknown database) or Node's (`ECONNREFUSED`). */
  code: string | undefined;
}

export function passwordOf(options: ResolvedPoolOptions): string | undefined {
  const password = options.clientConfig.password;
  return typeof password === 'string' ? password : undefined;
}

export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  // An Error from another realm (a vm context, a worker) fails instanceof but has a message.
  const message = (value as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? Object.assign(new Error(message), value) : new Error(String(value));
}
