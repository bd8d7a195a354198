import { APP_PREFIX, adminQuery, eventually, trackedPools } from './database.js';

/**
 * After every test: no pool has a client checked out, every pool closes, and the server
 * shows no session of ours left behind, `idle in transaction` or otherwise.
 */
afterEach(async () => {
  const leaks: string[] = [];
  for (const pool of trackedPools) {
    if (pool.checkedOutCount > 0) leaks.push(`pool '${pool.name}' still has ${pool.checkedOutCount} client(s) checked out`);
  }
  await Promise.all([...trackedPools].map((pool) => pool.close({ timeoutMs: 1_000 })));
  trackedPools.clear();
  if (leaks.length > 0) throw new Error(`leak after test: ${leaks.join('; ')}`);

  const ours = (): Promise<Array<{ application_name: string; state: string }>> => adminQuery(
    "SELECT application_name, state FROM pg_stat_activity WHERE application_name LIKE $1 || '%'", [APP_PREFIX]);
  const inTransaction = (await ours()).filter((row) => row.state?.startsWith('idle in transaction'));
  if (inTransaction.length > 0) {
    throw new Error(`leak after test: ${inTransaction.length} session(s) left idle in transaction`);
  }
  // Backends exit asynchronously after the client's Terminate message: poll briefly.
  await eventually('every test session has left the server', async () => (await ours()).length === 0, 5_000);
});
