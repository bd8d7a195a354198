/**
 * NestJS 12 ships as ES modules only, and Jest loads ES modules only in its
 * experimental VM-modules mode on Node 20: `npm test` runs it with
 * --experimental-vm-modules, and this project is ESM throughout.
 * @type {import('jest').Config}
 */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.spec.ts'],
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    // The sample imports the package by name, as a user would: map it to the sources.
    '^nestjs-pg-pool$': '<rootDir>/lib/index.ts',
    '^nestjs-pg-pool/nest$': '<rootDir>/lib/nest/index.ts',
    '^nestjs-pg-pool/prometheus$': '<rootDir>/lib/prometheus.ts',
    '^nestjs-pg-pool/opentelemetry$': '<rootDir>/lib/opentelemetry.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json', useESM: true, diagnostics: false }] },
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  setupFilesAfterEnv: ['<rootDir>/test/support/leak-check.ts'],
  testTimeout: 30000,
  // Two cores: one test file per core, all against the one server.
  maxWorkers: 2,
};
