/**
 * `sip-xmpp-bridge lookup` as an administrator runs it: against a configuration whose identity
 * table is a CSV file, it says which source answered, the person's addresses on both sides and
 * how long each source took. And `start` re-reads that file on SIGHUP.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { freePort } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { cli } from '../support/cli.js';

const COMPONENT = 'sip.xmpp.test';
let config: string;
let dir: string;
let table: string;
let prosody: Prosody | undefined;

afterAll(async () => {
  await prosody?.stop();
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'bridge-lookup-'));
  table = join(dir, 'people.csv');
  await writeFile(table, 'e164,sip,xmpp,canonical\n"+1 (555) 123-4567",sip:alice@corp.example,alice@chat.corp.example,alice@corp.example\n');
  config = join(dir, 'bridge.yaml');
  await writeFile(
    config,
    stringify({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
      xmpp: { component: COMPONENT, secret: 'unused' },
      mapping: {
        xmppDomains: ['xmpp.test', 'chat.corp.example'],
        defaultRegion: 'US',
        identities: [{ e164: '+442079460958', sip: 'sip:bob@uk.corp.example' }],
        sources: [{ type: 'static', name: 'hr-table', file: table }],
      },
    }),
  );
});

describe('sip-xmpp-bridge lookup', () => {
  it('finds a number written nationally in the file source and shows both sides', async () => {
    const run = await cli(['lookup', '(555) 123-4567', '--config', config]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('query:        number +15551234567');
    expect(run.stdout).toContain('answered by:  hr-table');
    expect(run.stdout).toMatch(/config\s+not-found\s+\d+\.\d\d ms/);
    expect(run.stdout).toMatch(/hr-table\s+found\s+\d+\.\d\d ms/);
    expect(run.stdout).toContain('SIP:          sip:alice@corp.example');
    expect(run.stdout).toContain('XMPP account: alice@chat.corp.example');
    expect(run.stdout).toContain(`XMPP users write to: +15551234567@${COMPONENT}`);
    expect(run.stdout).toContain(`XMPP users write to: alice\\40corp.example@${COMPONENT}`);
    expect(run.stdout).toContain('SIP users write to: tel:+15551234567 → alice@chat.corp.example');
  });

  it('finds the number of a SIP address from the configuration rows, in JSON', async () => {
    const run = await cli(['lookup', 'sip:bob@UK.corp.example;transport=tcp', '--config', config, '--json']);
    expect(run.code).toBe(0);
    const result = JSON.parse(run.stdout) as { answeredBy: string; identity: { e164: string }; attempts: Array<{ source: string; outcome: string; ms: number }> };
    expect(result.answeredBy).toBe('config');
    expect(result.identity.e164).toBe('+442079460958');
    expect(result.attempts).toEqual([{ source: 'config', outcome: 'found', ms: expect.any(Number) }]);
  });

  it('resolves a JID on the component domain as XMPP users write it', async () => {
    const run = await cli(['lookup', `+15551234567@${COMPONENT}`, '--config', config, '--json']);
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ answeredBy: 'hr-table', identity: { sip: 'sip:alice@corp.example' } });
  });

  it('says nobody knows a number no source holds, and exits 1', async () => {
    const run = await cli(['lookup', 'tel:+1-555-000-0000', '--config', config]);
    expect(run.code).toBe(1);
    expect(run.stdout).toContain('answered by:  nobody');
    expect(run.stdout).toMatch(/hr-table\s+not-found/);
  });

  it('refuses what is not a number or address with the reason, and exits 2', async () => {
    const run = await cli(['lookup', '+1 555', '--config', config]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/sip-xmpp-bridge: "\+1 555" .*(too short|length)/);
  });
});

describe('sip-xmpp-bridge start with an identity file', () => {
  it('re-reads the file on SIGHUP and keeps the old table when the new one is bad', async () => {
    prosody = await startProsody();
    const doc = parse(await readFile(config, 'utf8')) as Record<string, Record<string, unknown>>;
    doc['sip'] = { listen: [{ transport: 'udp', host: '127.0.0.1', port: await freePort() }] };
    doc['xmpp'] = { component: prosody.component, server: { host: prosody.host, port: prosody.componentPort }, secret: prosody.secret };
    const running = join(dir, 'running.yaml');
    await writeFile(running, stringify(doc));
    let step = 0;
    const run = await cli(['start', '--config', running], (stdout, signal) => {
      if (step === 0 && stdout.includes('"msg":"bridge started"')) {
        step = 1;
        void writeFile(table, 'e164,sip\n+15551234567,sip:carol@corp.example\n').then(() => signal('SIGHUP'));
      } else if (step === 1 && stdout.includes('"msg":"identity table reloaded"')) {
        step = 2;
        void writeFile(table, 'e164,sip\nnot-a-number,sip:dave@corp.example\n').then(() => signal('SIGHUP'));
      } else if (step === 2 && stdout.includes('"msg":"identity table not reloaded; keeping the previous one"')) {
        step = 3;
        signal('SIGTERM');
      }
    });
    expect(step).toBe(3);
    expect(run.stdout).toMatch(/"identities":1,"msg":"identity table reloaded"/);
    expect(run.stdout).toMatch(/"error":".*people\.csv:2: e164: .*"msg":"identity table not reloaded/);
    expect(run.code).toBe(0);
  });
});
