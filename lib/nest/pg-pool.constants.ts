/** The database id used when none is given: `@InjectPool()`, `@UseConnection()`, `currentConnection()`. */
export const DEFAULT_POOL_NAME = 'default';

/** Metadata key under which `@UseConnection()` stores its settings. */
export const USE_CONNECTION_METADATA = 'nestjs-pg-pool:use-connection';

/** Shutdown waits this long for checked-out clients before closing them anyway. */
export const DEFAULT_SHUTDOWN_TIMEOUT_MS = 10_000;
