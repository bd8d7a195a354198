import { inspect } from 'node:util';
import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { parseIntoClientConfig } from 'pg-connection-string';
import request from 'supertest';
import { PoolConfigError, PoolOpenError, type PgPool, type PgPoolOptions } from '../../lib/index.js';
import { PgPoolHealthIndicator, PgPoolModule } from '../../lib/nest/index.js';
import { sendCancelRequest } from '../../lib/pool/cancel-request.js';
import { appNameOf, createTestPool, eventually, recordingLogger, sweptSecrets, testUrl, uniqueAppName } from '../support/database.js';
import { startApp } from '../support/nest-app.js';
import { freePort, PostgresServer } from '../support/postgres-server.js';
import { TEST_PASSWORD } from '../support/test-secrets.js';
import { TlsGate } from '../support/tls-gate.js';
import { TlsPostgres } from '../support/tls-server.js';

/**
 * TLS against a real PostgreSQL with `ssl = on`, a certificate from a throw-away CA made
 * with `openssl`, and a pg_hba.conf that admits TLS sessions only (see tls-server.ts):
 * a pool that connects to it at all is on TLS, and pg_stat_ssl says so per session.
 */
let tls: TlsPostgres;

beforeAll(async () => {
  tls = await TlsPostgres.start();
  // Every log line and connectError event of this file is swept for them (leak-check.ts).
  for (const secret of tls.ca.secrets()) sweptSecrets.add(secret);
}, 60_000);

afterAll(async () => {
  await tls?.destroy();
});

/** The URL parameters of verify-full with the throw-away CA. */
const verifyFull = (): string => `sslmode=verify-full&sslrootcert=${encodeURIComponent(tls.ca.file('ca.crt'))}`;

/** `ssl` with the certificate of the role `certuser`, whose key is encrypted. */
const clientCertificate = (): PgPoolOptions['connection'] => ({
  ssl: { ...tls.ssl, cert: tls.ca.pem('client.crt'), key: tls.ca.pem('client.key'), passphrase: tls.ca.passphrase },
});

/** Whether each of a pool's sessions on `server` is TLS, from the server's side. */
async function sessionsOf(pool: PgPool, server: PostgresServer = tls.server): Promise<Array<{ ssl: boolean }>> {
  return tls.sql<{ ssl: boolean }>(
    'SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1', [appNameOf(pool)], server);
}

/** The pool's own session, as the server reports it. */
async function ownSession(pool: PgPool): Promise<{ ssl: boolean; port: number }> {
  const { rows } = await pool.query<{ ssl: boolean; port: number }>(
    "SELECT ssl, current_setting('port')::int AS port FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
  return rows[0];
}

/** Each way TLS can fail at connect, the words its error must use, and Node's code for it. */
const FAILURES: Array<[string, () => Partial<PgPoolOptions>, RegExp, string | undefined]> = [
  ['a CA that did not sign the server\'s certificate', () => ({ connectionString: tls.url(), connection: { ssl: { ca: tls.ca.pem('wrong-ca.crt') } } }),
    /the server's TLS certificate is not signed by a CA this client trusts \(self-signed certificate in certificate chain\): give the CA that signed it as `ssl\.ca`/,
    'SELF_SIGNED_CERT_IN_CHAIN'],
  ['an address the certificate does not list (127.0.0.2)', () => ({ connectionString: tls.url({ host: '127.0.0.2' }), connection: { ssl: tls.ssl } }),
    /the server's TLS certificate is not for the host connected to \(Hostname\/IP does not match certificate's altnames: IP: 127\.0\.0\.2 is not in the cert's list: 127\.0\.0\.1\)/,
    'ERR_TLS_CERT_ALTNAME_INVALID'],
  ['a servername the certificate does not list', () => ({ connectionString: tls.url(), connection: { ssl: { ...tls.ssl, servername: 'db.example' } } }),
    /not for the host connected to \(Hostname\/IP does not match certificate's altnames: Host: db\.example\. is not in the cert's altnames: DNS:localhost, IP Address:127\.0\.0\.1\): .*`ssl\.servername`/,
    'ERR_TLS_CERT_ALTNAME_INVALID'],
  ['a server without TLS', () => ({ connectionString: testUrl(), connection: { ssl: tls.ssl } }),
    /The server does not support SSL connections: TLS is off at the server, and the settings require it, so nothing was sent in clear/,
    undefined],
];

describe('verify-full', () => {
  it.each([
    ['the URL (sslmode=verify-full&sslrootcert=<file>)', (): Partial<PgPoolOptions> => ({ connectionString: tls.url({ query: verifyFull() }) })],
    ['an ssl object ({ ca, rejectUnauthorized: true })', (): Partial<PgPoolOptions> => ({ connectionString: tls.url(), connection: { ssl: tls.ssl } })],
    ['a bundle file of several CAs, the right one among them', (): Partial<PgPoolOptions> => ({
      connectionString: tls.url({ query: `sslmode=verify-full&sslrootcert=${encodeURIComponent(tls.ca.file('bundle.crt'))}` }),
    })],
  ])('with the CA given by %s connects, and the server reports every pooled session as TLS', async (_how, options) => {
    const pool = createTestPool({ ...options(), min: 3, max: 3 });
    await pool.open({ wait: true });
    expect(await ownSession(pool)).toEqual({ ssl: true, port: tls.port });
    expect(await sessionsOf(pool)).toEqual([{ ssl: true }, { ssl: true }, { ssl: true }]);
  });

  it('the test server refuses a session without TLS, so a session that connected is encrypted', async () => {
    const pool = createTestPool({ connectionString: tls.url(), min: 1 });
    await expect(pool.open({ wait: true })).rejects.toThrow(/no pg_hba\.conf entry for host "127\.0\.0\.1", user "postgres", database "postgres", no encryption/);
  });

  it('connects by an address its certificate does not list when ssl.servername names one it does', async () => {
    const pool = createTestPool({ connectionString: tls.url({ host: '127.0.0.2' }), connection: { ssl: { ...tls.ssl, servername: 'localhost' } }, min: 1 });
    await pool.open({ wait: true });
    expect(await ownSession(pool)).toEqual({ ssl: true, port: tls.port });
  });
});

describe('a TLS failure', () => {
  it.each(FAILURES)('fails open({ wait: true }) fast with a PoolOpenError naming the cause: %s', async (_what, options, reason, code) => {
    // A long connect timeout and backoff: failing within seconds means at the first refusal.
    const pool = createTestPool({ ...options(), name: 'tls', min: 2, connectTimeoutMs: 30_000, reconnectDelayMs: 30_000 });
    const startedAt = performance.now();
    const error = await pool.open({ wait: true }).catch((e: unknown) => e);
    expect(performance.now() - startedAt).toBeLessThan(10_000);
    expect(error).toBeInstanceOf(PoolOpenError);
    expect((error as Error).message).toMatch(/^pool 'tls': cannot connect to 127\.0\.0\.\d:\d+\/postgres: /);
    expect((error as Error).message).toMatch(reason);
    expect((error as Error).cause).toMatchObject({ code });
    expect(pool.state).toBe('closed');
  });

  it.each(FAILURES)('keeps to the backoff while the pool retries, one attempt at a time, no reconnect storm: %s', async (_what, options) => {
    const failures: Array<{ at: number; retryInMs: number | undefined }> = [];
    const min = 4;
    const pool = createTestPool({ ...options(), min, max: min, reconnectDelayMs: 100, reconnectMaxDelayMs: 400 });
    pool.on('connectError', (_error, retryInMs) => failures.push({ at: performance.now(), retryInMs }));
    await pool.open();
    await eventually('seven attempts have failed', () => failures.length >= min + 3, 20_000);
    await pool.close();
    // At the start `min` attempts run at once; each failure after the first of them finds a retry
    // already scheduled. From then on, one attempt per backoff delay.
    expect(failures.filter((failure) => failure.retryInMs === undefined).length).toBeLessThanOrEqual(min - 1);
    const scheduled = failures.filter((failure) => failure.retryInMs !== undefined);
    expect(scheduled.length).toBeGreaterThanOrEqual(4);
    scheduled.forEach((failure, i) => {
      // 100, 200, 400, 400 ... ms, each ±10%.
      const planned = Math.min(100 * 2 ** i, 400);
      expect(failure.retryInMs).toBeGreaterThanOrEqual(Math.floor(planned * 0.9));
      expect(failure.retryInMs).toBeLessThanOrEqual(Math.ceil(planned * 1.1));
      // The next failure came no sooner than the delay announced (timers may fire 1 ms early).
      if (i > 0) expect(failure.at - scheduled[i - 1].at).toBeGreaterThanOrEqual((scheduled[i - 1].retryInMs as number) - 2);
    });
    expect(pool.getStats().connectionsErrors).toBe(failures.length);
  });
});

describe('every connection the pool makes uses the TLS settings', () => {
  it('the LISTEN session', async () => {
    const pool = createTestPool({ connectionString: tls.url({ query: verifyFull() }), min: 1 });
    const received: string[] = [];
    const stop = await pool.listen('tls_spec', (payload) => received.push(payload));
    await pool.notify('tls_spec', 'over TLS');
    await eventually('the notification arrived', () => received.includes('over TLS'));
    const listening = await tls.sql<{ ssl: boolean }>(
      "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = $1 AND a.query LIKE 'LISTEN%'",
      [appNameOf(pool)]);
    expect(listening).toEqual([{ ssl: true }]);
    await stop();
  });

  it.each([
    ['cancelQuery', 'postgres'],
    ['abandon', 'postgres'],
    ['cancelQuery', 'direct'],
  ] as const)('cancel requests (%s, sslnegotiation %s): the statement is cancelled over a path that carries TLS only', async (how, negotiation) => {
    // PostgreSQL takes a CancelRequest before pg_hba.conf, so the server alone would honour
    // one in clear; the gate drops every connection that does not begin with TLS.
    const gate = await TlsGate.start(tls.port);
    try {
      const pool = createTestPool({
        connectionString: tls.url({ port: gate.port, query: verifyFull() }), connection: { sslnegotiation: negotiation }, min: 1, max: 1,
      });
      await pool.open({ wait: true });
      const client = await pool.acquire();
      const sleeping = client.query('SELECT pg_sleep(60)').then(() => 'not cancelled', (error: { code?: string }) => error.code);
      await eventually('the statement runs', async () => (await tls.sql<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
        [appNameOf(pool)]))[0].n === 1);
      if (how === 'cancelQuery') expect(await pool.cancelQuery(client)).toBe(true);
      else pool.abandon(client);
      const timeout = new Promise<string>((resolve) => setTimeout(() => resolve('still running after 15 s'), 15_000).unref());
      expect(await Promise.race([sleeping, timeout])).toBe('57014');
      client.release();
      expect({ inClear: gate.count('in-clear'), cancelsInClear: gate.count('cancel-in-clear') }).toEqual({ inClear: 0, cancelsInClear: 0 });
      // The pooled session and the cancel request, each negotiated as the settings say.
      expect(gate.count(negotiation === 'direct' ? 'direct-tls' : 'ssl-request')).toBeGreaterThanOrEqual(2);
    } finally {
      await gate.close();
    }
  });

  it('PostgreSQL honours a cancel request in clear even on a hostssl-only server (why the test above needs its gate)', async () => {
    const pool = createTestPool({ connectionString: tls.url({ query: verifyFull() }), min: 1, max: 1 });
    await pool.withConnection(async (client) => {
      const sleeping = client.query('SELECT pg_sleep(60)').then(() => 'not cancelled', (error: { code?: string }) => error.code);
      await eventually('the statement runs', async () => (await tls.sql<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1 AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
        [appNameOf(pool)]))[0].n === 1);
      const { processID, secretKey } = client as unknown as { processID: number; secretKey: number };
      // No TLS settings: the request goes in clear, as the pool's did before it used the session's.
      expect(await sendCancelRequest({ host: '127.0.0.1', port: tls.port }, processID, secretKey, 5_000)).toBe(true);
      expect(await sleeping).toBe('57014');
    });
  });

  it('multi-host attempts: each host is tried with TLS, a server without it is passed over, and each host\'s reason is named', async () => {
    const plain = parseIntoClientConfig(testUrl());
    const password = encodeURIComponent(TEST_PASSWORD);
    const down = await freePort();
    const hosts = `127.0.0.1:${down},${plain.host}:${plain.port},127.0.0.1:${tls.port}`;
    const pool = createTestPool({ connectionString: `postgresql://postgres:${password}@${hosts}/postgres?${verifyFull()}`, min: 1 });
    await pool.open({ wait: true });
    expect(await ownSession(pool)).toEqual({ ssl: true, port: tls.port });

    const wrongCa = `sslmode=verify-full&sslrootcert=${encodeURIComponent(tls.ca.file('wrong-ca.crt'))}`;
    const failing = createTestPool({ connectionString: `postgresql://postgres:${password}@${hosts}/postgres?${wrongCa}`, min: 1 });
    const error = await failing.open({ wait: true }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PoolOpenError);
    const message = (error as Error).message;
    expect(message).toContain('every host failed: ');
    expect(message).toContain(`127.0.0.1:${down}: connect ECONNREFUSED`);
    expect(message).toContain(`${plain.host}:${plain.port}: The server does not support SSL connections`);
    expect(message).toContain(`127.0.0.1:${tls.port}: the server's TLS certificate is not signed by a CA this client trusts`);
  });
});

describe('what sslmode means (pg-connection-string 2.x, as installed)', () => {
  it.each(['require', 'prefer', 'verify-ca'])('sslmode=%s verifies as verify-full does: without sslrootcert, Node\'s own CA list, which lacks the server\'s CA', async (mode) => {
    const pool = createTestPool({ connectionString: tls.url({ query: `sslmode=${mode}` }), min: 1 });
    await expect(pool.open({ wait: true })).rejects.toThrow(/not signed by a CA this client trusts/);
  });

  it('sslmode=disable sends no TLS (so the TLS-only server refuses the session)', async () => {
    const pool = createTestPool({ connectionString: tls.url({ query: 'sslmode=disable' }), min: 1 });
    await expect(pool.open({ wait: true })).rejects.toThrow(/no pg_hba\.conf entry .* no encryption/);
  });

  it('sslmode=require with sslrootcert checks the host name as verify-full does', async () => {
    const query = `sslmode=require&sslrootcert=${encodeURIComponent(tls.ca.file('ca.crt'))}`;
    const pool = createTestPool({ connectionString: tls.url({ host: '127.0.0.2', query }), min: 1 });
    await expect(pool.open({ wait: true })).rejects.toThrow(/not for the host connected to/);
  });

  it.each([
    ['uselibpqcompat=true&sslmode=require', (): Partial<PgPoolOptions> => ({ connectionString: tls.url({ host: '127.0.0.2', query: 'uselibpqcompat=true&sslmode=require' }) })],
    ['ssl: { rejectUnauthorized: false }', (): Partial<PgPoolOptions> => ({ connectionString: tls.url({ host: '127.0.0.2' }), connection: { ssl: { rejectUnauthorized: false } } })],
  ])('%s encrypts without verifying: it connects to a server of an unknown CA, by an address its certificate does not list', async (_how, options) => {
    const pool = createTestPool({ ...options(), min: 1 });
    await pool.open({ wait: true });
    expect(await ownSession(pool)).toEqual({ ssl: true, port: tls.port });
  });

  it('uselibpqcompat=true&sslmode=verify-ca checks the CA but not the host name', async () => {
    const query = (ca: 'ca.crt' | 'wrong-ca.crt'): string =>
      `uselibpqcompat=true&sslmode=verify-ca&sslrootcert=${encodeURIComponent(tls.ca.file(ca))}`;
    const pool = createTestPool({ connectionString: tls.url({ host: '127.0.0.2', query: query('ca.crt') }), min: 1 });
    await pool.open({ wait: true });
    expect(await ownSession(pool)).toEqual({ ssl: true, port: tls.port });
    const wrong = createTestPool({ connectionString: tls.url({ host: '127.0.0.2', query: query('wrong-ca.crt') }), min: 1 });
    await expect(wrong.open({ wait: true })).rejects.toThrow(/not signed by a CA this client trusts/);
  });

  it.each(['/nonexistent/root.crt', 'system'])('an sslrootcert that cannot be read (%s) is a PoolConfigError naming the file', (file) => {
    expect(() => createTestPool({ connectionString: tls.url({ query: `sslmode=verify-full&sslrootcert=${file}` }) }))
      .toThrow(PoolConfigError);
    expect(() => createTestPool({ connectionString: tls.url({ query: `sslmode=verify-full&sslrootcert=${file}` }) }))
      .toThrow(`\`connectionString\` names a file that cannot be read: ${file} (ENOENT)`);
  });
});

describe('TLS secrets', () => {
  it('a client certificate with an encrypted key logs in; no key, certificate body or passphrase shows in logs, errors, events, stats, util.inspect or JSON', async () => {
    const certUser = `postgresql://certuser@127.0.0.1:${tls.port}/postgres`;
    const lines: string[] = [];
    const logger = recordingLogger(lines);
    const seen: string[] = [];
    const watch = (pool: PgPool): PgPool => {
      pool.on('connectError', (error) => seen.push(error.message, String(error.stack), inspect(error)));
      pool.on('error', (error) => seen.push(error.message, inspect(error)));
      return pool;
    };
    const capture = async (promise: Promise<unknown>): Promise<void> => {
      await promise.catch((error: Error) => seen.push(error.message, String(error.stack), JSON.stringify(error), inspect(error, { depth: Infinity })));
    };

    const pool = watch(createTestPool({ connectionString: certUser, connection: clientCertificate(), logger, min: 1 }));
    await pool.open({ wait: true });
    const { rows } = await pool.query('SELECT current_user AS "user", ssl, client_dn FROM pg_stat_ssl WHERE pid = pg_backend_pid()');
    expect(rows).toEqual([{ user: 'certuser', ssl: true, client_dn: '/CN=certuser' }]);
    const stop = await pool.listen('secrets_spec', () => undefined);
    await stop();
    await pool.withConnection((client) => {
      seen.push(inspect(client, { depth: 6 }), JSON.stringify((client as unknown as { ssl: unknown }).ssl));
    });

    // A wrong passphrase; a CA that did not sign the server's certificate, retried with backoff.
    const badPassphrase = watch(createTestPool({
      connectionString: certUser, connection: { ssl: { ...clientCertificate()?.ssl as object, passphrase: 'not-the-passphrase' } }, logger, min: 1,
    }));
    await capture(badPassphrase.open({ wait: true }));
    const reconnecting = watch(createTestPool({
      connectionString: certUser, connection: { ssl: { ...clientCertificate()?.ssl as object, ca: tls.ca.pem('wrong-ca.crt') } }, logger,
      min: 1, reconnectDelayMs: 10, reconnectMaxDelayMs: 20, acquireTimeoutMs: 200, unavailableTimeoutMs: 100,
    }));
    await reconnecting.open();
    await capture(reconnecting.acquire());
    await capture(reconnecting.listen('secrets_spec', () => undefined));
    await eventually('a retry was logged', () => lines.some((line) => line.includes('retrying in')));

    for (const subject of [pool, reconnecting]) {
      seen.push(JSON.stringify(subject.getStats()), JSON.stringify(subject), JSON.stringify(subject.options), subject.target,
        inspect(subject, { depth: Infinity }), inspect(subject.options, { depth: Infinity }), String(subject.options.target.clientConfig.ssl));
    }

    const everything = [...seen, ...lines].join('\n');
    // Which of OpenSSL's two errors a wrong passphrase gives depends on the random key and passphrase.
    expect(everything).toMatch(/the TLS client key could not be decrypted( or read)? \(error:[0-9A-F]+:(Provider routines::bad decrypt|DECODER routines::unsupported)\): check `ssl.passphrase`/);
    expect(everything).toContain('not signed by a CA this client trusts');
    // The options show that TLS is configured, and how, but not with what.
    expect(inspect(pool.options.target.clientConfig.ssl)).toBe("{\n  ca: '***',\n  rejectUnauthorized: true,\n  cert: '***',\n  key: '***',\n  passphrase: '***'\n}");
    for (const secret of tls.ca.secrets()) expect(everything).not.toContain(secret);
    expect(everything).not.toContain(TEST_PASSWORD);
  });
});

@Controller()
class HealthController {
  constructor(private readonly health: HealthCheckService, private readonly database: PgPoolHealthIndicator) {}

  @Get('health')
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([
      () => this.database.isHealthy('primary', { pool: 'default', timeoutMs: 2_000 }),
      () => this.database.isHealthy('replica', { pool: 'replica', timeoutMs: 2_000 }),
    ]);
  }
}

// Last: making the standby restarts the TLS server.
describe('replica pools (a streaming standby of the TLS server)', () => {
  let standby: PostgresServer;

  beforeAll(async () => {
    standby = await tls.standby();
    await eventually('the standby streams from the primary', async () =>
      (await tls.sql<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_replication WHERE state = 'streaming'"))[0].n === 1, 30_000);
  }, 60_000);

  afterAll(async () => {
    await standby?.destroy();
  });

  it('the Nest module\'s primary and replica pools connect with TLS, and health reports them up with no key, certificate body or passphrase', async () => {
    const password = encodeURIComponent(TEST_PASSWORD);
    const hosts = `127.0.0.1:${tls.port},127.0.0.1:${standby.port}`;
    const { app, registry, close } = await startApp({
      imports: [
        PgPoolModule.forRoot([
          { connectionString: `postgresql://postgres:${password}@${hosts}/postgres?${verifyFull()}`, targetSessionAttrs: 'read-write', min: 1 },
          { name: 'replica', connectionString: `postgresql://certuser@${hosts}/postgres`, targetSessionAttrs: 'standby', min: 2,
            connection: { ...clientCertificate(), application_name: uniqueAppName() } },
        ]),
        TerminusModule.forRoot({ logger: false }),
      ],
      controllers: [HealthController],
      providers: [PgPoolHealthIndicator],
    });
    try {
      const where = async (pool: PgPool): Promise<{ standby: boolean; ssl: boolean }> => (await pool.query<{ standby: boolean; ssl: boolean }>(
        'SELECT pg_is_in_recovery() AS standby, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()')).rows[0];
      expect(await where(registry.get('default'))).toEqual({ standby: false, ssl: true });
      expect(await where(registry.get('replica'))).toEqual({ standby: true, ssl: true });
      expect(await sessionsOf(registry.get('replica'), standby)).toEqual([{ ssl: true }, { ssl: true }]);
      const healthy = await request(app.getHttpServer()).get('/health').expect(200);
      expect(healthy.body.details.replica).toMatchObject({ status: 'up', poolSize: 2 });
      for (const secret of tls.ca.secrets()) expect(JSON.stringify(healthy.body)).not.toContain(secret);
    } finally {
      await close();
    }
  });

  it('a Nest app whose replica pool has the wrong CA does not start, and says why', async () => {
    const started = startApp({
      imports: [PgPoolModule.forRoot([
        { connectionString: tls.url({ query: verifyFull() }), min: 1 },
        { name: 'replica', connectionString: `postgresql://certuser@127.0.0.1:${standby.port}/postgres`, targetSessionAttrs: 'standby',
          connection: { ssl: { ...clientCertificate()?.ssl as object, ca: tls.ca.pem('wrong-ca.crt') } }, min: 1 },
      ])],
    });
    await expect(started).rejects.toThrow(/^pool 'replica': cannot connect to 127\.0\.0\.1:\d+\/postgres: no host matched target_session_attrs=standby: 127\.0\.0\.1:\d+: the server's TLS certificate is not signed by a CA this client trusts/);
  });

  it('health names a replica pool\'s TLS failure, with no key, certificate body or passphrase', async () => {
    const { app, close } = await startApp({
      imports: [
        PgPoolModule.forRoot([
          { connectionString: tls.url({ query: verifyFull() }), min: 1 },
          { name: 'replica', connectionString: `postgresql://certuser@127.0.0.1:${standby.port}/postgres`, targetSessionAttrs: 'standby',
            connection: { ssl: { ...clientCertificate()?.ssl as object, ca: tls.ca.pem('wrong-ca.crt') } }, min: 1, failFast: false,
            reconnectDelayMs: 50, reconnectMaxDelayMs: 200 },
        ]),
        TerminusModule.forRoot({ logger: false }),
      ],
      controllers: [HealthController],
      providers: [PgPoolHealthIndicator],
    });
    try {
      const health = await request(app.getHttpServer()).get('/health').expect(503);
      expect(health.body.details.primary.status).toBe('up');
      expect(health.body.details.replica.status).toBe('down');
      expect(health.body.details.replica.message).toMatch(/the server's TLS certificate is not signed by a CA this client trusts/);
      for (const secret of tls.ca.secrets()) expect(JSON.stringify(health.body)).not.toContain(secret);
    } finally {
      await close();
    }
  });
});
