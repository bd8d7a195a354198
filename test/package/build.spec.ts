import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot, requireBuiltPackage } from '../support/built-package.js';

describe('the published package', () => {
  beforeAll(requireBuiltPackage);

  const probe = `const pool = new m.PgPool({ connectionString: 'postgresql://u:secret@localhost/db', min: 0 });
    console.log(JSON.stringify({ PgPool: typeof m.PgPool, errors: [m.PoolTimeoutError, m.PoolConfigError].map((e) => e.name),
      redacted: m.redactConnectionString('postgresql://u:secret@h/db'), state: pool.state }));`;
  const expected = {
    PgPool: 'function', errors: ['PoolTimeoutError', 'PoolConfigError'], redacted: 'postgresql://u:***@h/db', state: 'new',
  };

  it('ships JavaScript and typings in dist/', () => {
    expect(existsSync(join(packageRoot, 'dist', 'index.d.ts'))).toBe(true);
    expect(existsSync(join(packageRoot, 'dist', 'pool', 'pg-pool.d.ts'))).toBe(true);
  });

  // A package may import itself by name through its "exports": the path a user's import takes.
  it("loads with import from 'nestjs-pg-pool'", () => {
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', `import * as m from 'nestjs-pg-pool'; ${probe}`],
      { cwd: packageRoot, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(expected);
  });

  it("loads with require('nestjs-pg-pool') from CommonJS (Node's require of ES modules)", () => {
    const out = execFileSync(process.execPath, ['--no-warnings', '-e', `const m = require('nestjs-pg-pool'); ${probe}`],
      { cwd: packageRoot, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(expected);
  });
});
