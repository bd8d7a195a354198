/** Stops the server that global-setup.js started, if it started one. */
export default async function globalTeardown() {
  await globalThis.__PG_TEST_SERVER__?.destroy();
}
