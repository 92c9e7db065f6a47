/**
 * The audit log of denials (issue 6 item 8): every refusal by policy — federation, spoofing,
 * visibility, rate and connection limits, toll-fraud guard — as one structured line with the
 * same fields, so an operator can grep or ship them (`audit: "denial"`):
 *
 *   { audit: 'denial', rule, who, what, reason?, event?, suppressed? }
 *
 * - `rule`: a stable label (the `sxb_policy_denials_total` rule, or `toll-fraud-method`,
 *   `partner-connections`, …); `reason` names the config rule in words.
 * - `who`: the party refused (an address, a partner, a peer's address and certificate names).
 * - `what`: what it tried (`message`, `subscription`, `INVITE`, `connection`, …).
 *
 * A flood must not turn into a flood of log lines (DESIGN.md: nothing grows without bound):
 * the same rule, party and attempt within `windowMs` are written once; the next line for them
 * after the window says how many were folded into it (`suppressed`). Keys are bounded; the
 * oldest goes first, which at worst writes one extra line.
 */
import type { Logger } from '../telemetry/logger.js';

export interface Denial {
  readonly rule: string;
  readonly who: string;
  readonly what: string;
  readonly reason?: string;
  /** The canonical event's id, when there is one. */
  readonly event?: string;
  /** Anything else worth keeping (peer certificate names, a number, a presentity). */
  readonly details?: Readonly<Record<string, unknown>>;
  /** The log line's message, when a component has a settled one; else `denied: <what> from <who> (<rule>)`. */
  readonly message?: string;
}

export interface AuditLogOptions {
  /** Identical denials within this many ms after a written one are counted, not written. */
  readonly windowMs?: number;
  /** Distinct (rule, who, what) keys remembered, at most. */
  readonly maxKeys?: number;
  readonly now?: () => number;
  /** Told of every denial, folded or not (the `sxb_policy_denials_total` counter). */
  readonly onDeny?: (denial: Denial) => void;
}

interface Fold {
  /** When the last written line for this key went out. */
  at: number;
  /** Denials since then that were not written. */
  suppressed: number;
}

export class AuditLog {
  private readonly folds = new Map<string, Fold>();
  private readonly windowMs: number;
  private readonly maxKeys: number;
  private readonly now: () => number;
  private readonly onDeny: ((denial: Denial) => void) | undefined;

  constructor(
    private readonly logger: Pick<Logger, 'warn'>,
    options: AuditLogOptions = {},
  ) {
    this.windowMs = options.windowMs ?? 10_000;
    this.maxKeys = options.maxKeys ?? 10_000;
    this.now = options.now ?? Date.now;
    this.onDeny = options.onDeny;
  }

  deny(denial: Denial): void {
    this.onDeny?.(denial);
    const key = `${denial.rule}\n${denial.who}\n${denial.what}`;
    const now = this.now();
    const fold = this.folds.get(key);
    if (fold !== undefined && now - fold.at < this.windowMs) {
      fold.suppressed++;
      return;
    }
    const suppressed = fold?.suppressed ?? 0;
    this.folds.delete(key);
    if (this.folds.size >= this.maxKeys) {
      const oldest = this.folds.keys().next();
      if (!oldest.done) this.folds.delete(oldest.value);
    }
    this.folds.set(key, { at: now, suppressed: 0 });
    this.logger.warn(
      {
        ...denial.details,
        audit: 'denial',
        rule: denial.rule,
        who: denial.who,
        what: denial.what,
        ...(denial.reason === undefined ? {} : { reason: denial.reason }),
        ...(denial.event === undefined ? {} : { event: denial.event }),
        ...(suppressed === 0 ? {} : { suppressed }),
      },
      denial.message ?? `denied: ${denial.what} from ${denial.who} (${denial.rule})`,
    );
  }
}
