import type { ClientConfig } from 'pg';
import { urlAuthority } from './url-authority.js';

const MASK = '***';

/**
 * Returns a connection string with its password replaced by `***`, for logs and errors.
 *
 * Written to survive strings that `new URL()` rejects: passwords with a raw `@`, `:`,
 * `/` or `%`, or non-ASCII characters, which users do paste unencoded. The userinfo is
 * taken to end at the last `@` before the query string, so an `@` inside the password
 * does not leak its tail. `password=` parameters (URL query or libpq key/value form)
 * are masked too.
 */
export function redactConnectionString(connectionString: string): string {
  let text = connectionString;
  const authority = urlAuthority(connectionString);
  if (authority && authority.at !== -1) {
    const userInfo = text.slice(authority.start, authority.at);
    const colon = userInfo.indexOf(':');
    if (colon !== -1) text = text.slice(0, authority.start + colon + 1) + MASK + text.slice(authority.at);
  }
  return text.replace(/(password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s#]+)/gi, `$1${MASK}`);
}

/**
 * Replaces every occurrence of a known secret in a text. The last line of defence:
 * applied to every message the pool builds from a foreign error, since a driver or
 * a user's hook could echo a connection string back.
 */
export function redactSecret(text: string, secret: string | undefined): string {
  if (!secret) return text;
  let out = text.split(secret).join(MASK);
  const encoded = encodeURIComponent(secret);
  if (encoded !== secret) out = out.split(encoded).join(MASK);
  return out;
}

/** `host:port/database` (or `h1:p1,h2:p2/database`): how errors and logs name a server, never with credentials. */
export function describeTarget(config: ClientConfig, hosts?: ReadonlyArray<{ host: string; port: number }>): string {
  // pg's own fallbacks: the PG* environment, and the user's name for the database.
  const database = config.database ?? process.env.PGDATABASE ?? config.user ?? process.env.PGUSER ?? '(default database)';
  if (hosts && hosts.length > 0) return `${hosts.map((h) => `${h.host}:${h.port}`).join(',')}/${database}`;
  const host = config.host ?? 'localhost';
  const port = config.port ?? 5432;
  return `${host}:${port}/${database}`;
}
