export * from './errors.js';
export * from './pg-pool.js';
export type { PooledClient } from './pooled-client.js';
export type { PoolCounterName, PoolGaugeName, PoolStats } from './pool-stats.js';
export type { MaintenanceRun } from './maintainer.js';
export type { RemoveReason } from './pool-connection.js';
export type { PoolLogger } from './pool-logger.js';
export {
  POOL_DEFAULTS,
  type PgPoolOptions,
  type PgConnectionConfig,
  type ResolvedPoolOptions,
  type ClientHook,
  type ClientConstructor,
  type PgClientClass,
  type MultiplexOptions,
  type ReconnectFailedInfo,
  type ReconnectingPool,
} from './pool-options.js';
export type { IsolationLevel, TransactionOptions, TransactionSettings } from './transaction-options.js';
export type { PgPoolConfig } from './pg-pool-config.js';
export type { MultiplexSettings } from './multiplexer.js';
export type { ConnectCallback, QueryCallback } from './pg-callbacks.js';
export { redactConnectionString } from './redact.js';
export { ConnectionTarget } from './connection-target.js';
export type { TargetSessionAttrs, HostAddress } from './target-session.js';
export { PgListener, type NotificationHandler } from './pg-listener.js';
export { ConnectionBudget, type ConnectionBudgetStats, type BudgetMember } from './connection-budget.js';
export { TenantPools, type TenantPoolsOptions, type TenantPoolsHealth, type TenantResolver } from './tenant-pools.js';
