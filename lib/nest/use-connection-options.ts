import type { TransactionOptions } from '../pool/index.js';

/** A transaction-local setting's value: fixed, or a function of the request. */
export type SettingSource<Request = unknown> = string | number | boolean | null | undefined |
  ((request: Request) => string | number | boolean | null | undefined);

/**
 * Picks the database id of a request, for a database per tenant: from a header, a JWT
 * claim, the host name. May be async. A throw (e.g. `BadRequestException` for a missing
 * header) is the request's answer. See `PgPoolModule.forTenants`.
 */
export type PoolSelector<Request = unknown> = (request: Request) => string | Promise<string>;

/** What `@UseConnection()` takes: a pool name, or these options. */
export interface UseConnectionOptions<Request = unknown> {
  /**
   * The database id, default `'default'`; or a function from the request to it, for
   * tenant pools (created on first use by `PgPoolModule.forTenants`).
   */
  pool?: string | PoolSelector<Request>;
  /** Run the handler in a transaction: COMMIT after success, ROLLBACK after any error. */
  transaction?: boolean | TransactionOptions;
  /** How long to wait for a connection; default the pool's `acquireTimeoutMs`. */
  timeoutMs?: number;
  /**
   * Settings for the request's transaction alone (needs `transaction`), each fixed or a
   * function of the request: `{ 'app.tenant_id': (req) => req.user.tenantId, role: 'tenant_user' }`.
   * Applied right after BEGIN with `set_config(name, value, true)` (values as parameters;
   * `role` is SET LOCAL ROLE), they end with the transaction, so no other request on the
   * connection ever sees them: row-level security per request. A null or undefined value
   * leaves the setting as it is.
   */
  settings?: Readonly<Record<string, SettingSource<Request>>>;
  /**
   * Another pool to use while `pool` is down (no connection, and connecting fails): e.g.
   * `{ pool: 'replica', fallback: 'primary' }` sends reads to the primary when no replica
   * answers. The client is still in scope under `pool`'s name.
   */
  fallback?: string;
  /**
   * Default `true`: code below the handler can reach the client with `currentConnection()`,
   * through an AsyncLocalStorage scope opened per request. `false`: the handler gets its
   * client through `@Conn()` alone, and no scope is opened. Only worth it on Node 20 and
   * 22, where AsyncLocalStorage runs on async_hooks: the first scope any code opens makes
   * every promise of the process dearer from then on (`npm run bench -- http`, table 4e).
   * On Node 24 and later it costs nothing measurable; leave it on there.
   */
  currentConnection?: boolean;
}

/** `UseConnectionOptions` after defaults: what the interceptor reads from metadata. */
export interface UseConnectionSettings {
  pool: string | PoolSelector<never>;
  settings: Readonly<Record<string, SettingSource<never>>> | undefined;
  transaction: TransactionOptions | undefined;
  timeoutMs: number | undefined;
  fallback: string | undefined;
  /** Whether the handler runs in a `currentConnection()` scope. */
  inScope: boolean;
}
