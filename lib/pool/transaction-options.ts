import { PoolUsageError } from './errors.js';

/** Transaction isolation levels, as PostgreSQL spells them. */
export type IsolationLevel = 'read uncommitted' | 'read committed' | 'repeatable read' | 'serializable';

/** How `withTransaction` (and `@UseConnection({ transaction })`) begins its transaction. */
export interface TransactionOptions {
  /** `ISOLATION LEVEL …`; PostgreSQL's default (read committed) when omitted. */
  isolationLevel?: IsolationLevel;
  /** `READ ONLY` or `READ WRITE`. */
  readOnly?: boolean;
  /** Only meaningful with `serializable` and `readOnly`, as in PostgreSQL. */
  deferrable?: boolean;
  /**
   * Settings for this transaction alone, applied right after BEGIN with
   * `set_config(name, value, true)`: `{ 'app.tenant_id': '42', role: 'tenant_reader' }`.
   * They end with the transaction (COMMIT or ROLLBACK) by construction, so the next
   * borrower of the connection never sees them: what row-level security keyed on
   * `current_setting('app.tenant_id')` or on a role needs. Values are sent as parameters,
   * never spliced into SQL; names must be setting names (`search_path`, `app.tenant_id`);
   * `role` is `SET LOCAL ROLE`.
   */
  settings?: TransactionSettings;
}

/** Transaction-local settings by name; `null` or `undefined` leaves a setting as it is. */
export type TransactionSettings = Readonly<Record<string, string | number | boolean | null | undefined>>;

/** A setting name as PostgreSQL knows them: `work_mem`, or a custom `prefix.name`. */
const SETTING_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*)?$/;

/**
 * The statement that applies `settings` transaction-locally, and its parameters: one
 * round trip, names and values both parameters of `set_config`. Undefined when there is
 * nothing to set. Names are checked here, so a typo fails before the transaction begins.
 */
export function settingsStatement(poolName: string, settings: TransactionSettings | undefined): { text: string; values: unknown[] } | undefined {
  if (settings === undefined) return undefined;
  if (settings === null || typeof settings !== 'object') {
    throw new PoolUsageError(poolName, '`settings` must be an object of setting names to values');
  }
  const names: string[] = [];
  const values: string[] = [];
  for (const [name, value] of Object.entries(settings)) {
    if (!SETTING_NAME.test(name)) {
      throw new PoolUsageError(poolName, `invalid setting name ${JSON.stringify(name)}: use a PostgreSQL setting name ` +
        "such as 'search_path' or a custom one with a dot, such as 'app.tenant_id'");
    }
    if (value === undefined || value === null) continue;
    if (!['string', 'number', 'boolean'].includes(typeof value)) {
      throw new PoolUsageError(poolName, `setting '${name}' must be a string, number or boolean, not ${typeof value}`);
    }
    names.push(name);
    values.push(String(value));
  }
  if (names.length === 0) return undefined;
  return { text: 'SELECT set_config(name, value, true) FROM unnest($1::text[], $2::text[]) AS s(name, value)', values: [names, values] };
}

const ISOLATION_LEVELS: ReadonlySet<string> = new Set<IsolationLevel>([
  'read uncommitted',
  'read committed',
  'repeatable read',
  'serializable',
]);

/**
 * The `BEGIN` statement for these options. The isolation level is checked against
 * PostgreSQL's four names rather than interpolated as given, since it becomes SQL.
 */
export function beginStatement(poolName: string, options: TransactionOptions = {}): string {
  const parts = ['BEGIN'];
  const { isolationLevel, readOnly, deferrable } = options;
  if (isolationLevel !== undefined) {
    const level = String(isolationLevel).toLowerCase();
    if (!ISOLATION_LEVELS.has(level)) {
      throw new PoolUsageError(poolName, `invalid isolationLevel ${JSON.stringify(isolationLevel)}; ` +
        `use one of: ${[...ISOLATION_LEVELS].join(', ')}`);
    }
    parts.push('ISOLATION LEVEL', level.toUpperCase());
  }
  if (readOnly !== undefined) parts.push(readOnly ? 'READ ONLY' : 'READ WRITE');
  if (deferrable !== undefined) parts.push(deferrable ? 'DEFERRABLE' : 'NOT DEFERRABLE');
  return parts.join(' ');
}
