import { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** The HTTP response as far as disconnect detection needs it (Express's, or Fastify's `raw`). */
export interface ClosableResponse {
  writableFinished?: boolean;
  /** True once the response (its socket) is gone, sent or not. */
  closed?: boolean;
  destroy?(): void;
  on(event: 'close', listener: () => void): unknown;
  off(event: 'close', listener: () => void): unknown;
}

/** Where a socket keeps what to call when it closes: one entry per request it carries now. */
const ON_CLOSE = Symbol('nestjs-pg-pool on socket close');

type WatchedSocket = Socket & { [ON_CLOSE]?: Array<() => void> };

/**
 * What `watchDisconnect` registered `onClose` in, for `unwatchDisconnect` to take it out
 * of once the request's work has ended; undefined when it went on the response itself.
 */
export type DisconnectWatch = Array<() => void> | undefined;

/**
 * Calls `onClose` when the request's connection closes. Watched on the request's socket,
 * not the response: a pipelined response waiting for the one before it has no socket yet,
 * and Node never tells it that the client left. A keep-alive connection carries thousands
 * of requests: its socket gets one 'close' listener for all of them, and each request an
 * entry in a list while its work runs. A list, not a Set: a Set must give each new
 * closure an identity hash, which cost several µs per request in a profiled server; the
 * list almost always holds one entry (more only while pipelined requests wait).
 * HTTP/2's response (Fastify's) gets a listener of its own, which stays: the response is
 * dropped when it ends.
 */
export function watchDisconnect(response: ClosableResponse, onClose: () => void): DisconnectWatch {
  const socket = response instanceof ServerResponse ? (response.req?.socket ?? response.socket) as WatchedSocket | null : null;
  if (!socket) {
    response.on('close', onClose);
    return undefined;
  }
  let watchers = socket[ON_CLOSE];
  if (watchers === undefined) {
    const created: Array<() => void> = [];
    watchers = created;
    socket[ON_CLOSE] = created;
    socket.once('close', () => {
      // Taken out first: a watcher's work may end, and unwatch itself, while they run.
      for (const watcher of created.splice(0)) watcher();
    });
  }
  watchers.push(onClose);
  // Gone already: the close event is past, or on its way.
  if (socket.destroyed) onClose();
  return watchers;
}

/** Stops watching for the request whose work has ended: its socket goes on to the next request. */
export function unwatchDisconnect(watch: DisconnectWatch, onClose: () => void): void {
  if (watch === undefined) return;
  const index = watch.lastIndexOf(onClose);
  if (index === watch.length - 1) watch.pop();
  else if (index >= 0) watch.splice(index, 1);
}
