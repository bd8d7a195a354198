import { PgPool, TenantPools } from '../../lib/index.js';
import { recordingLogger } from '../support/database.js';

/** Connection strings a resolver might produce, with a password, each wrong in some way. */
const SECRET = 'Secr3tPw';
const URLS = [
  `postgresql://u:${SECRET}@localhost:notaport/db`,
  `postgresql://u:${SECRET}@[::1/db`,
  `postgresql://u:${SECRET}@host:5432/db?sslmode=bogus`,
  `postgresql://u:${SECRET}@host:5432/db?connect_timeout=abc`,
  `postgresql://u:${SECRET}@host:99999/db`,
  `postgresql://u:Secr%ZZ3tPw@host/db`,
  `postgresql://u:${SECRET}@host/db?sslrootcert=/no/such/file`,
];

describe('no password in the errors of a bad connection string', () => {
  for (const url of URLS) {
    it(`new PgPool / TenantPools.get with ${url.replace(SECRET, '<pw>')}`, async () => {
      const texts: string[] = [];
      const logger = recordingLogger();
      try {
        const pool = new PgPool({ connectionString: url, min: 0, logger });
        await pool.close();
      } catch (error) {
        texts.push(String((error as Error).message), String((error as Error).stack), String(((error as Error).cause as Error | undefined)?.message));
      }
      const tenants = new TenantPools({ resolve: () => ({ connectionString: url, logger }), logger });
      try {
        const pool = await tenants.get('t');
        await pool.query('SELECT 1').catch((error: Error) => texts.push(error.message));
      } catch (error) {
        texts.push(String((error as Error).message), String((error as Error).stack));
      }
      await tenants.close();
      texts.push(...logger.lines);
      const leaked = texts.filter((text) => text.includes(SECRET) || text.includes('Secr%ZZ3tPw'));
      expect(leaked).toEqual([]);
    }, 20_000);
  }
});
