import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

const root = join(__dirname, '..', '..');

describe('the published package', () => {
  it("builds to dist/ with typings, and require('nestjs-pg-pool') loads the engine", () => {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: root, stdio: 'pipe' });
    expect(existsSync(join(root, 'dist', 'index.d.ts'))).toBe(true);
    expect(existsSync(join(root, 'dist', 'pool', 'pg-pool.d.ts'))).toBe(true);
    // A package may require itself by name through its "exports": the same path a user's require takes.
    const script = `const m = require('nestjs-pg-pool');
      const pool = new m.PgPool({ connectionString: 'postgresql://u:secret@localhost/db', min: 0 });
      console.log(JSON.stringify({ PgPool: typeof m.PgPool, errors: [m.PoolTimeoutError, m.PoolConfigError].map((e) => e.name),
        redacted: m.redactConnectionString('postgresql://u:secret@h/db'), state: pool.state }));`;
    const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({
      PgPool: 'function', errors: ['PoolTimeoutError', 'PoolConfigError'], redacted: 'postgresql://u:***@h/db', state: 'new',
    });
  });
});
