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

/** Node's codes for a certificate chain that does not lead to a CA the client trusts. */
const UNTRUSTED_CHAIN = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'CERT_UNTRUSTED',
]);

/** pg's message when the server answers the SSLRequest with 'N'. */
const NO_TLS_AT_SERVER = 'The server does not support SSL connections';

/**
 * A TLS failure's reason in words that say what to change, with Node's or pg's own
 * message kept in it (what a search engine knows); undefined for any other error.
 * Node's "self-signed certificate in certificate chain" does not say that the client's
 * CA is the thing to fix, nor pg's "does not support SSL" that nothing went in clear.
 */
export function explainTlsFailure(error: Error): string | undefined {
  const code = (error as { code?: unknown }).code;
  if (typeof code === 'string' && UNTRUSTED_CHAIN.has(code)) {
    return `the server's TLS certificate is not signed by a CA this client trusts (${error.message}): ` +
      'give the CA that signed it as `ssl.ca`, or `sslrootcert=<file>` in the URL';
  }
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
    return `the server's TLS certificate is not for the host connected to (${error.message}): ` +
      'connect by a name the certificate lists, or set `ssl.servername` to one';
  }
  if (code === 'ERR_OSSL_BAD_DECRYPT') {
    return `the TLS client key could not be decrypted (${error.message}): check \`ssl.passphrase\``;
  }
  // A wrong passphrase can also decrypt to bytes that pass the padding check (about one
  // time in 256) and then fail to decode: OpenSSL says "unsupported" then.
  if (code === 'ERR_OSSL_UNSUPPORTED') {
    return `the TLS client key could not be decrypted or read (${error.message}): check \`ssl.passphrase\`, ` +
      'and that `ssl.key` is a PEM private key';
  }
  if (error.message === NO_TLS_AT_SERVER) {
    return `${NO_TLS_AT_SERVER}: TLS is off at the server, and the settings require it, so nothing was sent in clear`;
  }
  return undefined;
}
