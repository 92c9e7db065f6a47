import { describe, expect, it } from 'vitest';
import type { Address } from '../../src/core/events.js';
import { PresenceVisibility } from '../../src/core/policy/presence-visibility.js';

const xmpp = (user: string, domain: string): Address => ({ side: 'xmpp', user, domain });
const sip = (user: string, domain: string): Address => ({ side: 'sip', user, domain });

describe('PresenceVisibility: whose presence crosses, to whom (issue 6 item 4)', () => {
  // Everyone at corp.example is visible to every partner, except the executives: only globex sees them.
  const policy = new PresenceVisibility(
    ['*@corp.example', { presentities: ['group:executives'], watchers: ['sip:*@globex.example', 'sip:auditor@initech.example'] }, 'sip:bob@partner.example'],
    { executives: ['CEO@corp.example', 'cfo@corp.example'] },
  );

  it.each([
    ['an ordinary user of a visible domain, to anyone', xmpp('alice', 'corp.example'), sip('eve', 'initech.example'), true],
    ['the CEO, to a globex user', xmpp('ceo', 'corp.example'), sip('bob', 'globex.example'), true],
    ['the CEO, to the one named initech user', xmpp('ceo', 'corp.example'), sip('auditor', 'initech.example'), true],
    ['the CEO, to another initech user: the group rule speaks, not the domain rule', xmpp('ceo', 'corp.example'), sip('eve', 'initech.example'), false],
    ['the CFO, without knowing the watcher', xmpp('cfo', 'corp.example'), undefined, false],
    ['a SIP user listed by itself, to anyone', sip('bob', 'partner.example'), xmpp('juliet', 'corp.example'), true],
    ['a SIP user of that domain not listed', sip('carol', 'partner.example'), xmpp('juliet', 'corp.example'), false],
    ['a user of a domain nobody listed', xmpp('romeo', 'elsewhere.example'), sip('bob', 'globex.example'), false],
  ])('%s → %s', (_name, presentity, watcher, allowed) => {
    expect(policy.decide(presentity, watcher).allowed).toBe(allowed);
  });

  it('says which rule decided, for the log and the metric', () => {
    expect(policy.decide(xmpp('ceo', 'corp.example'), sip('eve', 'initech.example')).rule).toMatch(/group:executives.*watcher not listed/);
    expect(policy.decide(xmpp('romeo', 'elsewhere.example')).rule).toBe('default-deny');
  });

  it('is private by default: no rules, nobody visible', () => {
    expect(new PresenceVisibility([]).decide(xmpp('alice', 'corp.example'), sip('bob', 'globex.example'))).toEqual({ allowed: false, rule: 'default-deny' });
  });

  it.each([
    [['nobody'], {}, /is not user@domain/],
    [[{ presentities: ['group:board'] }], {}, /no group "board"/],
    [[{ presentities: ['*@corp.example'], watchers: ['bob'] }], {}, /watchers: "bob"/],
  ])('refuses a bad configuration: %j', (visible, groups, message) => {
    expect(() => new PresenceVisibility(visible, groups)).toThrow(message);
  });
});
