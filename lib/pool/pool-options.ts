import pg, { type Client, type ClientBase, type ClientConfig } from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import { ConnectionTarget } from './connection-target.js';
import { ConnectionBudget } from './connection-budget.js';
import { PoolConfigError, type ConnectError } from './errors.js';
import type { PoolStats } from './pool-stats.js';
import { parseHostPort, sessionMismatch, splitHostList, TARGET_SESSION_ATTRS, type HostAddress, type TargetSessionAttrs } from './target-session.js';
import { defaultPoolLogger, type PoolLogger } from './pool-logger.js';
import { fromPgPoolConfig, PG_CLIENT_KEYS, PG_POOL_KEYS, type PgPoolConfig } from './pg-pool-config.js';
import type { MultiplexSettings } from './multiplexer.js';


/** A hook run with a pool's client: a `configure`, `reset` or custom check. */
export type ClientHook = (client: ClientBase) => Promise<unknown> | unknown;

/**
 * The class the pool instantiates for each connection; `pg.Client` unless told otherwise.
 * Typed as pg.Pool's `Client` option is, so a `pg.PoolConfig` is accepted as it is; it
 * must be `pg.Client` or a subclass.
 */
export type ClientConstructor = new (config?: ClientConfig) => ClientBase;

/** `pg.Client` or a subclass, as the pool instantiates it. */
export type PgClientClass = new (config?: ClientConfig) => Client;

/**
 * The pool as `onReconnectFailed` sees it: enough to report, and to close it or exit.
 * (A `PgPool` is one; the options do not depend on the pool class.)
 */
export interface ReconnectingPool {
  /** The pool's name. */
  readonly name: string;
  /** Where it connects, `host:port/database`. */
  readonly target: string;
  /** Its stats now. */
  getStats(): PoolStats;
  /** Closes it (see `PgPool.close`). */
  close(options?: { timeoutMs?: number }): Promise<void>;
}

/** What a pool's `onReconnectFailed` hook receives. */
export interface ReconnectFailedInfo {
  /** The pool's name. */
  name: string;
  /** The last failed attempt: the server's or the network's reason, password-free. */
  lastError: ConnectError | undefined;
  /** How long the pool has been failing to connect, in ms. */
  failingForMs: number;
}

/** A pool's options; every one but the connection settings has a default (`POOL_DEFAULTS`). */
export interface PgPoolOptions {
  /** The database id: in logs, errors and stats. Default `'default'`. */
  name?: string;
  /** A `postgresql://` URL, parsed with `pg-connection-string`. */
  connectionString?: string;
  /**
   * A `pg.ClientConfig`; its fields override those parsed from `connectionString`. `hosts`
   * lists several servers (`['h1:5432', { host: 'h2', port: 5433 }]`), tried in order.
   */
  connection?: PgConnectionConfig;
  /**
   * libpq's `target_session_attrs`: `any` (default), `read-write`, `read-only`, `primary`,
   * `standby` or `prefer-standby`. Each new connection tries the hosts until one matches.
   * Also read from the URL (`?target_session_attrs=read-write`).
   */
  targetSessionAttrs?: TargetSessionAttrs;
  /** libpq's `load_balance_hosts=random`: try the hosts in random order. Default false. */
  loadBalanceHosts?: boolean;
  /** Connections kept open. Default 4. */
  min?: number;
  /** Hard cap on connections. Default `min`. */
  max?: number;
  /** How long `acquire()` waits before a `PoolTimeoutError`. Default 30000. */
  acquireTimeoutMs?: number;
  /** More waiting requests than this get a `TooManyRequestsError` at once; 0 = unbounded. */
  maxWaiting?: number;
  /** A connection older than this (minus up to 5% jitter) is replaced when idle. Default 1 h. */
  maxLifetimeMs?: number;
  /** Above `min`, a connection idle this long is closed. Default 10 min. */
  maxIdleMs?: number;
  /** After this long failing to connect, `onReconnectFailed` runs. Default 5 min. */
  reconnectTimeoutMs?: number;
  /**
   * Runs once reconnecting has failed for `reconnectTimeoutMs` (psycopg_pool's
   * `reconnect_failed`); default: logs an error. The pool keeps trying either way,
   * on the longest interval; call `process.exit(1)` here to let an orchestrator restart the app.
   */
  onReconnectFailed?: (pool: ReconnectingPool, info: ReconnectFailedInfo) => void;
  /** First delay between failed connection attempts; doubles each time (±10% jitter). Default 1000. */
  reconnectDelayMs?: number;
  /** The longest delay between failed connection attempts. Default 30000. */
  reconnectMaxDelayMs?: number;
  /** `true`: run `SELECT 1` on an idle connection before handing it out; or a check of your own. */
  checkOnAcquire?: boolean | ClientHook;
  /** Runs on each new connection before first use (SET, types, application_name). */
  configure?: ClientHook;
  /** Runs on each returned connection before reuse; a throw discards the connection. */
  reset?: ClientHook;
  /** `'fifo'` spreads use evenly over connections; `'lifo'` reuses the most recent. Default `'fifo'`. */
  order?: 'fifo' | 'lifo';
  /** The maintainer checks idle connections this often; 0 = off. Default 0. */
  keepaliveIntervalMs?: number;
  /**
   * How long opening one connection may take (TCP, TLS, auth); also the longest a
   * `checkOnAcquire` or keepalive check may take before the connection counts as dead.
   * Default 10000.
   */
  connectTimeoutMs?: number;
  /**
   * HikariCP's leak detection: a client checked out longer than this is reported once,
   * at warn level, with the stack of the code that acquired it. 0 = off (default).
   */
  leakDetectionMs?: number;
  /**
   * While the server is down (no connection open and the latest attempt failed), a
   * request waits this long, not its whole acquire timeout, then fails with a
   * `PoolUnavailableError` carrying the server's reason. A restart shorter than this is
   * ridden out. 0 = wait the whole acquire timeout. Default 3000.
   */
  unavailableTimeoutMs?: number;
  /**
   * Whether the pool schedules its own maintenance passes. Default true; the Nest module
   * sets false and its `PgPoolMaintenanceService` calls `runMaintenance()` instead.
   */
  scheduleMaintenance?: boolean;
  /** Where the pool writes its log lines; default: the console, warnings and errors only. */
  logger?: PoolLogger;
  /** The client class to instantiate (pg.Pool's `Client` option). Default `pg.Client`. */
  Client?: ClientConstructor;
  /**
   * pg.Pool's `maxUses`: a connection is closed (and replaced) after this many checkouts,
   * so that connections spread again over servers behind a load balancer. Default: no limit.
   */
  maxUses?: number;
  /**
   * pg.Pool's `allowExitOnIdle`: while every connection is idle, they do not keep the
   * Node process alive, so a script can end without `end()`. Default false.
   */
  allowExitOnIdle?: boolean;
  /**
   * Multiplexing: `pool.query()` statements (SELECT, INSERT, UPDATE, DELETE, WITH...) are
   * pipelined onto shared connections, each to the one with the least outstanding work,
   * instead of taking a connection each. `true` for the defaults, or `{ depth, connections }`:
   * statements in flight per shared connection (default 64), shared connections at most
   * (default `max`; they count towards `max`). Checkouts still get a connection of their
   * own. Default off.
   */
  multiplex?: boolean | MultiplexOptions;
  /**
   * What the pool resets on a returned connection, so that a session-level change made by
   * a borrower (`SET app.tenant_id`, `SET ROLE`, `SET search_path`) never reaches the next
   * one: `'auto'` (default) runs `RESET ALL` (and `RESET ROLE`) after a checkout that sent
   * a SET, RESET, DISCARD or set_config() statement, and nothing otherwise; `'always'`
   * after every checkout (a round trip each, but settings changed inside functions are
   * caught too); `'never'` trusts the code. Transaction-local settings need none of it.
   */
  resetOnReturn?: 'auto' | 'always' | 'never';
  /**
   * A connection budget this pool shares with others (`new ConnectionBudget(20)`): the
   * pools sharing one never have more connections open together than its `max`, each
   * still within its own `max`. For a database per tenant; see docs/tenants.md.
   */
  budget?: ConnectionBudget;
}

/** The `multiplex` option's settings. */
export interface MultiplexOptions {
  /** Statements in flight per shared connection, at most. Default 64. */
  depth?: number;
  /** Shared connections at most; they count towards `max`. Default `max`. */
  connections?: number;
}

/** `pg.ClientConfig`, plus a list of servers to try in order (libpq's multi-host). */
export interface PgConnectionConfig extends ClientConfig {
  /** Servers as `'host:port'` (IPv6 in brackets) or `{ host, port }`; overrides `host`/`port`. */
  hosts?: Array<string | Partial<HostAddress>>;
}

/**
 * Options after defaults and validation: what the engine reads, and what `pool.options`
 * shows. Each field means what the `PgPoolOptions` field of the same name means.
 */
export interface ResolvedPoolOptions {
  /** The database id. */
  name: string;
  /**
   * Where to connect: `connectionString` parsed, merged with `connection`, the host list
   * and `target_session_attrs`. It holds the password in a private field, so the
   * options can be logged or inspected.
   */
  target: ConnectionTarget;
  /** Connections kept open. */
  min: number;
  /** Hard cap on connections. */
  max: number;
  /** Default wait for a connection, in ms. */
  acquireTimeoutMs: number;
  /** Waiting requests allowed; 0 = unbounded. */
  maxWaiting: number;
  /** Connection lifetime, in ms (minus up to 5% jitter). */
  maxLifetimeMs: number;
  /** Idle time after which a connection above `min` closes, in ms. */
  maxIdleMs: number;
  /** Failing time after which `onReconnectFailed` runs, in ms. */
  reconnectTimeoutMs: number;
  /** The give-up hook, if any. */
  onReconnectFailed: ((pool: ReconnectingPool, info: ReconnectFailedInfo) => void) | undefined;
  /** First backoff delay, in ms. */
  reconnectDelayMs: number;
  /** Longest backoff delay, in ms. */
  reconnectMaxDelayMs: number;
  /** The acquire-time check (`SELECT 1` for `true`), if any. */
  checkOnAcquire: ClientHook | undefined;
  /** The new-connection hook, if any. */
  configure: ClientHook | undefined;
  /** The returned-connection hook, if any. */
  reset: ClientHook | undefined;
  /** Which idle connection goes out first. */
  order: 'fifo' | 'lifo';
  /** Keepalive period, in ms; 0 = off. */
  keepaliveIntervalMs: number;
  /** Connect and check time limit, in ms. */
  connectTimeoutMs: number;
  /** Leak report threshold, in ms; 0 = off. */
  leakDetectionMs: number;
  /** How long a request waits while the server is down, in ms; 0 = the acquire timeout. */
  unavailableTimeoutMs: number;
  /** Whether the pool runs its own maintenance timer. */
  scheduleMaintenance: boolean;
  /** Where log lines go. */
  logger: PoolLogger;
  /** The client class instantiated for each connection. */
  Client: PgClientClass;
  /** Checkouts after which a connection is replaced; `Infinity` = no limit. */
  maxUses: number;
  /** Whether idle connections let the process exit. */
  allowExitOnIdle: boolean;
  /** Multiplexing's settings, when it is on. */
  multiplex: MultiplexSettings | undefined;
  /** The connection budget shared with other pools, if any. */
  budget: ConnectionBudget | undefined;
  /** What is reset on a returned connection. */
  resetOnReturn: 'auto' | 'always' | 'never';
  /** pg.Pool's view of `maxLifetimeMs`, in seconds (0 = never), for code that reads `pool.options`. */
  maxLifetimeSeconds: number;
  /** pg.Pool's view of `maxIdleMs` (`null` = never), for code that reads `pool.options`. */
  idleTimeoutMillis: number | null;
}

/** The default of every option that has one (see the options table in docs/engine.md). */
export const POOL_DEFAULTS: Readonly<Required<Pick<PgPoolOptions, 'name' | 'min' | 'acquireTimeoutMs' | 'maxWaiting' | 'maxLifetimeMs' |
  'maxIdleMs' | 'reconnectTimeoutMs' | 'reconnectDelayMs' | 'reconnectMaxDelayMs' | 'order' | 'keepaliveIntervalMs' |
  'connectTimeoutMs' | 'leakDetectionMs' | 'unavailableTimeoutMs'>>> = {
  name: 'default',
  min: 4,
  acquireTimeoutMs: 30_000,
  maxWaiting: 0,
  maxLifetimeMs: 3_600_000,
  maxIdleMs: 600_000,
  reconnectTimeoutMs: 300_000,
  reconnectDelayMs: 1_000,
  reconnectMaxDelayMs: 30_000,
  order: 'fifo',
  keepaliveIntervalMs: 0,
  connectTimeoutMs: 10_000,
  leakDetectionMs: 0,
  unavailableTimeoutMs: 3_000,
};

const KNOWN_OPTIONS: ReadonlySet<string> = new Set<keyof PgPoolOptions>([
  'name', 'connectionString', 'connection', 'min', 'max', 'acquireTimeoutMs', 'maxWaiting',
  'maxLifetimeMs', 'maxIdleMs', 'reconnectTimeoutMs', 'onReconnectFailed', 'reconnectDelayMs',
  'reconnectMaxDelayMs', 'checkOnAcquire', 'configure', 'reset', 'order', 'keepaliveIntervalMs',
  'connectTimeoutMs', 'leakDetectionMs', 'unavailableTimeoutMs', 'scheduleMaintenance', 'logger', 'Client', 'targetSessionAttrs',
  'loadBalanceHosts', 'maxUses', 'allowExitOnIdle', 'multiplex', 'budget', 'resetOnReturn',
]);

/** The check `checkOnAcquire: true` and keepalive run: one round trip, no table touched. */
export const selectOneCheck: ClientHook = (client) => client.query('SELECT 1');

/**
 * The pool's default check. With a target kind of server it also asks whether the
 * server still is that kind, so that keepalive and checkOnAcquire notice a primary that
 * turned read-only or standby after a failover.
 */
export function defaultCheckFor(wanted: TargetSessionAttrs): ClientHook {
  if (wanted === 'any' || wanted === 'prefer-standby') return selectOneCheck;
  return async (client) => {
    const mismatch = await sessionMismatch(client, wanted);
    if (mismatch) throw new Error(`the server ${mismatch} now`);
  };
}

/**
 * Validates options once, at construction (as psycopg_pool does), so a mistake surfaces
 * when the app starts with a message naming the option, not at the first request.
 * Unknown options are an error: a typo such as `maxIdle` would otherwise silently keep
 * the default.
 */
export function resolvePoolOptions(given: PgPoolConfig | null = {}, ClientClass?: ClientConstructor): ResolvedPoolOptions {
  // pg.Pool takes null as "no config" too.
  const config = given ?? {};
  if (typeof config !== 'object') {
    throw new PoolConfigError('default', 'options must be an object, e.g. { connectionString }');
  }
  const name = config.name ?? POOL_DEFAULTS.name;
  const fail = (message: string): never => {
    throw new PoolConfigError(String(name), message);
  };
  if (typeof name !== 'string' || name.length === 0) fail('`name` must be a non-empty string');
  const options = fromPgPoolConfig(config, fail);

  const unknown = Object.keys(options).filter((key) => !KNOWN_OPTIONS.has(key));
  if (unknown.length > 0) {
    fail(`unknown option${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => describeUnknown(k)).join(', ')}; ` +
      `known options are ours (${[...KNOWN_OPTIONS].join(', ')}) and pg.Pool's (${[...PG_POOL_KEYS, ...PG_CLIENT_KEYS].join(', ')})`);
  }

  const { clientConfig, hosts, urlAttrs, urlLoadBalance } = buildClientConfig(options, fail);
  const targetSessionAttrs = options.targetSessionAttrs ?? urlAttrs ?? 'any';
  if (!TARGET_SESSION_ATTRS.has(targetSessionAttrs)) {
    fail(`\`targetSessionAttrs\` must be one of ${[...TARGET_SESSION_ATTRS].join(', ')}, not ${JSON.stringify(targetSessionAttrs)}`);
  }
  const loadBalanceHosts = options.loadBalanceHosts ?? urlLoadBalance ?? false;
  if (typeof loadBalanceHosts !== 'boolean') fail('`loadBalanceHosts` must be true or false');

  // A `max` below the default `min` lowers `min` with it: `{ max: 2 }` is a pool of up to 2.
  const min = options.min ?? (typeof options.max === 'number' ? Math.min(POOL_DEFAULTS.min, options.max) : POOL_DEFAULTS.min);
  const max = options.max ?? Math.max(min, 1);
  checkSize(min, max, fail);

  const duration = (key: keyof typeof POOL_DEFAULTS & keyof PgPoolOptions, lowest: number): number => {
    const value = options[key] ?? POOL_DEFAULTS[key];
    // A lifetime or idle time may be "never" (pg.Pool's 0, translated).
    if (value === Number.POSITIVE_INFINITY && (key === 'maxLifetimeMs' || key === 'maxIdleMs')) return value;
    checkInteger(key, value, lowest, fail);
    return value as number;
  };

  const order = options.order ?? POOL_DEFAULTS.order;
  if (order !== 'fifo' && order !== 'lifo') fail(`\`order\` must be 'fifo' or 'lifo', not ${JSON.stringify(order)}`);

  const hook = (key: 'configure' | 'reset', value: unknown): ClientHook | undefined => {
    if (value === undefined) return undefined;
    if (typeof value !== 'function') fail(`\`${key}\` must be a function (client) => Promise<void>`);
    return value as ClientHook;
  };
  const check = options.checkOnAcquire;
  if (check !== undefined && typeof check !== 'boolean' && typeof check !== 'function') {
    fail('`checkOnAcquire` must be true, false or a function (client) => Promise<void>');
  }
  if (options.scheduleMaintenance !== undefined && typeof options.scheduleMaintenance !== 'boolean') {
    fail('`scheduleMaintenance` must be true or false');
  }
  if (options.onReconnectFailed !== undefined && typeof options.onReconnectFailed !== 'function') {
    fail('`onReconnectFailed` must be a function');
  }

  const reconnectDelayMs = duration('reconnectDelayMs', 1);
  const reconnectMaxDelayMs = duration('reconnectMaxDelayMs', 1);
  if (reconnectMaxDelayMs < reconnectDelayMs) {
    fail(`\`reconnectMaxDelayMs\` (${reconnectMaxDelayMs}) must not be below \`reconnectDelayMs\` (${reconnectDelayMs})`);
  }
  const connectTimeoutMs = duration('connectTimeoutMs', 0);
  const maxUses = options.maxUses ?? Number.POSITIVE_INFINITY;
  if (maxUses !== Number.POSITIVE_INFINITY) checkInteger('maxUses', maxUses, 1, fail);
  if (options.allowExitOnIdle !== undefined && typeof options.allowExitOnIdle !== 'boolean') {
    fail('`allowExitOnIdle` must be true or false');
  }
  const budget = options.budget;
  if (budget !== undefined && !(budget instanceof ConnectionBudget)) fail('`budget` must be a ConnectionBudget (new ConnectionBudget(max))');
  if (budget !== undefined && min > budget.max) {
    fail(`\`min\` (${min}) exceeds the connection budget's max (${budget.max}): the pool could never reach it; lower \`min\` (0 suits pools sharing a budget)`);
  }
  const resetOnReturn = options.resetOnReturn ?? 'auto';
  if (!['auto', 'always', 'never'].includes(resetOnReturn)) fail(`\`resetOnReturn\` must be 'auto', 'always' or 'never', not ${JSON.stringify(resetOnReturn)}`);
  const Client = options.Client ?? ClientClass ?? pg.Client;
  if (typeof Client !== 'function') fail('`Client` must be a class such as pg.Client');
  const maxLifetimeMs = duration('maxLifetimeMs', 1);
  const maxIdleMs = duration('maxIdleMs', 1);

  return {
    name,
    target: new ConnectionTarget(
      { ...clientConfig, connectionTimeoutMillis: clientConfig.connectionTimeoutMillis ?? connectTimeoutMs },
      hosts, targetSessionAttrs as TargetSessionAttrs, loadBalanceHosts),
    min,
    max,
    acquireTimeoutMs: duration('acquireTimeoutMs', 0),
    maxWaiting: duration('maxWaiting', 0),
    maxLifetimeMs,
    maxIdleMs,
    reconnectTimeoutMs: duration('reconnectTimeoutMs', 0),
    onReconnectFailed: options.onReconnectFailed,
    reconnectDelayMs,
    reconnectMaxDelayMs,
    checkOnAcquire: check === true ? defaultCheckFor(targetSessionAttrs as TargetSessionAttrs) : check === false ? undefined : check,
    configure: hook('configure', options.configure),
    reset: hook('reset', options.reset),
    order,
    keepaliveIntervalMs: duration('keepaliveIntervalMs', 0),
    connectTimeoutMs,
    leakDetectionMs: duration('leakDetectionMs', 0),
    unavailableTimeoutMs: duration('unavailableTimeoutMs', 0),
    scheduleMaintenance: options.scheduleMaintenance ?? true,
    logger: options.logger ?? defaultPoolLogger,
    Client: Client as PgClientClass,
    maxUses,
    allowExitOnIdle: options.allowExitOnIdle ?? false,
    multiplex: multiplexSettings(options.multiplex, fail),
    budget,
    resetOnReturn,
    maxLifetimeSeconds: maxLifetimeMs === Number.POSITIVE_INFINITY ? 0 : maxLifetimeMs / 1000,
    idleTimeoutMillis: maxIdleMs === Number.POSITIVE_INFINITY ? null : maxIdleMs,
  };
}

interface ParsedConnection {
  clientConfig: ClientConfig;
  hosts: HostAddress[];
  urlAttrs: TargetSessionAttrs | undefined;
  urlLoadBalance: boolean | undefined;
}

function buildClientConfig(options: PgPoolOptions, fail: (message: string) => never): ParsedConnection {
  const { connectionString } = options;
  const { hosts: hostList, ...connection } = options.connection ?? {};
  // Neither given: pg's defaults, that is the PG* environment (PGHOST, PGUSER, ...), as pg.Pool.
  const noConnection = options.connection === undefined;
  if (!noConnection && (options.connection === null || typeof options.connection !== 'object')) {
    fail('`connection` must be a pg.ClientConfig object');
  }
  let parsed: ClientConfig & { target_session_attrs?: string; load_balance_hosts?: string } = {};
  let urlHosts: HostAddress[] | undefined;
  if (connectionString !== undefined) {
    if (typeof connectionString !== 'string' || !/^postgres(ql)?:\/\//i.test(connectionString)) {
      fail('`connectionString` must be a URL starting with postgresql:// or postgres://');
    }
    try {
      const split = splitHostList(connectionString);
      urlHosts = split.hosts;
      parsed = parseIntoClientConfig(split.url);
    } catch (error) {
      // sslrootcert, sslcert and sslkey name files the parser reads: say which one failed
      // (a path holds no secret), not just that the string "could not be parsed".
      const { path, code } = (error ?? {}) as { path?: unknown; code?: unknown };
      if (typeof path === 'string') {
        fail(`\`connectionString\` names a file that cannot be read: ${path} (${String(code)}); ` +
          'sslrootcert, sslcert and sslkey must be paths of PEM files (libpq\'s sslrootcert=system is not supported by pg: leave sslrootcert out to use Node\'s CAs)');
      }
      // The parser's own message may quote the string, and with it the password.
      const kind = (error as { name?: unknown } | null)?.name;
      fail(`\`connectionString\` could not be parsed (${typeof kind === 'string' ? kind : 'invalid URL'}); ` +
        'expected postgresql://user:password@host:port/database, with special characters in the password percent-encoded');
    }
  }
  // libpq's multi-host parameters are ours to act on, not pg's to pass along.
  const { target_session_attrs: urlAttrs, load_balance_hosts: urlBalance, ...clientConfig } = { ...parsed, ...connection };
  const hosts = hostList !== undefined
    ? hostList.map((entry) => (typeof entry === 'string' ? parseHostPort(entry) : { host: entry.host ?? 'localhost', port: entry.port ?? 5432 }))
    // One server, from `host`/`port` or pg's own fallbacks (PGHOST, PGPORT), named
    // explicitly so that every connection the pool makes goes to the same place.
    : urlHosts ?? [{
      host: clientConfig.host ?? process.env.PGHOST ?? pgDefaults.host ?? 'localhost',
      port: Number(clientConfig.port ?? process.env.PGPORT ?? pgDefaults.port ?? 5432),
    }];
  if (hosts.length === 0) fail('`connection.hosts` must list at least one host');
  return {
    clientConfig,
    hosts,
    urlAttrs: urlAttrs as TargetSessionAttrs | undefined,
    urlLoadBalance: urlBalance === undefined ? undefined : urlBalance === 'random',
  };
}

/** Defaults of the `multiplex` option. */
const MULTIPLEX_DEPTH = 64;
/** A statement outstanding this long makes its shared connection the last choice for new ones. */
const MULTIPLEX_SLOW_MS = 10;

function multiplexSettings(value: PgPoolOptions['multiplex'], fail: (message: string) => never): MultiplexSettings | undefined {
  if (value === undefined || value === false) return undefined;
  if (value !== true && (value === null || typeof value !== 'object')) fail('`multiplex` must be true, false or { depth, connections }');
  const { depth = MULTIPLEX_DEPTH, connections, ...rest } = value === true ? {} : value;
  const unknown = Object.keys(rest);
  if (unknown.length > 0) fail(`\`multiplex\` takes depth and connections, not ${unknown.join(', ')}`);
  checkInteger('multiplex.depth', depth, 1, fail);
  if (connections !== undefined) checkInteger('multiplex.connections', connections, 1, fail);
  return { depth, connections, slowMs: MULTIPLEX_SLOW_MS };
}

/** pg's own defaults (`pg.defaults`), which apps may set, consulted after the PG* environment as pg does. */
const pgDefaults = pg.defaults as { host?: string; port?: number };

/** The bound on the pool's own work when `connectTimeoutMs` is 0 (see `workBoundMs`). */
const DEFAULT_WORK_BOUND_MS = 10_000;

/**
 * The bound on the pool's own work on a connection (setting it up after connect, checks,
 * ROLLBACK and `reset` on return, waiting for the wire, a cancel request):
 * `connectTimeoutMs`, or 10 s when that is 0 (no connect timeout, as in pg), since work
 * without a bound can hold a slot for ever.
 */
export function workBoundMs(options: ResolvedPoolOptions): number {
  return options.connectTimeoutMs > 0 ? options.connectTimeoutMs : DEFAULT_WORK_BOUND_MS;
}

/** `min` and `max`, as the options and `resize()` take them. */
export function checkSize(min: unknown, max: unknown, fail: (message: string) => never): void {
  checkInteger('min', min, 0, fail);
  checkInteger('max', max, 1, fail);
  if ((min as number) > (max as number)) fail(`\`min\` (${String(min)}) must not exceed \`max\` (${String(max)})`);
}

function checkInteger(key: string, value: unknown, lowest: number, fail: (message: string) => never): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || !Number.isInteger(value) || value < lowest) {
    fail(`\`${key}\` must be an integer >= ${lowest}, not ${String(value)}`);
  }
}

/** An unknown key, with the known one it most likely misspells. */
function describeUnknown(key: string): string {
  const known = [...KNOWN_OPTIONS, ...PG_POOL_KEYS, ...PG_CLIENT_KEYS];
  const lower = key.toLowerCase();
  const guess = known.find((candidate) => candidate.toLowerCase() === lower) ??
    known.find((candidate) => editDistance(candidate.toLowerCase(), lower) <= Math.max(1, Math.floor(candidate.length / 4))) ??
    known.find((candidate) => candidate.toLowerCase().startsWith(lower) || lower.startsWith(candidate.toLowerCase()));
  return guess ? `\`${key}\` (did you mean \`${guess}\`?)` : `\`${key}\``;
}

/** Levenshtein distance, for "did you mean". */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}
