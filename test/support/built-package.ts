import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: the package as npm would publish it. */
export const packageRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * Tests that run the package the way a user does (a separate node process importing
 * 'nestjs-pg-pool') need the compiled dist/; `npm test` builds it before jest runs.
 */
export function requireBuiltPackage(): void {
  if (!existsSync(join(packageRoot, 'dist', 'index.js'))) {
    throw new Error("dist/ is missing: run 'npm run build' (npm test does it before jest)");
  }
}
