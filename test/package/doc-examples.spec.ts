import { execFile, spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import ts from 'typescript';
import { packageRoot, requireBuiltPackage } from '../support/built-package.js';
import { adminQuery, eventually, testUrl } from '../support/database.js';

/**
 * The README's and the guides' TypeScript is code users copy: every block is compiled
 * here, with strict settings, against the package's own types. A block marked
 * ```` ```ts fragment ```` may use `pool`, `registry` and the notes app's classes without
 * declaring them; ```` ```ts run ```` blocks are also run against the test server.
 */
interface Example {
  file: string;
  index: number;
  kind: 'module' | 'fragment' | 'run';
  code: string;
}

const documents = ['README.md', ...readdirSync(join(packageRoot, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const examples: Example[] = documents.flatMap((file) => {
  const text = readFileSync(join(packageRoot, file), 'utf8');
  return [...text.matchAll(/^```ts( fragment| run)?\n([\s\S]*?)^```$/gm)].map((match, index) => ({
    file, index, kind: (match[1]?.trim() as 'fragment' | 'run' | undefined) ?? 'module', code: match[2],
  }));
});

/** What a fragment may take as given, each declared only if the fragment does not declare it. */
const GIVEN: Array<{ name: string; declaration: string }> = [
  { name: 'pool', declaration: "declare const pool: import('nestjs-pg-pool').PgPool;" },
  { name: 'registry', declaration: "declare const registry: import('nestjs-pg-pool/nest').PgPoolRegistry;" },
  { name: 'NotesController', declaration: 'declare class NotesController {}' },
  { name: 'NotesRepository', declaration: 'declare class NotesRepository {}' },
];

const workDir = join(packageRoot, 'test', '.doc-examples');
const fileOf = (example: Example): string => `${example.file.replace(/[/.]/g, '_')}_${example.index}`;

describe('the examples in the README and docs/', () => {
  beforeAll(() => {
    rmSync(workDir, { recursive: true, force: true });
    mkdirSync(workDir, { recursive: true });
  });

  afterAll(() => {
    rmSync(workDir, { recursive: true, force: true });
  });

  it('has examples to check, the README\'s two among them', () => {
    expect(examples.length).toBeGreaterThanOrEqual(10);
    expect(examples.filter((e) => e.file === 'README.md' && e.kind === 'run')).toHaveLength(2);
  });

  it('never shows a transaction-local setting outside a transaction (PostgreSQL warns and ignores it there)', () => {
    for (const example of examples) {
      // Each SET LOCAL / set_config(..., true) must sit in a withTransaction or transactional @UseConnection.
      const local = [...example.code.matchAll(/['"`]SET LOCAL|set_config\([^)]*,\s*true\)/g)];
      for (const match of local) {
        const before = example.code.slice(0, match.index);
        const opened = Math.max(before.lastIndexOf('withTransaction('), before.lastIndexOf('transaction: true'), before.lastIndexOf("'BEGIN"));
        expect({ where: `${example.file} #${example.index}`, inTransaction: opened >= 0 && opened > before.lastIndexOf('withConnection(') })
          .toEqual({ where: `${example.file} #${example.index}`, inTransaction: true });
      }
    }
  });

  it('compiles every TypeScript block, strict, against the package\'s types', async () => {
    for (const example of examples) {
      const given = example.kind === 'fragment'
        ? GIVEN.filter(({ name }) => !new RegExp(`\\b(const|class|let|function|interface)\\s+${name}\\b`).test(example.code))
          .map(({ declaration }) => declaration).join('\n') + '\n'
        : '';
      // Each block is a module of its own: its names do not meet another block's.
      writeFileSync(join(workDir, `${fileOf(example)}.ts`), `${given}${example.code}\nexport {};\n`);
    }
    writeFileSync(join(workDir, 'tsconfig.json'), JSON.stringify({
      extends: '../../tsconfig.json',
      compilerOptions: { noUnusedLocals: false, noEmit: true },
      include: ['*.ts'],
    }));
    const tsc = join(packageRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = await promisify(execFile)(process.execPath, [tsc, '-p', join(workDir, 'tsconfig.json')], { cwd: packageRoot })
      .then(() => 'ok', (error: { stdout?: string }) => error.stdout ?? 'tsc failed');
    expect(result).toBe('ok');
  }, 120_000);

  describe('run against the test server', () => {
    beforeAll(async () => {
      requireBuiltPackage();
      await adminQuery('CREATE TABLE IF NOT EXISTS readme_notes (id serial PRIMARY KEY, title text NOT NULL)');
    });

    /** The block as JavaScript next to the package, so that it imports 'nestjs-pg-pool' as a user would. */
    function compiled(example: Example): string {
      const { outputText } = ts.transpileModule(example.code, {
        compilerOptions: {
          module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022,
          experimentalDecorators: true, emitDecoratorMetadata: true,
        },
      });
      const path = join(workDir, `${fileOf(example)}.mjs`);
      writeFileSync(path, outputText);
      return path;
    }

    const runnable = examples.filter((e) => e.kind === 'run');
    const scripts = runnable.filter((e) => !e.code.includes('NestFactory'));
    const apps = runnable.filter((e) => e.code.includes('NestFactory'));

    it.each(scripts.map((e) => [`${e.file} #${e.index}`, e] as const))('runs the script in %s', async (_name, example) => {
      const { stdout } = await promisify(execFile)(process.execPath, [compiled(example)], {
        cwd: packageRoot, env: { ...process.env, DATABASE_URL: testUrl() }, timeout: 30_000,
      });
      // It ran to its end (execFile rejects on a non-zero exit) and said what it found.
      expect(stdout.trim()).not.toBe('');
    }, 40_000);

    it.each(apps.map((e) => [`${e.file} #${e.index}`, e] as const))('serves requests with the app in %s, and stops on SIGTERM', async (_name, example) => {
      const child = spawn(process.execPath, [compiled(example)], {
        cwd: packageRoot, env: { ...process.env, DATABASE_URL: testUrl(), PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (chunk: Buffer) => { output += chunk.toString(); });
      child.stderr.on('data', (chunk: Buffer) => { output += chunk.toString(); });
      const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })));
      try {
        await eventually('the app listens', () => /listening on (http:\/\/\S+)/.test(output), 20_000);
        const base = (/listening on (http:\/\/\S+)/.exec(output) as RegExpExecArray)[1].replace('[::1]', '127.0.0.1');
        const created = await fetch(`${base}/notes`, {
          method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ title: 'from the README' }),
        });
        expect(created.status).toBe(201);
        const listed = await (await fetch(`${base}/notes`)).json() as Array<{ title: string }>;
        expect(listed.map((note) => note.title)).toContain('from the README');
      } finally {
        child.kill('SIGTERM');
      }
      // Nest's shutdown hooks close the app (the pool drains), then re-raise the signal.
      expect(await exited).toEqual({ code: null, signal: 'SIGTERM' });
      expect(output).not.toMatch(/error/i);
    }, 40_000);
  });
});
