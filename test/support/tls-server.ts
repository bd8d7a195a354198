import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, type ClientConfig } from 'pg';
import { PostgresServer, runAs } from './postgres-server.js';
import { TEST_PASSWORD } from './test-secrets.js';

/**
 * A throw-away certificate authority made with the `openssl` CLI, and what it signed,
 * as PEM files in a temporary directory:
 * - `ca.crt`: the CA that signed the server's and the client's certificates;
 * - `server.crt`/`server.key`: for `localhost` and `127.0.0.1` (subjectAltName), nothing else;
 * - `client.crt`/`client.key`: for the role `certuser`, the key encrypted with `passphrase`;
 * - `wrong-ca.crt`: an unrelated CA, which signed nothing the server presents;
 * - `bundle.crt`: both CAs in one file, as providers ship their CA bundles.
 * EC keys (P-256): made in milliseconds, where RSA keys can take a second on a loaded machine.
 */
export class ThrowAwayCa {
  /** The client key's passphrase: random, so that a test can look for it anywhere. */
  readonly passphrase = `tls-passphrase-${randomBytes(12).toString('hex')}`;

  private constructor(readonly dir: string) {}

  static create(): ThrowAwayCa {
    const ca = new ThrowAwayCa(mkdtempSync(join(tmpdir(), 'nestjs-pg-pool-tls-')));
    try {
      ca.make();
    } catch (error) {
      ca.destroy();
      throw error;
    }
    return ca;
  }

  /** A file of the CA's directory, by name. */
  file(name: 'ca.crt' | 'wrong-ca.crt' | 'bundle.crt' | 'server.crt' | 'server.key' | 'client.crt' | 'client.key'): string {
    return join(this.dir, name);
  }

  /** A file's PEM text. */
  pem(name: Parameters<ThrowAwayCa['file']>[0]): string {
    return readFileSync(this.file(name), 'utf8');
  }

  /**
   * The texts that must never appear in a log line, an error, stats or a dump: each
   * key's and certificate's base64 body (a line from its middle, which no reformatting
   * of the PEM header changes) and the passphrase.
   */
  secrets(): string[] {
    const bodies = (['ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key'] as const).map((name) => {
      const lines = this.pem(name).split('\n').filter((line) => line.length > 0 && !line.startsWith('-----'));
      return lines[Math.floor(lines.length / 2)];
    });
    return [...bodies, this.passphrase];
  }

  destroy(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private make(): void {
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1'];
    const caExtensions = ['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'];
    this.openssl('req', '-x509', ...ec, '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2',
      '-subj', '/CN=nestjs-pg-pool throw-away test CA', ...caExtensions);
    this.openssl('req', '-x509', ...ec, '-nodes', '-keyout', 'wrong-ca.key', '-out', 'wrong-ca.crt', '-days', '2',
      '-subj', '/CN=an unrelated CA', ...caExtensions);
    writeFileSync(join(this.dir, 'bundle.crt'), this.pem('wrong-ca.crt') + this.pem('ca.crt'));

    writeFileSync(join(this.dir, 'server.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
    this.openssl('req', '-new', ...ec, '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    this.openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '2', '-days', '2',
      '-extfile', 'server.ext', '-out', 'server.crt');

    // The client's key encrypted (PKCS#8, AES-256): only the passphrase opens it. Given
    // through the environment, not the command line.
    const env = { ...process.env, TLS_PASSPHRASE: this.passphrase };
    writeFileSync(join(this.dir, 'client.ext'), 'extendedKeyUsage=clientAuth\n');
    this.openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-aes-256-cbc',
      '-pass', 'env:TLS_PASSPHRASE', '-out', 'client.key', { env });
    this.openssl('req', '-new', '-key', 'client.key', '-passin', 'env:TLS_PASSPHRASE', '-subj', '/CN=certuser', '-out', 'client.csr', { env });
    this.openssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-set_serial', '3', '-days', '2',
      '-extfile', 'client.ext', '-out', 'client.crt');
  }

  private openssl(...args: Array<string | { env: NodeJS.ProcessEnv }>): void {
    const last = args[args.length - 1];
    const env = typeof last === 'object' ? last.env : process.env;
    const argv = args.filter((arg): arg is string => typeof arg === 'string');
    const result = spawnSync('openssl', argv, { cwd: this.dir, env, encoding: 'utf8' });
    if (result.status !== 0) throw new Error(`openssl ${argv[0]} failed (${result.status}): ${result.stderr || String(result.error)}`);
  }
}

/**
 * A throw-away PostgreSQL with `ssl = on`, the certificate of a `ThrowAwayCa`, and a
 * pg_hba.conf that admits TCP sessions over TLS only (`hostssl`): a session that
 * connected at all was encrypted. It listens on 127.0.0.1, which its certificate names,
 * and on 127.0.0.2, which it does not. The role `certuser` logs in with its client
 * certificate (`cert`), so the client key and its passphrase are really used.
 */
export class TlsPostgres {
  private constructor(readonly server: PostgresServer, readonly ca: ThrowAwayCa) {}

  static async start(): Promise<TlsPostgres> {
    const ca = ThrowAwayCa.create();
    const server = await PostgresServer.create({ password: TEST_PASSWORD, settings: { listen_addresses: '127.0.0.1,127.0.0.2' } });
    const tls = new TlsPostgres(server, ca);
    try {
      tls.install();
      await server.start();
      await tls.sql('CREATE ROLE certuser LOGIN');
    } catch (error) {
      await tls.destroy();
      throw error;
    }
    return tls;
  }

  get port(): number {
    return this.server.port;
  }

  /** `ssl` for verify-full against this server: its CA, certificates checked (pg's default, spelt out). */
  get ssl(): { ca: string; rejectUnauthorized: true } {
    return { ca: this.ca.pem('ca.crt'), rejectUnauthorized: true };
  }

  /** A URL of this server as `postgres`, with its password; `query` without the `?`. */
  url(options: { host?: string; port?: number; query?: string } = {}): string {
    const query = options.query ? `?${options.query}` : '';
    return `postgresql://postgres:${encodeURIComponent(TEST_PASSWORD)}@${options.host ?? '127.0.0.1'}:${options.port ?? this.port}/postgres${query}`;
  }

  /** Runs one statement on a separate verify-full connection, to `server` (default: this one). */
  async sql<R extends Record<string, unknown>>(text: string, values: unknown[] = [], server: PostgresServer = this.server): Promise<R[]> {
    const config: ClientConfig = { connectionString: this.url({ port: server.port }), ssl: this.ssl };
    const client = new Client(config);
    await client.connect();
    try {
      return (await client.query<R>(text, values)).rows;
    } finally {
      await client.end();
    }
  }

  /**
   * A streaming standby of this server (see `PostgresServer.standbyOf`), TLS-only as
   * its primary: the copy of the data directory has the certificate and pg_hba.conf.
   * Its own connection to the primary verifies the primary (verify-full) and sends no
   * client certificate: as root the tests run the server as `postgres` with root's
   * HOME, where libpq would otherwise try to read ~/.postgresql/postgresql.crt and fail.
   */
  async standby(): Promise<PostgresServer> {
    const standby = await PostgresServer.standbyOf(this.server);
    try {
      await standby.stop();
      const password = TEST_PASSWORD.replace(/'/g, "\\'");
      const conninfo = `host=127.0.0.1 port=${this.port} user=postgres password=''${password}'' application_name=standby ` +
        `sslmode=verify-full sslrootcert=${join(standby.dataDir, 'root.crt')} sslcertmode=disable`;
      // The last setting of a name wins: this one over standbyOf's.
      appendFileSync(join(standby.dataDir, 'postgresql.auto.conf'), `primary_conninfo = '${conninfo}'\n`);
      await standby.start();
    } catch (error) {
      await standby.destroy();
      throw error;
    }
    return standby;
  }

  async destroy(): Promise<void> {
    await this.server.destroy();
    this.ca.destroy();
  }

  /**
   * Puts the certificate in the data directory (where a standby made by copying it
   * finds it too) and turns TLS on. The key must be 0600 and the server's own: as root
   * the server runs as `postgres` (see postgres-server.js).
   */
  private install(): void {
    const { dataDir } = this.server;
    const files: Array<[string, string, number]> = [
      ['server.crt', this.ca.pem('server.crt'), 0o644],
      ['server.key', this.ca.pem('server.key'), 0o600],
      // Client certificates (certuser's) are checked against this.
      ['root.crt', this.ca.pem('ca.crt'), 0o644],
      ['pg_hba.conf', [
        '# TCP over TLS only: no line matches a session without TLS, so the server refuses it.',
        'hostssl all certuser 127.0.0.1/32 cert',
        'hostssl all all 127.0.0.1/32 scram-sha-256',
        'hostssl all all 127.0.0.2/32 scram-sha-256',
        'hostssl replication all 127.0.0.1/32 scram-sha-256',
        '',
      ].join('\n'), 0o600],
    ];
    const ids = runAs();
    for (const [name, text, mode] of files) {
      const path = join(dataDir, name);
      writeFileSync(path, text, { mode });
      chmodSync(path, mode);
      if (ids) chownSync(path, ids.uid, ids.gid);
    }
    appendFileSync(join(dataDir, 'postgresql.auto.conf'), "ssl = on\nssl_ca_file = 'root.crt'\n");
  }
}
