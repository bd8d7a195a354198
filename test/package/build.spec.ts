import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
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

  it('packs the licence, and source maps that carry their sources (lib/ is not shipped)', () => {
    const [pack] = JSON.parse(execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: packageRoot, encoding: 'utf8' })) as
      Array<{ files: Array<{ path: string }> }>;
    const files = pack.files.map((file) => file.path);
    expect(files).toEqual(expect.arrayContaining(['LICENSE', 'package.json', 'dist/index.js', 'dist/index.d.ts']));
    expect(files.filter((file) => !file.startsWith('dist/') && !['LICENSE', 'package.json', 'README.md'].includes(file))).toEqual([]);
    const maps = files.filter((file) => file.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(10);
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(readFileSync(join(packageRoot, map), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
      expect({ map, inlined: sourcesContent?.length === sources.length && sourcesContent.every((text) => text.length > 0) }).toEqual({ map, inlined: true });
    }
    // `npm pack` on a fresh clone (the README's install) builds dist/ first.
    expect((JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.prepack)
      .toBe('npm run build');
    const licence = readFileSync(join(packageRoot, 'LICENSE'), 'utf8');
    expect(licence).toMatch(/^MIT License/);
    expect((JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { license: string }).license).toBe('MIT');
  });

  it('states one supported Node version, in package.json and the README alike', () => {
    const { engines } = JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { engines: { node: string } };
    const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8');
    const minimum = /^>=(\d+\.\d+)$/.exec(engines.node)?.[1];
    expect(minimum).toBeDefined();
    expect(readme).toContain(`Node ${minimum} or later`);
    expect(readme.match(/Node (\d+\.\d+) or later/g)?.every((claim) => claim === `Node ${minimum} or later`)).toBe(true);
  });

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
