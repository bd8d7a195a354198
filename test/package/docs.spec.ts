import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { packageRoot } from '../support/built-package.js';

describe('the API reference', () => {
  it('documents every public symbol (typedoc validation: notDocumented, notExported, invalidLink)', async () => {
    const typedoc = join(packageRoot, 'node_modules', '.bin', 'typedoc');
    const result = await promisify(execFile)(typedoc, ['--emit', 'none'], { cwd: packageRoot, encoding: 'utf8' })
      .catch((error: { stdout?: string; stderr?: string }) => ({ stdout: `${error.stdout ?? ''}${error.stderr ?? ''}`, failed: true }));
    expect('failed' in result ? result.stdout : 'ok').toBe('ok');
  }, 60_000);
});
