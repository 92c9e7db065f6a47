/**
 * `sip-xmpp-bridge lookup` as an administrator runs it: against a configuration whose identity
 * table is a CSV file, it says which source answered, the person's addresses on both sides and
 * how long each source took.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const guard = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('exit', (code) => {
      clearTimeout(guard);
      resolve({ code, stdout, stderr });
    });
  });
}

const COMPONENT = 'sip.xmpp.test';
let config: string;

beforeAll(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'bridge-lookup-'));
  const table = join(dir, 'people.csv');
  await writeFile(table, 'e164,sip,xmpp,canonical\n"+1 (555) 123-4567",sip:alice@corp.example,alice@chat.corp.example,alice@corp.example\n');
  config = join(dir, 'bridge.yaml');
  await writeFile(
    config,
    stringify({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port: 0 }] },
      xmpp: { component: COMPONENT, secret: 'unused' },
      mapping: {
        xmppDomains: ['xmpp.test'],
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
