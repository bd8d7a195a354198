import { connect, type Socket } from 'node:net';
import type { HostAddress } from './target-session.js';

/** The protocol's CancelRequest code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

/**
 * Sends the protocol's CancelRequest for one backend (its process id and secret key) to
 * the server that holds the session, as libpq's `PQcancel` does, and resolves once the
 * server has taken it (it closes the socket after signalling the backend) or `timeoutMs`
 * has passed. Unlike `pg_cancel_backend(pid)` from another session, it reaches the right
 * server on a multi-host pool and works through PgBouncer, whose process ids are its own.
 * Resolves true if the request was delivered; never rejects.
 */
export function sendCancelRequest(host: HostAddress, processID: number, secretKey: number, timeoutMs: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let delivered = false;
    let socket: Socket;
    const finish = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(delivered);
    };
    // A Unix-domain socket directory, as libpq and pg accept for `host`.
    socket = host.host.startsWith('/')
      ? connect(`${host.host}/.s.PGSQL.${host.port}`)
      : connect(host.port, host.host);
    const timer = setTimeout(finish, timeoutMs);
    // A cancel is best effort: it must not keep a process alive that has nothing else to do.
    timer.unref();
    socket.unref();
    socket.once('connect', () => {
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(16, 0);
      packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      packet.writeInt32BE(processID | 0, 8);
      // pg reads the key as a signed int32; `| 0` keeps an unsigned one in range too.
      packet.writeInt32BE(secretKey | 0, 12);
      socket.write(packet, () => {
        delivered = true;
      });
    });
    socket.once('error', finish);
    socket.once('close', finish);
    socket.resume();
  });
}
