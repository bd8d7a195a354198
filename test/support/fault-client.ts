import { EventEmitter } from 'node:events';
import type { ClientConfig, QueryConfig } from 'pg';
import type { ClientConstructor } from '../../lib/index.js';

/**
 * A fake PostgreSQL server and a fake `pg.Client` for it, for testing the pool engine
 * against faults the test controls: a server that refuses or black-holes connections,
 * statements that fail, hang or lose their socket, backends terminated while idle or
 * checked out. Pass `server.Client` as the pool's `Client` option.
 *
 * The client imitates what pg 8 does at the points the engine relies on, including its
 * orderings: a failed statement's promise rejects at the ErrorResponse, before the
 * ReadyForQuery that sets `readyForQuery` and the transaction status; a FATAL error
 * response arrives before the socket closes; a lost socket emits 'error' (twice, as pg
 * does: the socket error, then "Connection terminated unexpectedly") and then 'end'.
 *
 * Time goes through the global timers and `performance.now()`, so jest's fake timers
 * drive it. Latencies are plain timers; nothing here sleeps.
 *
 * Not imitated (a failure that needs these is the fake's, not the engine's): callbacks,
 * pipelining, COPY, cursors, notifications, type parsing, `query_timeout`; result rows
 * are fixed (`SELECT 1`, the capacity query, else none); CancelRequest (the engine sends
 * it over a real socket to host:port, which the fake host does not have). Kept from pg:
 * an `end()` during `connect()` leaves the connect promise pending for ever.
 */

/** What the server does with one statement instead of answering it normally. */
export type StatementFault =
  | { kind: 'fail'; code?: string; message?: string } // an ErrorResponse (SQLSTATE); the session lives on
  | { kind: 'slow'; ms: number } // answered after `ms`
  | { kind: 'hang' } // no answer until `heal()`, or until the socket goes
  | { kind: 'blackhole' } // no answer ever, and no answer to a Terminate either: a half-open peer; only destroying the socket ends it
  | { kind: 'lose-socket' } // the socket fails mid-statement (ECONNRESET), then closes
  | { kind: 'terminate' }; // the backend is terminated mid-statement (FATAL 57P01), then the socket closes

/** A fault the server applies to the statements it matches. */
export interface FaultRule {
  /** Which statements: a string matches the text exactly (trimmed, case-insensitive); a RegExp is tested on it. Default: all. */
  statement?: string | RegExp;
  /** Only on this session. Default: every session. */
  client?: FaultClient;
  fault: StatementFault;
  /** How many statements it applies to. Default 1; `Infinity` for all. */
  times?: number;
}

/** Latencies of the fake network and server, in ms. */
export interface FaultServerTiming {
  /** From connect() to the session being ready (or refused). Default 1. */
  connectMs?: number;
  /** From a statement to its answer. Default 1. */
  queryMs?: number;
  /**
   * From an ErrorResponse to the ReadyForQuery after it. 0: the same network read, as is
   * usual; more: the user's catch runs while `readyForQuery` is still false. Default 0.
   */
  readyAfterErrorMs?: number;
  /** From a FATAL error response (terminated backend) to the socket closing. Default 0. */
  closeAfterFatalMs?: number;
}

/** The ErrorResponse fields pg puts on its `DatabaseError`, and emits as 'errorMessage'. */
export class FakeDatabaseError extends Error {
  constructor(
    message: string,
    readonly severity: 'ERROR' | 'FATAL',
    readonly code: string,
  ) {
    super(message);
    this.name = 'error'; // pg's DatabaseError carries the protocol message name
  }
}

const TERMINATED = (): FakeDatabaseError =>
  new FakeDatabaseError('terminating connection due to administrator command', 'FATAL', '57P01');
const SHUTTING_DOWN = (): FakeDatabaseError =>
  new FakeDatabaseError('the database system is shutting down', 'FATAL', '57P03');

/** A statement the client has queued or sent. */
interface Statement {
  text: string;
  resolve: (result: FakeResult) => void;
  reject: (error: Error) => void;
}

/** The part of pg's `QueryResult` the engine and the tests read. */
export interface FakeResult {
  command: string;
  rowCount: number;
  rows: Array<Record<string, unknown>>;
  fields: never[];
  oid: number;
}

/**
 * Something that went wrong with a session. `slowMs` marks a statement that was only
 * slow: a reason to drop the session only if it exceeded a bound the pool applies.
 */
export interface Trouble {
  what: string;
  slowMs?: number;
}

/** Where a fake session is: how the server sees its socket. */
export type FakeSessionState = 'new' | 'connecting' | 'connected' | 'closed';

/**
 * The fake server: connection attempts, sessions, and the faults applied to them.
 * One per test run; the pool under test gets `server.Client`.
 */
export class FaultServer {
  /** False: connection attempts are refused (ECONNREFUSED). */
  up = true;
  /** 'hang': new connection attempts are accepted but never answered (a black-holed server). */
  connects: 'answer' | 'hang' = 'answer';
  readonly timing: Required<FaultServerTiming>;
  /** Every client ever made, in order. */
  readonly clients: FaultClient[] = [];
  /** Counts of connection attempts and their outcomes, as the server saw them. */
  connectAttempts = 0;
  connectsAccepted = 0;
  connectsFailed = 0;
  /** Called at each connection attempt, before it is answered: tests assert on the pool's state then. */
  onConnectAttempt: ((client: FaultClient) => void) | undefined;
  /** The class to pass as the pool's `Client` option. */
  readonly Client: ClientConstructor;

  private rules: Array<FaultRule & { remaining: number }> = [];
  private readonly hungStatements = new Set<{ client: FaultClient; statement: Statement }>();
  private readonly hungConnects = new Set<FaultClient>();
  private nextPid = 10_000;

  constructor(timing: FaultServerTiming = {}) {
    this.timing = { connectMs: 1, queryMs: 1, readyAfterErrorMs: 0, closeAfterFatalMs: 0, ...timing };
    const server = this;
    // pg's Client is constructed with its config only: the server is bound here.
    class BoundFaultClient extends FaultClient {
      constructor(config: ClientConfig = {}) {
        super(server, config);
      }
    }
    this.Client = BoundFaultClient as unknown as ClientConstructor;
  }

  /** Sessions whose socket is open: connecting or connected, whatever the pool thinks of them. */
  openSessions(): FaultClient[] {
    return this.clients.filter((client) => client.sessionState === 'connecting' || client.sessionState === 'connected');
  }

  /** Applies `fault` to the next statements matching the rule. */
  inject(rule: FaultRule): void {
    this.rules.push({ ...rule, remaining: rule.times ?? 1 });
  }

  /** The network and the server recover: no more faults, hung statements and connects are answered. */
  heal(): void {
    this.rules = [];
    this.connects = 'answer';
    for (const hung of [...this.hungStatements]) {
      this.hungStatements.delete(hung);
      hung.client.answer(hung.statement);
    }
    for (const client of [...this.hungConnects]) {
      this.hungConnects.delete(client);
      client.peerSilent = false;
      this.finishConnect(client);
    }
  }

  /** Stops the server: refuses new connections and, with `terminateSessions`, ends every session (FATAL 57P01). */
  stop(terminateSessions: boolean): void {
    this.up = false;
    if (terminateSessions) for (const client of this.openSessions()) this.terminate(client);
  }

  start(): void {
    this.up = true;
  }

  /** `pg_terminate_backend`: a FATAL 57P01 error response, then the server closes the socket. */
  terminate(client: FaultClient): void {
    if (client.sessionState !== 'connecting' && client.sessionState !== 'connected') return;
    this.hungConnects.delete(client);
    client.trouble('terminated by the server');
    client.fatal(TERMINATED(), this.timing.closeAfterFatalMs);
  }

  /** The network cuts the socket (a proxy or a NAT dropping it): ECONNRESET, then close. */
  cut(client: FaultClient): void {
    if (client.sessionState !== 'connecting' && client.sessionState !== 'connected') return;
    this.hungConnects.delete(client);
    client.trouble('socket cut');
    client.socketError(Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET', errno: -104, syscall: 'read' }));
  }

  /** @internal A client's connect(): refused, black-holed, or answered after `connectMs`. */
  attemptConnect(client: FaultClient): void {
    this.connectAttempts++;
    this.onConnectAttempt?.(client);
    if (!this.up) {
      setTimeout(() => {
        this.connectsFailed++;
        client.refused();
      }, this.timing.connectMs);
      return;
    }
    client.openSocket();
    if (this.connects === 'hang') {
      client.trouble('connect black-holed');
      client.peerSilent = true;
      this.hungConnects.add(client);
      return;
    }
    setTimeout(() => this.finishConnect(client), this.timing.connectMs);
  }

  private finishConnect(client: FaultClient): void {
    if (client.sessionState !== 'connecting') return; // timed out, or ended, meanwhile
    if (!this.up) {
      // The server went down during the handshake.
      this.connectsFailed++;
      client.trouble('server stopped during the handshake');
      client.fatal(SHUTTING_DOWN(), 0);
      return;
    }
    this.connectsAccepted++;
    client.accept(++this.nextPid, Math.floor(Math.random() * 0x7fffffff));
  }

  /** @internal A client sent a statement: answer it, or apply the first matching fault. */
  execute(client: FaultClient, statement: Statement): void {
    const fault = this.takeFault(client, statement.text);
    if (fault) client.trouble(`${fault.kind} on ${JSON.stringify(statement.text.slice(0, 40))}`, fault.kind === 'slow' ? fault.ms : undefined);
    const { queryMs } = this.timing;
    switch (fault?.kind) {
      case undefined:
        setTimeout(() => client.answer(statement), queryMs);
        return;
      case 'slow':
        setTimeout(() => client.answer(statement), fault.ms);
        return;
      case 'fail':
        setTimeout(() => client.errorResponse(statement,
          new FakeDatabaseError(fault.message ?? 'injected failure', 'ERROR', fault.code ?? 'XX000')), queryMs);
        return;
      case 'hang':
        this.hungStatements.add({ client, statement });
        return;
      case 'blackhole':
        client.peerSilent = true;
        return;
      case 'lose-socket':
        setTimeout(() => this.cut(client), queryMs);
        return;
      case 'terminate':
        setTimeout(() => this.terminate(client), queryMs);
        return;
    }
  }

  /** @internal The socket closed: statements hung on it will never be answered. */
  forget(client: FaultClient): void {
    this.hungConnects.delete(client);
    for (const hung of [...this.hungStatements]) if (hung.client === client) this.hungStatements.delete(hung);
  }

  private takeFault(client: FaultClient, text: string): StatementFault | undefined {
    const normalized = text.trim().toLowerCase();
    for (const rule of this.rules) {
      if (rule.remaining <= 0) continue;
      if (rule.client && rule.client !== client) continue;
      if (typeof rule.statement === 'string' && rule.statement.trim().toLowerCase() !== normalized) continue;
      if (rule.statement instanceof RegExp && !rule.statement.test(text)) continue;
      rule.remaining--;
      return rule.fault;
    }
    return undefined;
  }
}

/** pg's internal `Connection`: the engine listens for 'errorMessage' on it and may destroy its stream. */
class FakeWire extends EventEmitter {
  _ending = false;
  _connecting = false;
  readonly stream: { destroy: (error?: Error) => void; readonly writable: boolean };

  constructor(owner: FaultClient) {
    super();
    this.stream = {
      destroy: (error?: Error) => owner.destroySocket(error),
      get writable() {
        return owner.sessionState === 'connected';
      },
    };
  }
}

/** The outcome of a statement on a session, as PostgreSQL's transaction rules give it. */
function runStatement(text: string, status: 'I' | 'T' | 'E'):
  { result: FakeResult; status: 'I' | 'T' | 'E' } | { error: FakeDatabaseError; status: 'I' | 'T' | 'E' } {
  const verb = text.trim().split(/\s+/)[0]?.toUpperCase() ?? '';
  const ok = (command: string, next: 'I' | 'T' | 'E', rows: Array<Record<string, unknown>> = []) =>
    ({ result: { command, rowCount: rows.length, rows, fields: [] as never[], oid: 0 }, status: next });
  if (verb === 'ROLLBACK' || verb === 'ABORT') return ok('ROLLBACK', 'I');
  if (verb === 'COMMIT' || verb === 'END') return ok(status === 'E' ? 'ROLLBACK' : 'COMMIT', 'I');
  if (status === 'E') {
    return { error: new FakeDatabaseError('current transaction is aborted, commands ignored until end of transaction block', 'ERROR', '25P02'), status: 'E' };
  }
  if (verb === 'BEGIN' || verb === 'START') return ok('BEGIN', 'T');
  if (verb === 'DISCARD' && status === 'T') {
    return { error: new FakeDatabaseError('DISCARD ALL cannot run inside a transaction block', 'ERROR', '25001'), status: 'E' };
  }
  if (/max_connections/.test(text)) return ok('SELECT', status, [{ max_connections: 100, reserved: 3 }]);
  if (/^select 1$/i.test(text.trim())) return ok('SELECT', status, [{ '?column?': 1 }]);
  return ok(verb || 'EMPTY', status);
}

/**
 * A fake `pg.Client` on a `FaultServer`. Its public fields are pg's own (`readyForQuery`,
 * `processID`, `secretKey`, `_ending`, `_ended`, `connection`); the rest is for tests:
 * `sessionState`, `troubles` (faults applied to it), `reportedDead`, `createdAt`.
 *
 * Limitations: promise style only (no callbacks), no pipelining, no COPY, no
 * notifications; statements before connect() completes are queued, as pg does.
 */
export class FaultClient extends EventEmitter {
  // pg's fields, as the engine reads them.
  readonly connection: FakeWire;
  processID: number | null = null;
  secretKey: number | null = null;
  readyForQuery: boolean | undefined = undefined;
  _ending = false;
  _ended = false;
  _connecting = false;
  _connected = false;
  _queryable = true;

  // For tests.
  readonly id: number;
  /** When it was constructed (monotonic ms): the start of its connection attempt. */
  readonly createdAt: number;
  /** How the server sees its socket. */
  sessionState: FakeSessionState = 'new';
  /** What went wrong with it (faults applied, terminations): why the pool may rightly drop it. */
  readonly troubles: Trouble[] = [];
  /** It told its owner it is dead: an 'error' or 'end' event, or a FATAL error response. */
  reportedDead = false;
  /** The peer answers nothing any more, not even a Terminate: end() waits until the socket is destroyed. */
  peerSilent = false;
  readonly config: ClientConfig;

  private txStatus: 'I' | 'T' | 'E' | null = null;
  private readonly queue: Statement[] = [];
  private active: Statement | undefined;
  private hasExecuted = false;
  private connectionError = false;
  private connectCallback: ((error: Error | undefined) => void) | undefined;
  private connectTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly endWaiters: Array<() => void> = [];

  constructor(private readonly server: FaultServer, config: ClientConfig) {
    super();
    this.config = config;
    this.connection = new FakeWire(this);
    this.createdAt = performance.now();
    this.id = server.clients.push(this);
  }

  override toString(): string {
    return `client#${this.id}(pid ${this.processID ?? '-'}, ${this.sessionState}${this._ending ? ', ending' : ''})`;
  }

  connect(): Promise<this> {
    return new Promise<this>((resolve, reject) => {
      if (this.connection._connecting) {
        process.nextTick(() => reject(new Error('Client has already been connected. You cannot reuse a client.')));
        return;
      }
      this.connection._connecting = true;
      this._connecting = true;
      this.connectCallback = (error) => (error ? reject(error) : resolve(this));
      const timeoutMs = Number(this.config.connectionTimeoutMillis ?? 0);
      if (timeoutMs > 0) {
        // pg: the stream is destroyed with this error, which fails the connect.
        this.connectTimer = setTimeout(() => {
          this.trouble('connect timed out');
          this.connection._ending = true;
          this.destroySocket(new Error('timeout expired'));
        }, timeoutMs);
      }
      this.server.attemptConnect(this);
    });
  }

  query(config: string | QueryConfig, values?: unknown[]): Promise<FakeResult> {
    if (config == null) throw new TypeError('Client was passed a null or undefined query');
    void values;
    const text = typeof config === 'string' ? config : config.text;
    return new Promise<FakeResult>((resolve, reject) => {
      const statement: Statement = { text, resolve, reject };
      if (!this._queryable) {
        process.nextTick(() => reject(new Error('Client has encountered a connection error and is not queryable')));
        return;
      }
      if (this._ending) {
        process.nextTick(() => reject(new Error('Client was closed and is not queryable')));
        return;
      }
      this.queue.push(statement);
      this.pulse();
    });
  }

  getTransactionStatus(): 'I' | 'T' | 'E' | null {
    return this.txStatus;
  }

  end(): Promise<void> {
    this._ending = true;
    // Never connected, or the socket is already gone: nothing to wait for.
    if (!this.connection._connecting || this._ended) return Promise.resolve();
    const ended = new Promise<void>((resolve) => this.endWaiters.push(resolve));
    if (!this._queryable || this.active) {
      // pg: a dead socket or a statement in flight is destroyed, not ended politely.
      this.destroySocket();
    } else {
      // The Terminate message, then the server closes the socket (a silent peer never does).
      this.connection._ending = true;
      if (!this.peerSilent) setTimeout(() => this.socketClosed(), 0);
    }
    return ended;
  }

  // ---- what the server does to this client ----

  /** @internal */
  trouble(what: string, slowMs?: number): void {
    this.troubles.push(slowMs === undefined ? { what } : { what, slowMs });
  }

  /** @internal The socket is open (the TCP handshake succeeded). */
  openSocket(): void {
    if (this.sessionState === 'new') this.sessionState = 'connecting';
  }

  /** @internal ECONNREFUSED: the socket never opened. */
  refused(): void {
    if (this._ended) return;
    this.trouble('connection refused');
    const error = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'),
      { code: 'ECONNREFUSED', errno: -111, syscall: 'connect', address: '127.0.0.1', port: 5432 });
    this.handleErrorEvent(error);
    this.socketClosed();
  }

  /** @internal The startup handshake completed: ReadyForQuery. */
  accept(processID: number, secretKey: number): void {
    this.processID = processID;
    this.secretKey = secretKey;
    this.sessionState = 'connected';
    this._connecting = false;
    this._connected = true;
    clearTimeout(this.connectTimer);
    this.txStatus = 'I';
    this.readyForQuery = true;
    const callback = this.connectCallback;
    this.connectCallback = undefined;
    callback?.(undefined);
    this.emit('connect');
    this.pulse();
  }

  /** @internal A FATAL error response (terminated backend, shutdown), then the socket closes after `closeAfterMs`. */
  fatal(error: FakeDatabaseError, closeAfterMs: number): void {
    this.reportedDead = true;
    this.handleErrorMessage(error);
    const close = (): void => this.socketClosed();
    if (closeAfterMs > 0) setTimeout(close, closeAfterMs);
    else process.nextTick(close);
  }

  /** @internal A socket error (ECONNRESET): pg fails everything, emits 'error', and the close follows. */
  socketError(error: Error & { code?: string }): void {
    if (this.sessionState === 'closed') return;
    // pg's Connection ignores ECONNRESET/EPIPE once the client is ending.
    if (!(this.connection._ending && (error.code === 'ECONNRESET' || error.code === 'EPIPE'))) {
      this.handleErrorEvent(error);
    }
    process.nextTick(() => this.socketClosed());
  }

  /** @internal The socket is destroyed from this side (pg's `connection.stream.destroy()`). */
  destroySocket(error?: Error): void {
    if (this.sessionState === 'closed' || this._ended) return;
    if (error) this.socketError(error);
    else process.nextTick(() => this.socketClosed());
  }

  /** @internal The answer to the active statement. */
  answer(statement: Statement): void {
    if (this.active !== statement || this.sessionState !== 'connected') return; // stale: failed or closed meanwhile
    const outcome = runStatement(statement.text, this.txStatus ?? 'I');
    if ('error' in outcome) {
      this.errorResponse(statement, outcome.error);
      return;
    }
    // pg's order: status and readyForQuery first, then the callback, then 'drain'.
    this.active = undefined;
    this.txStatus = outcome.status;
    this.readyForQuery = true;
    statement.resolve(outcome.result);
    this.pulse();
  }

  /** @internal An ErrorResponse for the active statement; the ReadyForQuery follows after `readyAfterErrorMs`. */
  errorResponse(statement: Statement, error: FakeDatabaseError): void {
    if (this.active !== statement || this.sessionState !== 'connected') return;
    this.handleErrorMessage(error);
    const next = this.txStatus === 'T' || this.txStatus === 'E' ? 'E' : 'I';
    const ready = (): void => {
      if (this.sessionState !== 'connected' || this.active) return;
      this.txStatus = next;
      this.readyForQuery = true;
      this.pulse();
    };
    const lag = this.server.timing.readyAfterErrorMs;
    if (lag > 0) setTimeout(ready, lag);
    else ready();
  }

  // ---- pg's own handlers, in its order ----

  /** pg's `_handleErrorMessage`: the connection emits 'errorMessage' first (the engine listens there). */
  private handleErrorMessage(error: FakeDatabaseError): void {
    this.connection.emit('errorMessage', error);
    if (this._connecting) {
      this.handleErrorWhileConnecting(error);
      return;
    }
    const active = this.active;
    if (!active) {
      this.handleErrorEvent(error);
      return;
    }
    this.active = undefined;
    active.reject(error);
  }

  /** pg's `_handleErrorEvent`: the socket is unusable; every statement fails; 'error' is emitted. */
  private handleErrorEvent(error: Error): void {
    if (this._connecting) {
      this.handleErrorWhileConnecting(error);
      return;
    }
    this._queryable = false;
    this.errorAllStatements(error);
    this.reportedDead = true;
    this.emit('error', error);
  }

  private handleErrorWhileConnecting(error: Error): void {
    if (this.connectionError) return;
    this.connectionError = true;
    clearTimeout(this.connectTimer);
    const callback = this.connectCallback;
    if (callback) {
      this.connectCallback = undefined;
      callback(error);
      return;
    }
    this.reportedDead = true;
    this.emit('error', error);
  }

  private errorAllStatements(error: Error): void {
    const failed = [...(this.active ? [this.active] : []), ...this.queue.splice(0)];
    this.active = undefined;
    for (const statement of failed) process.nextTick(() => statement.reject(error));
  }

  /** pg's handler of the connection's 'end' (the socket closed), then the client's 'end' on the next tick. */
  private socketClosed(): void {
    if (this._ended) return;
    this.sessionState = 'closed';
    this.server.forget(this);
    clearTimeout(this.connectTimer);
    const error = new Error(this._ending ? 'Connection terminated' : 'Connection terminated unexpectedly');
    this.errorAllStatements(error);
    this._ended = true;
    if (!this._ending) {
      if (this._connecting && !this.connectionError) {
        const callback = this.connectCallback;
        this.connectCallback = undefined;
        callback?.(error);
      } else if (!this.connectionError) {
        this.handleErrorEvent(error);
      }
    }
    // (pg quirk, kept: an end() during connect leaves the connect promise pending for ever.)
    for (const resolve of this.endWaiters.splice(0)) resolve();
    process.nextTick(() => {
      this.reportedDead = true;
      this.emit('end');
    });
  }

  /** pg's `_pulseQueryQueue`: sends the next statement, or emits 'drain' once idle. */
  private pulse(): void {
    if (this.readyForQuery !== true) return;
    const next = this.queue.shift();
    if (next) {
      this.active = next;
      this.readyForQuery = false;
      this.hasExecuted = true;
      this.server.execute(this, next);
    } else if (this.hasExecuted) {
      this.active = undefined;
      this.emit('drain');
    }
  }
}
