/**
 * A small mutation fuzzer for what the component stream carries (issue 6 item 7): a corpus of
 * real stanzas as Prosody routes them to the bridge, and mutations of the kinds a hostile or
 * broken server or client produces — flipped and cut bytes, entity references and DOCTYPE /
 * ENTITY declarations, deep nesting, huge or duplicated attributes, malformed JIDs, control
 * characters and invalid UTF-8, mismatched tags. Deterministic for a seed, bounded by a count.
 */
import { pick, random } from './sip-mutations.js';

const C = 'sip.xmpp.test';

export const STANZA_CORPUS: readonly string[] = [
  `<message from='juliet@xmpp.test/balcony' to='+15551234567@${C}' type='chat' id='m1'><body>Wherefore art thou?</body><thread>t1</thread><request xmlns='urn:xmpp:receipts'/></message>`,
  `<message from='juliet@xmpp.test/balcony' to='alice\\40corp.example@${C}' type='normal' id='m2'><subject>hi</subject><body>é€😀 中</body><html xmlns='http://jabber.org/protocol/xhtml-im'><body xmlns='http://www.w3.org/1999/xhtml'><p>hi</p></body></html></message>`,
  `<message from='romeo@xmpp.test/r' to='bob\\40sip.example.net@${C}' type='error' id='m3'><error type='cancel'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>gone</text></error></message>`,
  `<presence from='juliet@xmpp.test/balcony' to='alice\\40corp.example@${C}'><show>away</show><status>at the ball</status><priority>5</priority><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='n' ver='v'/></presence>`,
  `<presence from='juliet@xmpp.test/balcony' to='alice\\40corp.example@${C}' type='unavailable'/>`,
  `<presence from='juliet@xmpp.test' to='alice\\40corp.example@${C}' type='subscribe' id='s1'/>`,
  `<presence from='juliet@xmpp.test' to='alice\\40corp.example@${C}' type='subscribed'/>`,
  `<presence from='juliet@xmpp.test' to='alice\\40corp.example@${C}' type='unsubscribe'/>`,
  `<presence from='juliet@xmpp.test/balcony' to='alice\\40corp.example@${C}' type='probe'/>`,
  `<presence from='juliet@xmpp.test/balcony' to='alice\\40corp.example@${C}' type='error'><error type='cancel'><remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>`,
  `<iq from='xmpp.test' to='${C}' type='get' id='p1'><ping xmlns='urn:xmpp:ping'/></iq>`,
  `<iq from='juliet@xmpp.test/balcony' to='${C}' type='get' id='d1'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
];

type Mutation = (s: Buffer, rnd: () => number) => Buffer;

const text = (b: Buffer) => b.toString('utf8');
const at = (s: string, rnd: () => number) => Math.floor(rnd() * (s.length + 1));
const insert = (s: string, i: number, what: string) => s.slice(0, i) + what + s.slice(i);

const JIDS = ['', '@', 'a@b@c', '/only-resource', `${'x'.repeat(3000)}@xmpp.test`, 'juliet@', '@xmpp.test', 'juliet@xmpp.test/', 'juliet@[::1', 'ju liet@xmpp.test', 'juliet@xmpp..test', '\u0000@x', '+1@sip.xmpp.test', 'a\\40b\\40c@sip.xmpp.test'];

const MUTATIONS: readonly Mutation[] = [
  // Flip a few bytes anywhere.
  (m, rnd) => {
    const out = Buffer.from(m);
    for (let i = 0; i < 1 + Math.floor(rnd() * 4); i++) out[Math.floor(rnd() * out.length)] = Math.floor(rnd() * 256);
    return out;
  },
  // Cut it short.
  (m, rnd) => m.subarray(0, Math.floor(rnd() * m.length)),
  // Entity references, defined or not, and character references to what XML forbids.
  (m, rnd) => Buffer.from(insert(text(m), at(text(m), rnd), pick(['&foo;', '&lt;', '&#0;', '&#xD800;', '&#x1F600;', '&#99999999;', '&amp', '&'], rnd))),
  // A DOCTYPE with an entity declaration (billion laughs' first step), a PI, a comment, CDATA.
  (m, rnd) =>
    Buffer.from(
      pick(['<!DOCTYPE x [<!ENTITY a "aaaa">]>', '<?xml-stylesheet href="x"?>', '<!-- c -->', '<![CDATA[<b>]]>', '<!ENTITY b SYSTEM "file:///etc/passwd">'], rnd) + text(m),
    ),
  // Deep nesting inside the stanza.
  (m, rnd) => {
    const depth = 10 + Math.floor(rnd() * 2000);
    const s = text(m);
    const i = s.indexOf('>') + 1;
    return Buffer.from(insert(s, i, '<x>'.repeat(depth) + '</x>'.repeat(depth)));
  },
  // A huge attribute, or one given twice.
  (m, rnd) => {
    const s = text(m);
    const i = s.indexOf(' ');
    if (i < 0) return m;
    return Buffer.from(insert(s, i, rnd() < 0.5 ? ` x='${'y'.repeat(1 + Math.floor(rnd() * 200_000))}'` : ` id='a' id='b'`));
  },
  // A malformed or hostile JID in from or to.
  (m, rnd) => Buffer.from(text(m).replace(rnd() < 0.5 ? /from='[^']*'/ : /to='[^']*'/, (attr) => `${attr.slice(0, attr.indexOf('='))}='${pick(JIDS, rnd)}'`)),
  // Control characters or invalid UTF-8 in the text.
  (m, rnd) => {
    const s = m;
    const i = Math.floor(rnd() * s.length);
    const bad = pick([Buffer.from([0x01]), Buffer.from([0x0b]), Buffer.from([0xc3, 0x28]), Buffer.from([0xff, 0xfe]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('\u0000')], rnd);
    return Buffer.concat([s.subarray(0, i), bad, s.subarray(i)]);
  },
  // A closing tag that does not match, or an unknown namespace prefix.
  (m, rnd) => Buffer.from(rnd() < 0.5 ? text(m).replace(/<\/(\w+)>$/, '</wrong>') : text(m).replace(/^<(\w+)/, '<foo:$1')),
  // Attribute values the bridge reads, bent: odd types, priorities, shows.
  (m, rnd) =>
    Buffer.from(
      text(m)
        .replace(/type='[^']*'/, `type='${pick(['', 'chat ', 'ERROR', 'groupchat', 'headline', 'subscribe\u0000', 'x'.repeat(500)], rnd)}'`)
        .replace(/<priority>[^<]*<\/priority>/, `<priority>${pick(['999', '-129', 'NaN', '1e9', ''], rnd)}</priority>`)
        .replace(/<show>[^<]*<\/show>/, `<show>${pick(['', 'chat', 'xa ', 'dnd<x/>', 'sleeping'], rnd)}</show>`),
    ),
];

export function* stanzaMutations(opts: { seed: number; count: number }): Generator<Buffer> {
  const rnd = random(opts.seed);
  for (let i = 0; i < opts.count; i++) {
    let s: Buffer = Buffer.from(pick(STANZA_CORPUS, rnd), 'utf8');
    for (let j = 0; j < 1 + Math.floor(rnd() * 3); j++) s = pick(MUTATIONS, rnd)(s, rnd);
    yield s;
  }
}
