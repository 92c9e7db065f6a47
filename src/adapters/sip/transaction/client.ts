/**
 * Non-INVITE client transaction, RFC 3261 §17.1.2 (Figure 6): retransmits the request on an
 * unreliable transport until a response arrives, gives up at Timer F, and absorbs response
 * retransmissions in Completed.
 */
import type { SipRequest, SipResponse } from '../codec/message.js';
import type { Scheduler, TimerHandle, TimerValues } from './timers.js';

export type ClientTransactionState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/** What the transaction tells its transaction user (the adapter). Each outcome is told once. */
export interface ClientTransactionUser {
  onProvisional?(response: SipResponse): void;
  onFinal(response: SipResponse): void;
  /** Timer F fired before a final response (the caller treats it like a 408). */
  onTimeout(): void;
  /** RFC 3261 §17.1.4: the transport could not send; `sentBefore` says whether any copy left. */
  onTransportError(err: Error, sentBefore: boolean): void;
  /** The transaction reached Terminated and must be forgotten (§17.1.2.2 last paragraph). */
  onTerminated?(): void;
}

export interface ClientTransactionOptions {
  readonly request: SipRequest;
  /** Whether the transport is reliable (TCP): no Timer E, Timer K is zero. */
  readonly reliable: boolean;
  readonly timers: TimerValues;
  readonly scheduler: Scheduler;
  /** Hands the request to the transport; rejects on a transport error. */
  readonly send: (request: SipRequest) => Promise<void>;
  readonly user: ClientTransactionUser;
}

export class NonInviteClientTransaction {
  private stateValue: ClientTransactionState = 'trying';
  private timerE: TimerHandle | undefined;
  private timerF: TimerHandle | undefined;
  private timerK: TimerHandle | undefined;
  private sentOnce = false;
  private retransmitCount = 0;

  constructor(private readonly opts: ClientTransactionOptions) {}

  get state(): ClientTransactionState {
    return this.stateValue;
  }

  get request(): SipRequest {
    return this.opts.request;
  }

  /** Copies of the request sent after the first (Timer E), for logs and tests. */
  get retransmissions(): number {
    return this.retransmitCount;
  }

  /** Enters Trying: sends the request and starts Timer F (and Timer E on UDP). */
  start(): void {
    const { t1Ms } = this.opts.timers;
    // RFC 3261 §17.1.2.2: Timer F = 64*T1 bounds the whole transaction.
    this.timerF = this.opts.scheduler.after(64 * t1Ms, () => this.onTimerF());
    if (!this.opts.reliable) this.armTimerE(t1Ms);
    this.transmit();
  }

  /** A response matched to this transaction by §17.1.3. */
  receiveResponse(response: SipResponse): void {
    if (this.stateValue === 'completed' || this.stateValue === 'terminated') return; // retransmission
    if (response.status < 200) {
      this.stateValue = 'proceeding';
      this.opts.user.onProvisional?.(response);
      return;
    }
    this.stateValue = 'completed';
    this.cancelTimer('E');
    this.cancelTimer('F');
    this.opts.user.onFinal(response);
    // RFC 3261 §17.1.2.2: Timer K is T4 on unreliable transports, zero on reliable ones.
    if (this.opts.reliable) this.terminate();
    else this.timerK = this.opts.scheduler.after(this.opts.timers.t4Ms, () => this.terminate());
  }

  /** Ends the transaction without telling the user an outcome (adapter shutdown). */
  abort(): void {
    this.terminate();
  }

  private transmit(): void {
    const first = !this.sentOnce;
    this.opts.send(this.opts.request).then(
      () => {
        this.sentOnce = true;
      },
      (err: unknown) => {
        if (this.stateValue === 'trying' || this.stateValue === 'proceeding') {
          const sentBefore = this.sentOnce || !first;
          this.terminate();
          this.opts.user.onTransportError(err instanceof Error ? err : new Error(String(err)), sentBefore);
        }
      },
    );
  }

  private armTimerE(ms: number): void {
    this.timerE = this.opts.scheduler.after(ms, () => {
      if (this.stateValue === 'trying') {
        // RFC 3261 §17.1.2.2: Timer E doubles from T1 and caps at T2 while Trying.
        this.retransmitCount++;
        this.transmit();
        this.armTimerE(Math.min(2 * ms, this.opts.timers.t2Ms));
      } else if (this.stateValue === 'proceeding') {
        // …and fires every T2 once a provisional response arrived.
        this.retransmitCount++;
        this.transmit();
        this.armTimerE(this.opts.timers.t2Ms);
      }
    });
  }

  private onTimerF(): void {
    if (this.stateValue !== 'trying' && this.stateValue !== 'proceeding') return;
    this.terminate();
    this.opts.user.onTimeout();
  }

  private cancelTimer(which: 'E' | 'F' | 'K'): void {
    const key = `timer${which}` as const;
    this[key]?.cancel();
    this[key] = undefined;
  }

  private terminate(): void {
    if (this.stateValue === 'terminated') return;
    this.stateValue = 'terminated';
    this.cancelTimer('E');
    this.cancelTimer('F');
    this.cancelTimer('K');
    this.opts.user.onTerminated?.();
  }
}
