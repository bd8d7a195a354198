import { APP_PREFIX, adminQuery, appNameOf, eventually, loggedLines, sweptSecrets, testPassword, trackedPools, watchedPools } from './database.js';
import { TEST_PASSWORD } from './test-secrets.js';

/**
 * After every test: no pool has a client checked out, every pool the test created
 * closes and leaves the server, and no session of ours is `idle in transaction`.
 * Pools of a Nest app that lives across a file's tests are watched, not closed.
 */
afterEach(async () => {
  const leaks: string[] = [];
  for (const pool of [...trackedPools, ...watchedPools]) {
    if (pool.checkedOutCount > 0) leaks.push(`pool '${pool.name}' still has ${pool.checkedOutCount} client(s) checked out`);
  }
  const closed = [...trackedPools];
  trackedPools.clear();
  await Promise.all(closed.map((pool) => pool.close({ timeoutMs: 1_000 })));
  if (leaks.length > 0) throw new Error(`leak after test: ${leaks.join('; ')}`);

  const ours = (): Promise<Array<{ application_name: string; state: string | null }>> => adminQuery(
    "SELECT application_name, state FROM pg_stat_activity WHERE application_name LIKE $1 || '%'", [APP_PREFIX]);
  const inTransaction = (await ours()).filter((row) => row.state?.startsWith('idle in transaction'));
  if (inTransaction.length > 0) {
    throw new Error(`leak after test: ${inTransaction.length} session(s) left idle in transaction`);
  }
  // Backends exit asynchronously after the client's Terminate message: poll briefly.
  const closedNames = new Set(closed.map(appNameOf));
  await eventually('every closed pool has left the server',
    async () => (await ours()).every((row) => !closedNames.has(row.application_name)), 5_000);
});

/**
 * After every test file: no line any pool or Nest logger wrote, and no error an event
 * carried, contains a password of the test servers, raw or percent-encoded, nor a TLS
 * key, certificate body or passphrase that the file's tests registered.
 */
afterAll(() => {
  const secrets = [...new Set([testPassword(), TEST_PASSWORD, ...sweptSecrets].filter((p) => p && p.length >= 4))];
  const leaked = loggedLines.filter((line) => secrets.some((secret) => line.includes(secret) || line.includes(encodeURIComponent(secret))));
  loggedLines.length = 0;
  sweptSecrets.clear();
  if (leaked.length > 0) {
    const example = secrets.reduce((line, secret) => line.split(secret).join("<secret>"), leaked[0]);
    throw new Error(`a password or TLS secret appeared in ${leaked.length} log line(s) or event(s), e.g.: ${example.slice(0, 120)}`);
  }
});
