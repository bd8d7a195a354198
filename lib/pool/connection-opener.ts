import { monotonicNow } from './clock.js';
import { inPoolContext } from './detached-context.js';
import { ConnectError } from './errors.js';
import { PoolConnection } from './pool-connection.js';
import { LATE, raceDeadline, TimeoutError, withTimeout } from './with-timeout.js';
import { workBoundMs, type ResolvedPoolOptions } from './pool-options.js';
import { explainTlsFailure } from './tls.js';
import { hostsToTry, sessionMismatch, type HostAddress, type TargetSessionAttrs } from './target-session.js';

/** Spread `maxLifetimeMs` by up to this fraction, so connections opened together expire apart. */
const LIFETIME_JITTER = 0.05;

/**
 * Opens one server connection with the pool's settings: the `AddConnection` task's work.
 * Resolves with a connection that has run `configure`; rejects with an error whose
 * message names the target and the server's reason, and never the password.
 */
export function openConnection(
  options: ResolvedPoolOptions,
  onLost: (connection: PoolConnection, error: Error) => void,
  /** Holds each connection while it is being opened, so that close() can cut it short. */
  inFlight: Set<PoolConnection>,
): Promise<PoolConnection> {
  return inPoolContext(() => connectToTarget(options, options.target.targetSessionAttrs, (host, pass) => openOn(options, host, pass, onLost, inFlight)));
}

/**
 * libpq's multi-host algorithm, for every connection the pool makes (pooled ones and the
 * LISTEN session): try each host in order (shuffled with `loadBalanceHosts`) until one
 * accepts and matches `wanted`; with prefer-standby, a second pass takes any server.
 * Rejects with a `ConnectError` listing each host's reason, password-free.
 */
export async function connectToTarget<T>(
  options: ResolvedPoolOptions,
  wanted: TargetSessionAttrs,
  attempt: (host: HostAddress, pass: TargetSessionAttrs) => Promise<T>,
): Promise<T> {
  const { hosts, loadBalanceHosts } = options.target;
  if (hosts.length === 1 && wanted === 'any') {
    try {
      return await attempt(hosts[0], 'any');
    } catch (error) {
      throw connectErrorOf(options, error);
    }
  }
  const order = hostsToTry(hosts, loadBalanceHosts);
  const passes: TargetSessionAttrs[] = wanted === 'prefer-standby' ? ['standby', 'any'] : [wanted];
  const refusals: string[] = [];
  for (const pass of passes) {
    for (const host of order) {
      try {
        return await attempt(host, pass);
      } catch (error) {
        refusals.push(`${host.host}:${host.port}: ${options.target.redact(reasonOf(error))}`);
      }
    }
  }
  throw connectErrorOf(options, new Error(wanted === 'any'
    ? `every host failed: ${refusals.join('; ')}`
    : `no host matched target_session_attrs=${wanted}: ${refusals.join('; ')}`));
}

/** One connection attempt to one host, checked against `wanted`. */
async function openOn(
  options: ResolvedPoolOptions,
  address: HostAddress,
  wanted: TargetSessionAttrs,
  onLost: (connection: PoolConnection, error: Error) => void,
  inFlight: Set<PoolConnection>,
): Promise<PoolConnection> {
  const client = new options.Client(options.target.configFor(address));
  const startedAt = monotonicNow();
  const lifetime = options.maxLifetimeMs * (1 - Math.random() * LIFETIME_JITTER);
  const connection = new PoolConnection(client, startedAt, startedAt + lifetime, address);
  inFlight.add(connection);
  try {
    return await setUp(options, connection, wanted, onLost);
  } finally {
    inFlight.delete(connection);
  }
}

/** Connects, checks the kind of server and runs `configure`; closes the client on failure. */
async function setUp(
  options: ResolvedPoolOptions,
  connection: PoolConnection,
  wanted: TargetSessionAttrs,
  onLost: (connection: PoolConnection, error: Error) => void,
): Promise<PoolConnection> {
  const { client } = connection;
  const needsWrites = options.target.targetSessionAttrs === 'read-write' || options.target.targetSessionAttrs === 'primary';
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
      // A write refused as read-only: a failover demoted the server (the connection can
      // never serve this pool again), or the user's own `BEGIN READ ONLY`. The pool asks
      // the server which when the connection comes back.
      connection.suspectReadOnly = true;
    }
  });
  try {
    await client.connect();
    // Past connect, pg's connectionTimeoutMillis no longer applies: the session check and
    // `configure` get the pool's work bound, or a hook that hangs would hold the attempt
    // (and so the pool's only probe of a failing server) for ever.
    const bound = workBoundMs(options);
    const mismatch = await withTimeout(sessionMismatch(client, wanted), bound, `the session check took more than ${bound} ms`);
    if (mismatch) throw new Error(mismatch);
    const { configure } = options;
    if (configure) {
      await withTimeout(Promise.resolve(configure(client)), bound, `the \`configure\` hook took more than ${bound} ms`);
      // A hook that left a transaction open (BEGIN without COMMIT) or a query running
      // would hand its state to the first user: refuse the connection, as psycopg does.
      const status = client.getTransactionStatus();
      if (status !== 'I' || connection.isBusy) {
        throw new Error(`the \`configure\` hook left the connection ${status === 'I' ? 'with a query running' : 'inside a transaction'}; ` +
          'await every query it runs and end any transaction it opens (COMMIT)');
      }
    }
    // Lost while being set up (its backend terminated during `configure`): never pooled.
    if (connection.lostWith) throw connection.lostWith;
  } catch (error) {
    client.removeAllListeners('end');
    connection.lostWith = toError(error);
    // A hook that timed out may still have a statement on the wire: no handshake then.
    if (error instanceof TimeoutError) connection.destroy();
    await endWithin(connection, END_TIMEOUT_MS);
    throw error;
  }
  return connection;
}

/**
 * How long `client.end()` may take before the socket is destroyed instead: the Terminate
 * handshake needs an answering peer, and a black-holed one would hold it forever.
 */
export const END_TIMEOUT_MS = 1_000;

/** Ends a connection's client within `timeoutMs`, destroying its socket past that; never rejects. */
export async function endWithin(connection: PoolConnection, timeoutMs: number): Promise<void> {
  const ended = await raceDeadline(connection.client.end().catch(() => undefined), timeoutMs, true);
  if (ended === LATE) connection.destroy();
}

/** SQLSTATE 25006: "cannot execute … in a read-only transaction". */
const READ_ONLY_SQL_TRANSACTION = '25006';

/** The part of pg's internal `Connection` the pool listens to. */
interface WireEvents {
  on(event: 'errorMessage', listener: (message: { severity?: string; message?: string; code?: string }) => void): unknown;
}

/** A `ConnectError` for one failed attempt: the server's reason, password-free, and its code. */
export function connectErrorOf(options: ResolvedPoolOptions, cause: unknown): ConnectError {
  if (cause instanceof ConnectError) return cause;
  const code = (cause as { code?: unknown } | null)?.code;
  return new ConnectError(options.name, options.target.describe(), options.target.redact(reasonOf(cause)),
    typeof code === 'string' ? code : undefined);
}

/** Why an attempt failed: the error's message, or for a TLS failure what to change (see tls.ts). */
function reasonOf(cause: unknown): string {
  const error = toError(cause);
  return explainTlsFailure(error) ?? error.message;
}

export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  // An Error from another realm (a vm context, a worker) fails instanceof but has a message.
  const message = (value as { message?: unknown } | null)?.message;
  return typeof message === 'string' ? Object.assign(new Error(message), value) : new Error(String(value));
}
