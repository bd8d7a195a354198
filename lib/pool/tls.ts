import { createSecureContext, type ConnectionOptions } from 'node:tls';
import type { ClientConfig } from 'pg';

/** pg's `ssl` setting: `true` (TLS with Node's defaults), `false`, or `tls.connect` options. */
export type TlsSetting = ClientConfig['ssl'];

/**
 * The `ssl` fields that hold a private key, its passphrase or certificate bodies. A CA
 * or client certificate is not secret as a key is, but a dump of several kilobytes of
 * PEM in a log line helps no one, and a PFX or a key given under `cert` by mistake is.
 */
const MASKED_FIELDS = ['key', 'passphrase', 'pfx', 'cert', 'ca'] as const;
const MASK = '***';

/**
 * `ssl` as the pool's options show it: the same fields, those of `MASKED_FIELDS` as
 * `***`. What `pool.options.target.clientConfig.ssl` holds, so that the options can be
 * logged, inspected or serialized whole.
 */
export function maskTls(ssl: TlsSetting): TlsSetting {
  if (ssl === null || typeof ssl !== 'object') return ssl;
  const shown: Record<string, unknown> = { ...ssl };
  for (const field of MASKED_FIELDS) {
    // `in`, not a spread's own enumerable keys: pg makes `key` non-enumerable on the
    // object it is given, and a user may pass one it already touched.
    if (field in ssl && (ssl as Record<string, unknown>)[field] !== undefined) shown[field] = MASK;
  }
  return shown as ConnectionOptions;
}

/**
 * `ssl` as pg gets it: the same settings, but the key, passphrase and certificates
 * compiled into a `tls.SecureContext`, which Node's `tls.connect` uses as it is, instead
 * of as text. Text would stay on every connection: pg keeps its `ssl` object on each
 * client with only `key` hidden, and Node keeps the options of `tls.connect` on each
 * TLS socket, so a deep dump of a pool or a client (`util.inspect(pool, { depth: 6 })`)
 * would print the passphrase and the PEMs. A context also spares parsing them (a CA
 * bundle can hold a hundred certificates) at every connection. Throws as Node does for
 * unusable settings (a wrong passphrase): callers build it inside a connection attempt,
 * so the failure is that attempt's.
 */
export function compileTls(ssl: TlsSetting): TlsSetting {
  if (ssl === null || typeof ssl !== 'object' || ssl.secureContext !== undefined) return ssl;
  if (!MASKED_FIELDS.some((field) => field in ssl)) return ssl;
  const rest: Record<string, unknown> = { ...ssl };
  for (const field of MASKED_FIELDS) delete rest[field];
  // Every context option (ciphers, minVersion, crl...) goes into the context, since
  // tls.connect reads none of them once it is given one; the rest (rejectUnauthorized,
  // servername, checkServerIdentity) stays for tls.connect.
  return { ...rest, secureContext: createSecureContext(ssl) };
}
