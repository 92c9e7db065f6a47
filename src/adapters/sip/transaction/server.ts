/**
 * Non-INVITE server transaction, RFC 3261 §17.2.2 (Figure 8): absorbs request retransmissions
 * while the transaction user works, answers later ones with the last response sent, and lives
 * on for Timer J so a retransmission after the final response is answered, not re-delivered.
 */
import type { SipResponse } from '../codec/message.js';
import type { Scheduler, TimerHandle, TimerValues } from './timers.js';

export type ServerTransactionState = 'trying' | 'proceeding' | 'completed' | 'terminated';

/**
 * The transaction keeps only its last response, not the request: a Completed transaction lives
 * 64·T1 on UDP, and thousands of them may be waiting at once.
 */
export interface ServerTransactionOptions {
  readonly reliable: boolean;
  readonly timers: TimerValues;
  readonly scheduler: Scheduler;
  /** Hands a response to the transport (§18.2.2 routing happens there); rejects on failure. */
  readonly send: (response: SipResponse) => Promise<void>;
  /** Called once when the transaction reaches Terminated, so the layer forgets it. */
  readonly onTerminated?: () => void;
  /** Told when sending a response failed (RFC 3261 §17.2.4); the transaction is then over. */
  readonly onTransportError?: (err: Error) => void;
}

export class NonInviteServerTransaction {
  private stateValue: ServerTransactionState = 'trying';
  private lastResponse: SipResponse | undefined;
  private timerJ: TimerHandle | undefined;
  private absorbedCount = 0;
  private answeredCount = 0;

  constructor(private readonly opts: ServerTransactionOptions) {}

  get state(): ServerTransactionState {
    return this.stateValue;
  }

  /** The final response, once the transaction is Completed. */
  get finalResponse(): SipResponse | undefined {
    return this.stateValue === 'completed' ? this.lastResponse : undefined;
  }

  /** Retransmissions discarded while Trying, and answered from the transaction later. */
  get retransmissions(): { absorbed: number; answered: number } {
    return { absorbed: this.absorbedCount, answered: this.answeredCount };
  }

  /** A retransmission of the request, matched by §17.2.3. */
  receiveRetransmission(): void {
    if (this.stateValue === 'trying') {
      this.absorbedCount++;
      return;
    }
    if ((this.stateValue === 'proceeding' || this.stateValue === 'completed') && this.lastResponse) {
      this.answeredCount++;
      this.transmit(this.lastResponse);
    }
  }

  /** The transaction user's response. A second final response is discarded (§17.2.2). */
  respond(response: SipResponse): void {
    if (this.stateValue === 'completed' || this.stateValue === 'terminated') return;
    this.lastResponse = response;
    if (response.status < 200) {
      this.stateValue = 'proceeding';
      this.transmit(response);
      return;
    }
    this.stateValue = 'completed';
    this.transmit(response);
    // RFC 3261 §17.2.2: Timer J is 64*T1 on unreliable transports, zero on reliable ones.
    if (this.opts.reliable) this.terminate();
    else this.timerJ = this.opts.scheduler.after(64 * this.opts.timers.t1Ms, () => this.terminate());
  }

  /** Forgets the transaction at once (adapter shutdown). */
  abort(): void {
    this.terminate();
  }

  private transmit(response: SipResponse): void {
    this.opts.send(response).catch((err: unknown) => {
      this.terminate();
      this.opts.onTransportError?.(err instanceof Error ? err : new Error(String(err)));
    });
  }

  private terminate(): void {
    if (this.stateValue === 'terminated') return;
    this.stateValue = 'terminated';
    this.timerJ?.cancel();
    this.timerJ = undefined;
    this.opts.onTerminated?.();
  }
}
