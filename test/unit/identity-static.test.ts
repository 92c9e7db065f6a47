import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { StaticSource } from '../../src/mapping/identity/static.js';
import { createLogger, silentLogger, type Logger } from '../../src/telemetry/logger.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'identity-static-'));
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

function capturingLogger(): { logger: Logger; text: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(chunk.toString());
      done();
    },
  });
  return { logger: createLogger({ level: 'info', destination }), text: () => chunks.join('') };
}

describe('StaticSource from the configuration rows', () => {
  const source = new StaticSource({
    rows: [
      { e164: '+15551234567', sip: 'sip:alice@corp.example' },
      { e164: '+442079460958', sip: 'sip:Bob@UK.Corp.Example' },
    ],
    logger: silentLogger(),
  });

  it('finds the person a number belongs to', async () => {
    expect(await source.byNumber('+15551234567')).toEqual({ e164: '+15551234567', sip: 'sip:alice@corp.example' });
  });

  it('finds the number of a SIP address, host case-insensitively, user exactly', async () => {
    expect((await source.bySipAddress('sip:Bob@uk.corp.example'))?.e164).toBe('+442079460958');
    expect(await source.bySipAddress('sip:bob@uk.corp.example')).toBeUndefined();
  });

  it('answers undefined for a number it does not hold', async () => {
    expect(await source.byNumber('+15550000000')).toBeUndefined();
  });

  it('refuses a duplicate number, naming the row', () => {
    expect(
      () =>
        new StaticSource({
          rows: [
            { e164: '+15551234567', sip: 'sip:a@x.example' },
            { e164: '+1 555 123 4567', sip: 'sip:b@x.example' },
          ],
          logger: silentLogger(),
        }),
    ).toThrow(/mapping\.identities\[1\]: e164 \+15551234567 is listed twice/);
  });
});

describe('StaticSource from a file', () => {
  it('reads a YAML list, normalising the numbers with the default region', async () => {
    const path = await file('people.yaml', '- { e164: "(555) 123-4567", sip: "sip:alice@corp.example", xmpp: alice@chat.corp.example, canonical: alice@corp.example }\n');
    const source = new StaticSource({ file: path, defaultRegion: 'US', logger: silentLogger() });
    await source.start();
    expect(await source.byNumber('+15551234567')).toEqual({
      e164: '+15551234567',
      sip: 'sip:alice@corp.example',
      xmpp: 'alice@chat.corp.example',
      canonical: 'alice@corp.example',
    });
  });

  it('reads a CSV table with a header, comments and quoted fields', async () => {
    const path = await file('people.csv', '# exported from HR\nsip,e164,canonical\n"sip:alice@corp.example","+1 555 123 4567","alice@corp.example"\n\nsip:bob@corp.example,+442079460958,"Smith, Bob"\n');
    const source = new StaticSource({ file: path, logger: silentLogger() });
    await source.start();
    expect(source.size).toBe(2);
    expect(await source.bySipAddress('sip:bob@corp.example')).toEqual({ e164: '+442079460958', sip: 'sip:bob@corp.example', canonical: 'Smith, Bob' });
  });

  it('takes an empty optional CSV cell as absent', async () => {
    const path = await file('optional.csv', 'e164,sip,xmpp\n+15551234567,sip:alice@corp.example,\n+15551234568,sip:bob@corp.example,bob@chat.corp.example\n');
    const source = new StaticSource({ file: path, logger: silentLogger() });
    await source.start();
    expect(await source.byNumber('+15551234567')).toEqual({ e164: '+15551234567', sip: 'sip:alice@corp.example' });
    expect(await source.byNumber('+15551234568')).toMatchObject({ xmpp: 'bob@chat.corp.example' });
  });

  const bad: Array<[string, string, string, RegExp]> = [
    ['a number that is not one', 'bad1.csv', 'e164,sip\nalice,sip:a@x.example\n', /bad1\.csv:2: e164: .*not a telephone number/],
    ['a row with too few fields', 'bad2.csv', 'e164,sip\n+15551234567\n', /bad2\.csv:2: 1 fields, the header has 2/],
    ['an unknown CSV column', 'bad3.csv', 'e164,sip,phone\n', /bad3\.csv:1: unknown column phone/],
    ['a header without sip', 'bad4.csv', 'e164\n+15551234567\n', /must name the e164 and sip columns/],
    ['an unclosed quote', 'bad5.csv', 'e164,sip\n"+15551234567,sip:a@x.example\n', /bad5\.csv:2: a quoted field is not closed/],
    ['YAML that is not a list', 'bad6.yaml', 'alice: +15551234567\n', /expected a list/],
    ['a YAML row without sip', 'bad7.yaml', '- { e164: "+15551234567" }\n', /row 0: sip: missing/],
    ['a YAML row with an unknown key', 'bad8.yaml', '- { e164: "+15551234567", sip: "sip:a@x.example", phone: 1 }\n', /row 0: unknown key phone/],
    ['an unquoted YAML number', 'bad10.yaml', '- { e164: +15551234567, sip: "sip:a@x.example" }\n', /row 0: e164: a YAML number; quote it/],
    ['a SIP address that is not one', 'bad9.yaml', '- { e164: "+15551234567", sip: alice }\n', /sip "alice" is not a SIP address/],
  ];
  it.each(bad)('refuses %s at start-up, naming the place', async (_name, name, text, expected) => {
    const source = new StaticSource({ file: await file(name, text), logger: silentLogger() });
    await expect(source.start()).rejects.toThrow(expected);
  });

  it('refuses a file it cannot read at start-up', async () => {
    const source = new StaticSource({ file: join(dir, 'missing.yaml'), logger: silentLogger() });
    await expect(source.start()).rejects.toThrow(/cannot read identity file .*missing\.yaml/);
  });
});

describe('StaticSource reload', () => {
  it('swaps in the new table', async () => {
    const path = await file('reload.yaml', '- { e164: "+15551234567", sip: "sip:alice@corp.example" }\n');
    const source = new StaticSource({ file: path, logger: silentLogger() });
    await source.start();
    await writeFile(path, '- { e164: "+15551234567", sip: "sip:carol@corp.example" }\n');
    expect(await source.reload()).toBe(true);
    expect((await source.byNumber('+15551234567'))?.sip).toBe('sip:carol@corp.example');
  });

  it('keeps the old table and logs an error when the new file is bad', async () => {
    const path = await file('reload-bad.yaml', '- { e164: "+15551234567", sip: "sip:alice@corp.example" }\n');
    const { logger, text } = capturingLogger();
    const source = new StaticSource({ file: path, logger });
    await source.start();
    await writeFile(path, '- { e164: "nope", sip: "sip:carol@corp.example" }\n');
    expect(await source.reload()).toBe(false);
    expect((await source.byNumber('+15551234567'))?.sip).toBe('sip:alice@corp.example');
    expect(text()).toMatch(/"level":50.*"msg":"identity table not reloaded; keeping the previous one"/);
  });

  it('answers lookups that began before the swap from the table they began with', async () => {
    const path = await file('reload-flight.yaml', '- { e164: "+15551234567", sip: "sip:alice@corp.example" }\n');
    const source = new StaticSource({ file: path, logger: silentLogger() });
    await source.start();
    const before = source.byNumber('+15551234567');
    await writeFile(path, '- { e164: "+15551234567", sip: "sip:carol@corp.example" }\n');
    await source.reload();
    expect((await before)?.sip).toBe('sip:alice@corp.example');
  });
});
