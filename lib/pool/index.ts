export * from './errors';
export * from './pg-pool';
export type { PooledClient } from './pooled-client';
export type { PoolStats } from './pool-stats';
export type { MaintenanceRun } from './maintainer';
export type { RemoveReason } from './pool-connection';
export type { PoolLogger } from './pool-logger';
export {
  POOL_DEFAULTS,
  type PgPoolOptions,
  type ResolvedPoolOptions,
  type IsolationLevel,
  type ClientHook,
  type ClientConstructor,
  type ReconnectFailedInfo,
} from './pool-options';
export type { TransactionOptions } from './transaction-options';
export { redactConnectionString } from './redact';
