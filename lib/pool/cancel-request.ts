import { connect, isIP, type Socket } from 'node:net';
import { connect as connectTls, type ConnectionOptions } from 'node:tls';
import type { HostAddress } from './target-session.js';
import type { TlsSetting } from './tls.js';

/** The protocol's CancelRequest code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;
/** The protocol's SSLRequest code (1234 << 16 | 5679). */
const SSL_REQUEST_CODE = 80877103;

/** The TLS settings of the session to cancel: its pg client's `ssl` and `sslNegotiation`. */
export interface CancelTls {
  ssl: TlsSetting;
  /** pg's `sslnegotiation`: `'direct'` starts TLS at once, without an SSLRequest. */
  negotiation?: string;
}

/**
 * Sends the protocol's CancelRequest for one backend (its process id and secret key) to
 * the server that holds the session, as libpq's `PQcancel` does, and resolves once the
 * server has taken it (it closes the socket after signalling the backend) or `timeoutMs`
 * has passed. Unlike `pg_cancel_backend(pid)` from another session, it reaches the right
 * server on a multi-host pool and works through PgBouncer, whose process ids are its own.
 *
 * With the session's TLS settings, the request goes over TLS negotiated as pg does for
 * the session (SSLRequest, or direct), verified the same way: PostgreSQL takes a
 * CancelRequest before pg_hba.conf is consulted, so one in clear would cross a network
 * that the settings say must carry TLS only, and would work where the session's
 * certificate checks would have refused the server. A server that answers 'N' gets
 * nothing, as pg would send the session nothing.
 * Resolves true if the request was delivered; never rejects.
 */
export function sendCancelRequest(host: HostAddress, processID: number, secretKey: number, timeoutMs: number,
  tls?: CancelTls): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let delivered = false;
    let socket: Socket;
    let secure: Socket | undefined;
    const finish = (): void => {
      clearTimeout(timer);
      secure?.destroy();
      socket.destroy();
      resolve(delivered);
    };
    const send = (stream: Socket): void => {
      const packet = Buffer.alloc(16);
      packet.writeInt32BE(16, 0);
      packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
      packet.writeInt32BE(processID | 0, 8);
      // pg reads the key as a signed int32; `| 0` keeps an unsigned one in range too.
      packet.writeInt32BE(secretKey | 0, 12);
      stream.write(packet, () => {
        delivered = true;
      });
    };
    // pg's upgradeToSSL, option for option, so that the cancel trusts exactly what the session did.
    const upgrade = (ssl: Exclude<TlsSetting, false | undefined>): void => {
      const options: ConnectionOptions = { socket, host: host.host };
      if (ssl !== true) {
        Object.assign(options, ssl);
        if ('key' in ssl) options.key = ssl.key;
      }
      if (tls?.negotiation === 'direct') options.ALPNProtocols = ['postgresql'];
      // SNI must not be an IP address (RFC 6066).
      if (isIP(host.host) === 0) options.servername = host.host;
      const stream = connectTls(options);
      secure = stream;
      stream.once('secureConnect', () => send(stream));
      stream.once('error', finish);
      stream.once('close', finish);
      stream.resume();
    };
    // A Unix-domain socket directory, as libpq and pg accept for `host`.
    socket = host.host.startsWith('/')
      ? connect(`${host.host}/.s.PGSQL.${host.port}`)
      : connect(host.port, host.host);
    const timer = setTimeout(finish, timeoutMs);
    // A cancel is best effort: it must not keep a process alive that has nothing else to do.
    timer.unref();
    socket.unref();
    socket.once('error', finish);
    socket.once('close', finish);
    const ssl = tls?.ssl;
    socket.once('connect', () => {
      if (!ssl) {
        send(socket);
        socket.resume();
      } else if (tls?.negotiation === 'direct') {
        upgrade(ssl);
      } else {
        const request = Buffer.alloc(8);
        request.writeInt32BE(8, 0);
        request.writeInt32BE(SSL_REQUEST_CODE, 4);
        socket.write(request);
        // One byte: 'S' to go on in TLS; anything else ('N': TLS is off) ends it undelivered.
        socket.once('data', (answer) => (answer[0] === 0x53 ? upgrade(ssl) : finish()));
      }
    });
  });
}
