import './global-setup';

export default async function globalTeardown(): Promise<void> {
  await globalThis.__PG_TEST_SERVER__?.destroy();
}
