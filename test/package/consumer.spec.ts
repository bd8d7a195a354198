import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot, requireBuiltPackage } from '../support/built-package.js';
import { testUrlWithAppName } from '../support/database.js';

const execFileAsync = promisify(execFile);

/** execFile, with the command's own output in the error when it fails. */
async function run(file: string, args: string[], options: Parameters<typeof execFileAsync>[2]): Promise<{ stdout: string }> {
  try {
    const { stdout } = await execFileAsync(file, args, { ...options, encoding: 'utf8' });
    return { stdout: String(stdout) };
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string };
    throw new Error(`${file} ${args.join(' ')} failed:\n${stdout ?? ''}\n${stderr ?? ''}`);
  }
}

/** The version this repository develops with, so the consumer installs the same ones (from npm's cache). */
function devVersion(name: string): string {
  const lock = JSON.parse(readFileSync(join(packageRoot, 'package-lock.json'), 'utf8')) as { packages: Record<string, { version: string }> };
  return lock.packages[`node_modules/${name}`].version;
}

const CONSUMER = `import 'reflect-metadata';
import { Controller, Get, Injectable, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { PgPool, PoolTimeoutError, type PooledClient } from 'nestjs-pg-pool';
import { Conn, InjectPool, PgPoolModule, UseConnection } from 'nestjs-pg-pool/nest';

@Injectable()
class Totals {
  constructor(@InjectPool() private readonly pool: PgPool) {}
  async sum(): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('SELECT 20 + 22 AS n');
    return rows[0].n;
  }
}

@Controller()
class AnswerController {
  constructor(private readonly totals: Totals) {}

  @Get('answer')
  @UseConnection({ transaction: true })
  async answer(@Conn() client: PooledClient): Promise<{ answer: number; inTransaction: boolean; sum: number }> {
    const { rows } = await client.query<{ answer: number }>('SELECT 42 AS answer');
    return { answer: rows[0].answer, inTransaction: client.getTransactionStatus() === 'T', sum: await this.totals.sum() };
  }
}

@Module({
  imports: [PgPoolModule.forRoot({ connectionString: process.env.DATABASE_URL as string, min: 1, max: 2 })],
  controllers: [AnswerController],
  providers: [Totals],
})
class AppModule {}

async function main(): Promise<void> {
  const app = await NestFactory.create(AppModule, { logger: false });
  await app.listen(0, '127.0.0.1');
  const { port } = app.getHttpServer().address() as { port: number };
  const response = await fetch(\`http://127.0.0.1:\${port}/answer\`);
  console.log(JSON.stringify({ status: response.status, body: await response.json(), timeoutError: PoolTimeoutError.name }));
  await app.close();
}

void main();
`;

describe('a real consumer install', () => {
  beforeAll(requireBuiltPackage);

  it('npm pack, installed into a fresh CommonJS NestJS app, compiles under strict tsc and boots', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestjs-pg-pool-consumer-'));
    try {
      const { stdout: packed } = await run('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', dir], { cwd: packageRoot });
      const tarball = join(dir, packed.trim().split('\n').pop() as string);
      const app = join(dir, 'app');
      mkdirSync(join(app, 'src'), { recursive: true });
      // CommonJS on purpose: the most common NestJS setup; Node's require of ES modules loads the package.
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '1.0.0' }));
      writeFileSync(join(app, 'tsconfig.json'), JSON.stringify({
        compilerOptions: {
          module: 'nodenext', moduleResolution: 'nodenext', target: 'ES2022', strict: true, outDir: 'dist',
          experimentalDecorators: true, emitDecoratorMetadata: true, skipLibCheck: false, types: ['node'],
        },
        include: ['src'],
      }));
      writeFileSync(join(app, 'src', 'main.ts'), CONSUMER);
      const deps = ['@nestjs/common', '@nestjs/core', '@nestjs/platform-express', 'rxjs', 'reflect-metadata', 'typescript', '@types/node']
        .map((name) => `${name}@${devVersion(name)}`);
      await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball, ...deps], { cwd: app, timeout: 240_000 });
      await run(join(app, 'node_modules', '.bin', 'tsc'), ['-p', '.'], { cwd: app });
      const { stdout } = await run(process.execPath, ['--no-warnings', 'dist/main.js'], {
        cwd: app, env: { ...process.env, DATABASE_URL: testUrlWithAppName() }, timeout: 60_000,
      });
      expect(JSON.parse(stdout.trim())).toEqual({ status: 200, body: { answer: 42, inTransaction: true, sum: 42 }, timeoutError: 'PoolTimeoutError' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 300_000);
});
