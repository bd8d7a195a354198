import { DEFAULT_POOL_NAME } from './pg-pool.constants.js';

const POOL_TOKEN_PREFIX = 'nestjs-pg-pool:pool:';

/** The injection token of a pool: what `@InjectPool(name)` injects. */
export function getPoolToken(name: string = DEFAULT_POOL_NAME): string {
  return `${POOL_TOKEN_PREFIX}${name}`;
}

/** The pool name of a token made by `getPoolToken`, or undefined for any other token. */
export function poolNameOfToken(token: unknown): string | undefined {
  return typeof token === 'string' && token.startsWith(POOL_TOKEN_PREFIX) ? token.slice(POOL_TOKEN_PREFIX.length) : undefined;
}
