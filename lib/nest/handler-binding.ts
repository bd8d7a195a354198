import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { INTERCEPTORS_METADATA, PATH_METADATA, ROUTE_ARGS_METADATA, SSE_METADATA } from '@nestjs/common/constants.js';
import { PoolUsageError, type PooledClient } from '../pool/index.js';
import { holdsConnection } from '../pool/checkout-handle.js';
import { bindConnection, bindConnectionAsPromise, bindHeldConnection, closableResponse, poolFor, poolLabel } from './connection-binding.js';
import { clientIn, currentConnection, currentScope, scopeAtHandlerCall } from './current-connection.js';
import { DEFAULT_POOL_NAME } from './pg-pool.constants.js';
import type { PgPoolRegistry } from './pg-pool.registry.js';
import type { UseConnectionSettings } from './use-connection-options.js';

/**
 * `@UseConnection` binds the connection in the handler itself, not through an
 * interceptor: Nest's interceptor pipeline (rxjs, per request) cost as much as the rest of
 * `@UseConnection` together. The handler is wrapped when the decorator runs; at request
 * time the wrapper finds the application's registry on the controller instance (set by
 * the registry at start-up), the response through a hidden parameter, and the client
 * for `@Conn()` parameters, which Nest resolves before the handler runs, by replacing
 * their placeholders.
 */

/** Where the registry puts itself on each controller instance at start-up. */
const REGISTRY_OF = Symbol('nestjs-pg-pool registry');

/** Registries alive now: the fallback for a controller instance created per request. */
const liveRegistries = new Set<PgPoolRegistry>();

/** Called by each registry: it serves these controller instances. */
export function serveControllers(registry: PgPoolRegistry, instances: Iterable<unknown>): void {
  liveRegistries.add(registry);
  for (const instance of instances) {
    if (instance !== null && typeof instance === 'object' && !Object.prototype.hasOwnProperty.call(instance, REGISTRY_OF)) {
      Object.defineProperty(instance, REGISTRY_OF, { value: registry, configurable: true });
    }
  }
}

/** Called by a registry at shutdown. */
export function stopServing(registry: PgPoolRegistry): void {
  liveRegistries.delete(registry);
}

function registryOf(instance: unknown, settings: UseConnectionSettings): PgPoolRegistry {
  const own = (instance as { [REGISTRY_OF]?: PgPoolRegistry } | null)?.[REGISTRY_OF];
  if (own) return own;
  // A request-scoped controller is created per request, after start-up: with one
  // application in the process, its registry is the one.
  if (liveRegistries.size === 1) return liveRegistries.values().next().value as PgPoolRegistry;
  throw new PoolUsageError(poolLabel(settings), '@UseConnection: no pool registry serves this controller; ' +
    'import PgPoolModule.forRoot(...) in the application that declares it');
}

/** The placeholders `@Conn()` gives before the handler runs, by pool name ('' for the handler's own). */
const placeholders = new Map<string, object>();
const placeholderNames = new WeakMap<object, string>();

/**
 * What `@Conn(name)` resolves to outside a connection scope: a stand-in the wrapper
 * replaces with the client. Used anywhere else (a handler without `@UseConnection`),
 * touching it throws a clear error.
 */
export function connPlaceholder(name: string | undefined): object {
  const key = name ?? '';
  let placeholder = placeholders.get(key);
  if (!placeholder) {
    placeholder = new Proxy({}, {
      get(_target, property) {
        if (property === Symbol.toPrimitive || property === 'then') return undefined;
        throw new PoolUsageError(name ?? DEFAULT_POOL_NAME, '@Conn() is used in a handler without @UseConnection; ' +
          'decorate the handler or its controller with @UseConnection()');
      },
    });
    placeholders.set(key, placeholder);
    placeholderNames.set(placeholder, key);
  }
  return placeholder;
}

/**
 * The handler's arguments with each `@Conn()` placeholder replaced: by `client`, the
 * handler's own connection (`@Conn()`, or `@Conn(name)` of its own pool), or by the
 * scope's client for another pool.
 */
function withClients(args: unknown[], own: string, client: PooledClient): unknown[] {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === null || typeof arg !== 'object') continue;
    const name = placeholderNames.get(arg);
    if (name !== undefined) args[i] = clientNamed(name, own, client);
  }
  return args;
}

/** What `@Conn(name)` gets: the handler's own client for '' or its own pool, else the scope's for that pool. */
function clientNamed(name: string, own: string, client: PooledClient): PooledClient {
  return name === '' || name === own ? client : currentConnection(name);
}

/**
 * What `@Conn(name)` resolves to when Nest calls the handler. Inside a scope opened before
 * the parameters are resolved (PgConnectionInterceptor): the client itself. Otherwise a
 * stand-in that the handler's wrapper replaces.
 */
export function resolveConn(name: string | undefined, _context: ExecutionContext): PooledClient {
  const scope = scopeAtHandlerCall();
  if (scope) return currentConnection(name ?? scope.primary);
  return connPlaceholder(name) as PooledClient;
}

/** The `@Conn()` parameters of a handler: index and pool name ('' for the handler's own). */
function connParameters(proto: object, key: string | symbol): Array<{ index: number; name: string }> {
  const routeArgs = (Reflect.getMetadata(ROUTE_ARGS_METADATA, proto.constructor, key) ?? {}) as
    Record<string, { index: number; factory?: unknown; data?: unknown }>;
  return Object.values(routeArgs).filter((arg) => arg.factory === resolveConn)
    .map((arg) => ({ index: arg.index, name: typeof arg.data === 'string' ? arg.data : '' }));
}

/**
 * A handler called directly by code (another handler), not by Nest: no placeholders in
 * its arguments. Its `@Conn()` parameters the caller left undefined get the clients.
 */
function withDirectClients(args: unknown[], parameters: Array<{ index: number; name: string }>, own: string, client: PooledClient): unknown[] {
  for (const { index, name } of parameters) {
    if (args[index] === undefined) args[index] = clientNamed(name, own, client);
  }
  return withClients(args, own, client);
}

/**
 * What the hidden parameter gives the wrapper: the HTTP request and response of Nest's
 * call (none elsewhere), read from the arguments Nest's router has for the route already
 * rather than through `switchToHttp()`, which adds three closures to the context per call.
 * An instance of its own class, so that the wrapper can tell Nest's call from a call by
 * code that passes more arguments than the handler declares: any other value, an array
 * too, could be the caller's. Boxed, too: Nest awaits a thenable parameter value, and
 * Fastify's reply is one that settles only once the response is sent.
 */
class NestCall {
  constructor(
    readonly request: unknown,
    readonly response: unknown,
    /** Whether the function Nest calls has interceptors of its own, or is SSE: something may unsubscribe. */
    readonly intercepted: boolean,
  ) {}
}

/** The call Nest makes outside HTTP (a message, an event): no request or response. */
const NOT_HTTP = Object.freeze(new NestCall(undefined, undefined, false));

/**
 * The index of a wrapper's hidden parameter, as metadata on the wrapper: a method
 * decorator written above `@UseConnection` that wraps the wrapper (tracing, metrics)
 * copies it with Nest's, and Nest then calls that decorator's function.
 */
const HIDDEN_SLOT_METADATA = 'nestjs-pg-pool:hidden-slot';

/** Which hidden parameter the function Nest calls takes: an index, or any of them, or none. */
const ANY_SLOT = -1;
const NO_SLOT = -2;

/** What the hidden parameter needs to know of a function Nest calls, found on its first call. */
interface CalledHandler {
  readonly slot: number;
  readonly intercepted: boolean;
}
const calledHandlers = new WeakMap<object, CalledHandler>();

/**
 * A subclass that overrides a handler inherits the route parameters of its base's, the
 * base wrapper's hidden one among them: only the slot of the function Nest calls gets the
 * call, and a parameter of the override's own at another slot stays undefined. Worked
 * out once per function.
 */
function hiddenExchange(slot: unknown, context: ExecutionContext): NestCall | undefined {
  const handler = context.getHandler();
  let called = calledHandlers.get(handler);
  if (called === undefined) {
    // Read on the first call: the handler's own decorators are all applied by then.
    // Those of a function wrapping ours (interceptors written above it) count too.
    const intercepted = Boolean(Reflect.getMetadata(SSE_METADATA, handler)) || hasInterceptors(Reflect.getMetadata(INTERCEPTORS_METADATA, handler));
    called = { slot: slotOf(handler, context.getClass()), intercepted };
    calledHandlers.set(handler, called);
  }
  if (called.slot !== slot && called.slot !== ANY_SLOT) return undefined;
  if (context.getType() !== 'http') return NOT_HTTP;
  const args = context.getArgs();
  return new NestCall(args[0], args[1], called.intercepted);
}

function slotOf(handler: object, controller: { prototype?: object } | undefined): number {
  const own = ownSlotOf(handler);
  if (own !== undefined) return own;
  // An override, in a subclass, of a handler one of ours wraps (or a decorator wrapping
  // one of ours): no hidden parameter of its own. Found by identity, not by name: a
  // decorator's function may have a name of its own.
  let key: string | undefined;
  for (let proto = controller?.prototype; proto; proto = Object.getPrototypeOf(proto) as object | undefined) {
    if (key === undefined) {
      key = Object.getOwnPropertyNames(proto).find((name) => Object.getOwnPropertyDescriptor(proto as object, name)?.value === handler);
      continue;
    }
    const value = Object.getOwnPropertyDescriptor(proto, key)?.value as unknown;
    if (typeof value === 'function' && ownSlotOf(value) !== undefined) return NO_SLOT;
  }
  // A function wrapping ours that did not copy its metadata: as before, Nest's call.
  return ANY_SLOT;
}

/** The hidden slot of one of our wrappers, or of a decorator's function that copied a wrapper's metadata. */
function ownSlotOf(handler: object): number | undefined {
  const slot = Reflect.getMetadata(HIDDEN_SLOT_METADATA, handler) as unknown;
  return typeof slot === 'number' ? slot : undefined;
}
const HiddenResponse = createParamDecorator(hiddenExchange);

/**
 * Marks the wrapper of a method-level `@UseConnection`, which a class-level one leaves be;
 * metadata, so that a decorator wrapping the wrapper carries the mark too.
 */
const METHOD_LEVEL_METADATA = 'nestjs-pg-pool:method-level';
/**
 * Wrappers made by a class-level `@UseConnection`, with the handler each wraps: a
 * subclass's class-level `@UseConnection` rewraps that handler with its own settings.
 */
const wrappedByClass = new WeakMap<object, Handler>();

type Handler = (...args: unknown[]) => unknown;

/**
 * Wraps one handler: `proto[key]` is `original`, decorated already with its route and
 * parameter decorators (TypeScript applies those first). Returns the wrapper, which
 * carries the original's metadata.
 */
export function bindHandler(proto: object, key: string | symbol, original: Handler, settings: UseConnectionSettings, level: 'method' | 'class'): Handler {
  const paramtypes = (Reflect.getMetadata('design:paramtypes', proto, key) as unknown[] | undefined) ?? [];
  // A handler a base class's wrapper was made for carries that wrapper's hidden parameter: not one of its own.
  const routeArgs = Object.values((Reflect.getMetadata(ROUTE_ARGS_METADATA, proto.constructor, key) ?? {}) as
    Record<string, { index: number; factory?: unknown }>).filter((arg) => arg.factory !== hiddenExchange);
  const declared = Math.max(paramtypes.length, original.length, ...routeArgs.map((arg) => arg.index + 1));
  HiddenResponse(declared)(proto, key, declared);
  // What Nest's call gives the handler: up to its last parameter with a decorator or
  // without a default; a rest parameter (counted in `declared`) gets nothing from Nest.
  const given = Math.max(original.length, ...routeArgs.map((arg) => arg.index + 1));

  let direct: Array<{ index: number; name: string }> | undefined;
  const wrapped = function boundToConnection(this: unknown, ...args: unknown[]): unknown {
    const hidden = args[declared];
    // Nest always passes the hidden parameter; a call without it comes from code, and
    // keeps the arguments it was given, however many.
    const exchange = hidden instanceof NestCall ? hidden : undefined;
    const calledByNest = exchange !== undefined;
    const response = closableResponse(exchange?.response);
    if (calledByNest) {
      // Nest's array holds exactly the declared parameters and the hidden one after them:
      // pop() drops it; setting `length` calls into V8's runtime, three times slower in a
      // loop, and in a profiled server half of the wrapper's own time went to that line.
      if (args.length === declared + 1) args.pop();
      if (args.length !== given) args.length = given;
    }
    const fill = calledByNest ? withClients : (callArgs: unknown[], own: string, client: PooledClient) =>
      withDirectClients(callArgs, direct ??= connParameters(proto, key), own, client);
    // Called from code already holding this pool's connection (a handler calling another):
    // it runs on that connection.
    // The scope it is called in: from code, the calling handler's, if any.
    const outer = calledByNest ? scopeAtHandlerCall() : currentScope();
    if (typeof settings.pool === 'string') {
      const held = clientIn(outer, settings.pool);
      // Released already (called from a timer after its caller's request ended): a connection of its own.
      if (held && holdsConnection(held)) {
        if (calledByNest) return original.apply(this, fill(args, settings.pool, held));
        // Called by code: a promise, as when it takes a connection of its own.
        return bindHeldConnection(settings, held, () => original.apply(this, fill(args, settings.pool as string, held)));
      }
    }
    const registry = registryOf(this, settings);
    const target = poolFor(registry, settings, exchange?.request);
    const invoke = (name: string, client: PooledClient): unknown => original.apply(this, fill(args, name, client));
    // Called by code: a promise, as the handler's own would be; nothing can unsubscribe.
    if (!calledByNest) return bindConnectionAsPromise(target, settings, undefined, invoke, undefined, outer);
    // An HTTP route nothing can unsubscribe from gets a promise: Nest's per-request
    // handling of an Observable result costs more than the rest of the binding.
    if (response !== undefined && !exchange.intercepted && !mayBeUnsubscribed(this, registry)) {
      return bindConnectionAsPromise(target, settings, response, invoke, exchange.request, outer);
    }
    return bindConnection(target, settings, response, invoke, exchange.request, outer);
  };
  for (const metadataKey of Reflect.getOwnMetadataKeys(original)) {
    Reflect.defineMetadata(metadataKey, Reflect.getOwnMetadata(metadataKey, original), wrapped);
  }
  Reflect.defineMetadata(HIDDEN_SLOT_METADATA, declared, wrapped);
  Object.defineProperty(wrapped, 'name', { value: original.name });
  if (level === 'method') Reflect.defineMetadata(METHOD_LEVEL_METADATA, true, wrapped);
  else wrappedByClass.set(wrapped, original);
  return wrapped;
}

/** Controller classes with interceptors of their own (or inherited), by class. */
const classIntercepted = new WeakMap<object, boolean>();

/**
 * Whether something may unsubscribe from a handler's result before it ends: an
 * interceptor of its controller or a global one (e.g. rxjs `timeout()`); the handler's
 * own interceptors and SSE are checked by its wrapper. Those get an Observable, whose
 * unsubscription abandons the work.
 */
function mayBeUnsubscribed(instance: unknown, registry: PgPoolRegistry): boolean {
  const controller = (instance as { constructor?: object } | null)?.constructor;
  if (controller) {
    let intercepted = classIntercepted.get(controller);
    if (intercepted === undefined) {
      intercepted = hasInterceptors(Reflect.getMetadata(INTERCEPTORS_METADATA, controller));
      classIntercepted.set(controller, intercepted);
    }
    if (intercepted) return true;
  }
  return registry.hasGlobalInterceptors();
}

function hasInterceptors(metadata: unknown): boolean {
  return Array.isArray(metadata) && metadata.length > 0;
}

/** Whether a handler was wrapped by a method-level `@UseConnection`. */
export function isBound(handler: unknown): boolean {
  return typeof handler === 'function' && Reflect.getOwnMetadata(METHOD_LEVEL_METADATA, handler) === true;
}

/** The handler itself, for a wrapper a base class's class-level `@UseConnection` made; else `handler`. */
export function unwrappedByClass(handler: Handler): Handler {
  return wrappedByClass.get(handler) ?? handler;
}

/** Every route handler of a controller class, own and inherited, by name, nearest first. */
export function routeHandlers(controller: { prototype: object }): Array<{ key: string; handler: Handler }> {
  const seen = new Set<string>();
  const handlers: Array<{ key: string; handler: Handler }> = [];
  for (let proto: object | null = controller.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      if (key === 'constructor' || seen.has(key)) continue;
      seen.add(key);
      const value = Object.getOwnPropertyDescriptor(proto, key)?.value as unknown;
      if (typeof value === 'function' && (Reflect.hasMetadata(PATH_METADATA, value) || Reflect.hasMetadata('microservices:pattern', value))) {
        handlers.push({ key, handler: value as Handler });
      }
    }
  }
  return handlers;
}
