import type { ClientConfig } from 'pg';
import { describeTarget, redactSecret } from './redact.js';
import { compileTls, maskTls, type TlsSetting } from './tls.js';
import type { HostAddress, TargetSessionAttrs } from './target-session.js';

/**
 * Where a pool connects, and with which credentials: the one owner of the client
 * settings, the host list and `target_session_attrs`. Every connection the pool makes
 * (pooled ones, the LISTEN session, cancel requests) gets its settings from here, so a
 * host list or a TLS setting cannot be honoured in one place and forgotten in another.
 *
 * The password lives in a `#private` field (as pg-pool keeps it non-enumerable): it
 * is handed to pg only inside the config of one connection attempt, and never shows
 * in `util.inspect`, `console.log` or `JSON.stringify` of the pool or its options.
 * So do the `ssl` setting's key, passphrase and certificates (see tls.ts).
 */
export class ConnectionTarget {
  readonly #password: ClientConfig['password'];
  /** `ssl` as given. */
  readonly #ssl: TlsSetting;
  /** `ssl` as pg gets it (see `compileTls`), made at the first connection attempt. */
  #compiledSsl: TlsSetting;
  /**
   * pg's client settings, without the password (which `configFor()` adds), and with
   * `ssl`'s key, passphrase and certificates shown as `***` (`configFor()` has them).
   */
  readonly clientConfig: Readonly<ClientConfig>;

  constructor(
    clientConfig: ClientConfig,
    /** The servers to try, in order; at least one. */
    readonly hosts: readonly HostAddress[],
    /** Which server a new connection must land on. */
    readonly targetSessionAttrs: TargetSessionAttrs,
    /** libpq's `load_balance_hosts=random`. */
    readonly loadBalanceHosts: boolean,
  ) {
    const { password, ssl, ...rest } = clientConfig;
    this.#password = password;
    this.#ssl = ssl;
    this.clientConfig = ssl === undefined ? rest : { ...rest, ssl: maskTls(ssl) };
  }

  /** Whether a password was given (for `pool.options`, which shows it as `***`). */
  get hasPassword(): boolean {
    return this.#password !== undefined;
  }

  /** The password when it is a string, for scrubbing it out of foreign error messages. */
  get secret(): string | undefined {
    return typeof this.#password === 'string' ? this.#password : undefined;
  }

  /**
   * The settings for one connection to `host` (the first host by default). Throws if
   * the TLS settings are unusable (a wrong key passphrase): called inside a connection
   * attempt, whose failure it then is.
   */
  configFor(host: HostAddress = this.hosts[0], overrides: ClientConfig = {}): ClientConfig {
    const config: ClientConfig = { ...this.clientConfig, host: host.host, port: host.port };
    if (this.#password !== undefined) config.password = this.#password;
    // Made once, kept once made: a failure is tried again at the next attempt.
    if (this.#ssl !== undefined) config.ssl = this.#compiledSsl ??= compileTls(this.#ssl);
    return Object.assign(config, overrides);
  }

  /** `host:port/database`, or `h1:p1,h2:p2/database`: how logs and errors name the target. */
  describe(): string {
    return describeTarget(this.clientConfig, this.hosts.length > 1 ? this.hosts : [this.hosts[0]]);
  }

  /** `text` with the password and the TLS key's passphrase masked, raw and percent-encoded. */
  redact(text: string): string {
    const passphrase = typeof this.#ssl === 'object' && this.#ssl !== null ? this.#ssl.passphrase : undefined;
    return redactSecret(redactSecret(text, this.secret), passphrase);
  }

  /** What `JSON.stringify` shows: where, `host:port/database`, never the credentials. */
  toJSON(): string {
    return this.describe();
  }
}
