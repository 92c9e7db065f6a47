/**
 * `sip-xmpp-bridge lookup`: the administrator's view of one identity lookup — which source
 * answered, the person's addresses on both sides and how XMPP users write to them, and the
 * time each source took (issue 3, item 5).
 */
import type { BridgeConfig } from '../../config/schema.js';
import { BridgeError } from '../../core/errors.js';
import type { Logger } from '../../telemetry/logger.js';
import { AddressTranslator } from '../address.js';
import { normalizeE164 } from '../e164.js';
import type { Identity } from '../identity-source.js';
import { parseSipAor } from '../identity.js';
import type { IdentityQuery, SourceAttempt, SourceHealth } from './chain.js';
import { buildIdentityChain } from './index.js';

export interface LookupResult {
  readonly input: string;
  readonly query: IdentityQuery;
  /** Extension digits of the input (`;ext=`), which no source is asked about. */
  readonly extension?: string;
  readonly answeredBy?: string;
  readonly identity?: Identity;
  readonly attempts: readonly SourceAttempt[];
  /** JIDs on the component domain by which XMPP users reach this person. */
  readonly xmppAddresses: readonly string[];
  /** The XMPP user a SIP message for this number (tel: or user=phone) reaches, when the bridge serves its domain. */
  readonly numberReaches?: string;
  readonly health: readonly SourceHealth[];
}

/** What the input names: a number in any spelling, a SIP address, or a JID on the component. */
export function queryOf(input: string, translator: AddressTranslator, component: string, defaultRegion?: string): { query: IdentityQuery; extension?: string } {
  const trimmed = input.trim();
  const scheme = /^(sips?|tel):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined && trimmed.includes('@')) {
    const at = trimmed.lastIndexOf('@');
    const domain = trimmed.slice(at + 1);
    if (domain.toLowerCase() !== component) {
      throw new BridgeError('LOOKUP_INPUT', `"${input}" is not on the bridge's domain ${component}; give a number, a sip: URI or a JID @${component}`, {
        condition: 'bad-request',
      });
    }
    const recipient = translator.xmppRecipient({ side: 'xmpp', user: trimmed.slice(0, at), domain });
    if (recipient.kind === 'sip') return { query: { kind: 'sip', sip: `sip:${recipient.address.user}@${recipient.address.domain}` } };
    return numberQuery(recipient.number, defaultRegion);
  }
  if (scheme === 'sip' || scheme === 'sips') {
    const isPhone = /;user=phone(;|$)/i.test(trimmed) || /^sips?:\+/i.test(trimmed);
    if (isPhone) return numberQuery(trimmed, defaultRegion);
    // An address of record: URI parameters and headers do not name the person (RFC 3261 §19.1.4).
    const aor = parseSipAor(trimmed.replace(/[;?].*$/, '').replace(/:\d+$/, ''));
    if (aor === undefined) throw new BridgeError('LOOKUP_INPUT', `"${input}" is not a SIP address such as sip:alice@corp.example`, { condition: 'jid-malformed' });
    return { query: { kind: 'sip', sip: `sip:${aor.user}@${aor.domain}` } };
  }
  return numberQuery(trimmed, defaultRegion);
}

function numberQuery(input: string, defaultRegion: string | undefined): { query: IdentityQuery; extension?: string } {
  const n = normalizeE164(input, { defaultRegion });
  return { query: { kind: 'number', e164: n.e164 }, ...(n.extension === undefined ? {} : { extension: n.extension }) };
}

/** Builds the configured chain, asks it once (no cache), stops it. */
export async function runLookup(config: Readonly<BridgeConfig>, input: string, logger: Logger): Promise<LookupResult> {
  const component = config.xmpp.component.toLowerCase();
  const translator = new AddressTranslator({ componentDomain: config.xmpp.component, xmppDomains: config.mapping.xmppDomains });
  const { query, extension } = queryOf(input, translator, component, config.mapping.defaultRegion);
  const { chain } = buildIdentityChain(config.mapping, logger);
  await chain.start();
  try {
    const trace = await chain.lookup(query, { bypassCache: true });
    const identity = trace.identity;
    const xmppAddresses: string[] = [];
    const e164 = identity?.e164 ?? (query.kind === 'number' ? query.e164 : undefined);
    if (identity !== undefined && e164 !== undefined) xmppAddresses.push(`${e164}@${component}`);
    const sip = identity?.sip ?? (query.kind === 'sip' ? query.sip : undefined);
    const aor = sip === undefined ? undefined : parseSipAor(sip);
    if (aor !== undefined) {
      const jid = translator.sipSenderToXmpp(aor);
      xmppAddresses.push(`${jid.user}@${jid.domain}`);
    }
    const served = identity?.xmpp === undefined || e164 === undefined ? undefined : translator.servedXmppUser(identity.xmpp);
    return {
      input,
      query,
      ...(served === undefined || e164 === undefined ? {} : { numberReaches: `tel:${e164} → ${served.user}@${served.domain}` }),
      ...(extension === undefined ? {} : { extension }),
      ...(trace.answeredBy === undefined ? {} : { answeredBy: trace.answeredBy }),
      ...(identity === undefined ? {} : { identity }),
      attempts: trace.attempts,
      xmppAddresses,
      health: chain.health(),
    };
  } finally {
    await chain.stop();
  }
}

/** The human-readable report. */
export function lookupReport(r: LookupResult): string {
  const lines: string[] = [];
  const asked = r.query.kind === 'number' ? `number ${r.query.e164}` : `SIP address ${r.query.sip}`;
  lines.push(`query:        ${asked}${r.extension === undefined ? '' : ` (extension ${r.extension} not looked up)`}`);
  lines.push(r.answeredBy === undefined ? 'answered by:  nobody (no source knows it)' : `answered by:  ${r.answeredBy}`);
  lines.push('sources:');
  const width = Math.max(6, ...r.attempts.map((a) => a.source.length));
  for (const a of r.attempts) {
    lines.push(`  ${a.source.padEnd(width)}  ${a.outcome.padEnd(9)}  ${a.ms.toFixed(2).padStart(8)} ms${a.error === undefined ? '' : `  ${a.error}`}`);
  }
  if (r.identity !== undefined) {
    lines.push(`E.164:        ${r.identity.e164 ?? '-'}`);
    lines.push(`SIP:          ${r.identity.sip ?? '-'}`);
    lines.push(`XMPP account: ${r.identity.xmpp ?? '-'}`);
    lines.push(`canonical:    ${r.identity.canonical ?? '-'}`);
  }
  for (const jid of r.xmppAddresses) lines.push(`XMPP users write to: ${jid}`);
  if (r.numberReaches !== undefined) lines.push(`SIP users write to: ${r.numberReaches}`);
  return `${lines.join('\n')}\n`;
}
