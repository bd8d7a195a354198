import type { ClientBase } from 'pg';
import { urlAuthority } from './url-authority.js';

/** libpq's `target_session_attrs`: which server a new connection must land on. */
export type TargetSessionAttrs = 'any' | 'read-write' | 'read-only' | 'primary' | 'standby' | 'prefer-standby';

export const TARGET_SESSION_ATTRS: ReadonlySet<string> = new Set<TargetSessionAttrs>([
  'any', 'read-write', 'read-only', 'primary', 'standby', 'prefer-standby',
]);

/** One server of a multi-host setting. */
export interface HostAddress {
  /** Host name or IP address. */
  host: string;
  /** TCP port. Default 5432. */
  port: number;
}

/**
 * Whether a freshly opened session is on the kind of server asked for, with libpq's
 * meanings: read-write / read-only by `transaction_read_only`, primary / standby by
 * `pg_is_in_recovery()`. Resolves with the reason when it is not.
 */
export async function sessionMismatch(client: ClientBase, wanted: TargetSessionAttrs): Promise<string | undefined> {
  if (wanted === 'any') return undefined;
  const { rows } = await client.query<{ recovery: boolean; read_only: string }>(
    "SELECT pg_is_in_recovery() AS recovery, current_setting('transaction_read_only') AS read_only");
  const inRecovery = rows[0].recovery;
  const readOnly = rows[0].read_only === 'on';
  switch (wanted) {
    case 'read-write': return readOnly ? (inRecovery ? 'is a standby (read-only)' : 'is read-only') : undefined;
    case 'read-only': return readOnly ? undefined : 'is read-write';
    case 'primary': return inRecovery ? 'is a standby' : undefined;
    case 'standby':
    case 'prefer-standby': return inRecovery ? undefined : 'is a primary';
  }
}

/**
 * Splits `postgresql://u:p@h1:5432,h2:5433/db` into the hosts and a URL with only the
 * first, which `pg-connection-string` can parse. IPv6 addresses go in brackets.
 */
export function splitHostList(url: string): { url: string; hosts: HostAddress[] | undefined } {
  const authority = urlAuthority(url);
  if (!authority) return { url, hosts: undefined };
  const hostPart = url.slice(authority.hostStart, authority.hostEnd);
  if (!hostPart.includes(',')) return { url, hosts: undefined };
  const hosts = hostPart.split(',').map(parseHostPort);
  return { url: url.slice(0, authority.hostStart) + hostPart.split(',')[0] + url.slice(authority.hostEnd), hosts };
}

/** `host`, `host:port` or `[v6]:port` as a HostAddress. */
export function parseHostPort(text: string): HostAddress {
  const match = /^(\[[^\]]+\]|[^:]*)(?::(\d+))?$/.exec(text.trim());
  const host = (match?.[1] ?? text).replace(/^\[|\]$/g, '') || 'localhost';
  return { host, port: match?.[2] ? Number(match[2]) : 5432 };
}

/** The hosts in the order to try: as given, or shuffled with `loadBalanceHosts`. */
export function hostsToTry(hosts: readonly HostAddress[], loadBalance: boolean): HostAddress[] {
  const order = [...hosts];
  if (!loadBalance) return order;
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
