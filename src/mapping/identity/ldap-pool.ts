/**
 * A small pool of bound directory connections, reused across lookups. A connection that failed,
 * timed out, was aborted mid-operation, or was closed by the server is closed and replaced by a
 * fresh one (connect, StartTLS, bind) the next time a slot is needed, so a connection that the
 * client library silently reopened without its bind is never used.
 */
import { BridgeError } from '../../core/errors.js';

export interface PoolHooks<C> {
  /** Opens and binds a connection; closes it and rejects if `signal` aborts first. */
  open(signal: AbortSignal | undefined): Promise<C>;
  /** Closes a connection; never throws, never waits for the server. */
  close(connection: C): void;
  /** Whether an idle connection is still open and bound. */
  healthy(connection: C): boolean;
}

export interface PoolStats {
  /** Connections opened successfully since the pool was made (each one bound once). */
  readonly opened: number;
  /** Connections closed because they failed, were aborted, or the server dropped them. */
  readonly discarded: number;
  readonly idle: number;
  readonly inUse: number;
  /** Lookups waiting for a connection. */
  readonly waiting: number;
}

interface Waiter<C> {
  /** A connection handed over, or undefined: "a slot is free, open your own". */
  resolve(connection: C | undefined): void;
  reject(err: Error): void;
}

export class ConnectionPool<C> {
  private readonly idle: C[] = [];
  private readonly waiters: Waiter<C>[] = [];
  /** Slots taken: idle + in use + being opened. Never above `size`. */
  private slots = 0;
  private opened = 0;
  private discarded = 0;
  private closed = false;

  constructor(
    private readonly size: number,
    private readonly maxWaiting: number,
    private readonly waitTimeoutMs: number,
    private readonly hooks: PoolHooks<C>,
  ) {}

  stats(): PoolStats {
    const idle = this.idle.length;
    return { opened: this.opened, discarded: this.discarded, idle, inUse: this.slots - idle, waiting: this.waiters.length };
  }

  /** A connection for one operation; give it back with release() or discard(). */
  async acquire(signal: AbortSignal | undefined): Promise<C> {
    if (this.closed) throw stoppedError();
    if (signal?.aborted) throw abortedError(signal.reason);
    const idle = this.idle.pop();
    if (idle !== undefined) {
      if (this.hooks.healthy(idle)) return idle;
      this.hooks.close(idle);
      this.discarded++;
      return this.openInSlot(signal);
    }
    if (this.slots < this.size) {
      this.slots++;
      return this.openInSlot(signal);
    }
    const handed = await this.waitTurn(signal);
    if (handed !== undefined && this.hooks.healthy(handed)) return handed;
    if (handed !== undefined) {
      this.hooks.close(handed);
      this.discarded++;
    }
    return this.openInSlot(signal);
  }

  /** Gives back a connection that finished its operation cleanly. */
  release(connection: C): void {
    if (this.closed) {
      this.hooks.close(connection);
      this.slots--;
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter) waiter.resolve(connection);
    else this.idle.push(connection);
  }

  /** Closes a connection that failed or was abandoned mid-operation, freeing its slot. */
  discard(connection: C): void {
    this.hooks.close(connection);
    this.discarded++;
    this.freeSlot();
  }

  /** Closes idle connections and fails waiters; connections in use close when given back. */
  close(): void {
    this.closed = true;
    for (const c of this.idle.splice(0)) {
      this.hooks.close(c);
      this.slots--;
    }
    for (const w of this.waiters.splice(0)) w.reject(stoppedError());
  }

  private async openInSlot(signal: AbortSignal | undefined): Promise<C> {
    try {
      const connection = await this.hooks.open(signal);
      this.opened++;
      if (this.closed) {
        this.release(connection);
        throw stoppedError();
      }
      return connection;
    } catch (err) {
      if (!this.closed || !(err instanceof BridgeError && err.code === 'LDAP_STOPPED')) this.freeSlot();
      throw err;
    }
  }

  /** A slot became free: hand it to the first waiter (it opens its own connection) or drop it. */
  private freeSlot(): void {
    const waiter = this.closed ? undefined : this.waiters.shift();
    if (waiter) waiter.resolve(undefined);
    else this.slots--;
  }

  private waitTurn(signal: AbortSignal | undefined): Promise<C | undefined> {
    if (this.waiters.length >= this.maxWaiting) {
      return Promise.reject(
        new BridgeError('LDAP_BUSY', `LDAP: ${this.waiters.length} lookups already wait for a connection`, {
          condition: 'resource-constraint',
          retryable: true,
        }),
      );
    }
    return new Promise<C | undefined>((resolve, reject) => {
      const settle = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
      };
      const waiter: Waiter<C> = {
        resolve: (c) => {
          settle();
          resolve(c);
        },
        reject: (err) => {
          settle();
          reject(err);
        },
      };
      const onAbort = (): void => waiter.reject(abortedError(signal?.reason));
      const timer = setTimeout(
        () =>
          waiter.reject(
            new BridgeError('LDAP_TIMEOUT', `LDAP: no connection free within ${this.waitTimeoutMs} ms`, {
              condition: 'remote-server-timeout',
              retryable: true,
            }),
          ),
        this.waitTimeoutMs,
      );
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }
}

export function stoppedError(): BridgeError {
  return new BridgeError('LDAP_STOPPED', 'LDAP identity source is stopped', {
    condition: 'service-unavailable',
    retryable: true,
  });
}

export function abortedError(reason: unknown): BridgeError {
  return new BridgeError('LDAP_TIMEOUT', 'LDAP lookup abandoned: the deadline passed', {
    condition: 'remote-server-timeout',
    retryable: true,
    cause: reason,
  });
}
