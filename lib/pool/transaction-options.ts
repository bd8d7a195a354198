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
