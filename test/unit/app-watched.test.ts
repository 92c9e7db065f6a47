import { describe, expect, it } from 'vitest';
import { watchedXmppUsers } from '../../src/app.js';
import { MemorySubscriptionStore } from '../../src/core/state/memory-subscriptions.js';
import type { SubscriptionRecord } from '../../src/core/state/subscriptions.js';
import { AddressTranslator } from '../../src/mapping/address.js';

const translator = new AddressTranslator({ componentDomain: 'sip.xmpp.test', xmppDomains: ['xmpp.test'] });

const record = (id: string, over: Partial<SubscriptionRecord>): SubscriptionRecord => ({
  id,
  role: 'notifier',
  watcher: 'alice@corp.example',
  presentity: 'juliet@xmpp.test',
  state: 'active',
  expiresAt: Date.now() + 60_000,
  data: {},
  ...over,
});

describe('watchedXmppUsers: whom the XMPP adapter re-probes after a reconnect', () => {
  it('lists active SIP watchers of XMPP users as component JIDs, and nothing else', async () => {
    const store = new MemorySubscriptionStore({ maxRecords: 10 });
    await store.put(record('a', {}));
    await store.put(record('b', { watcher: 'Bob@corp.example', presentity: 'Romeo@xmpp.test' }));
    await store.put(record('pending', { state: 'pending', watcher: 'carol@corp.example' }));
    await store.put(record('subscriber', { role: 'subscriber', watcher: 'juliet@xmpp.test', presentity: 'alice@corp.example' }));
    await store.put(record('unserved', { presentity: 'dave@elsewhere.example' }));
    await store.put(record('broken', { watcher: 'no-at-sign' }));

    const pairs = await watchedXmppUsers(store, translator);

    expect(pairs).toEqual(
      expect.arrayContaining([
        { watcher: { side: 'xmpp', user: 'alice\\40corp.example', domain: 'sip.xmpp.test' }, presentity: { side: 'xmpp', user: 'juliet', domain: 'xmpp.test' } },
        { watcher: { side: 'xmpp', user: 'bob\\40corp.example', domain: 'sip.xmpp.test' }, presentity: { side: 'xmpp', user: 'romeo', domain: 'xmpp.test' } },
      ]),
    );
    expect(pairs).toHaveLength(2);
  });
});
