/**
 * The command line as an administrator meets it: config errors name the key, a refused
 * component secret stops start-up with a clear message, a good config runs until SIGTERM.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { freePort } from '../support/ports.js';
import { startProsody, type Prosody } from '../support/prosody.js';
import { cli } from '../support/cli.js';

let prosody: Prosody;
let dir: string;

async function configFile(name: string, secret: string): Promise<string> {
  const port = await freePort();
  const path = join(dir, name);
  await writeFile(
    path,
    stringify({
      sip: { listen: [{ transport: 'udp', host: '127.0.0.1', port }] },
      xmpp: { component: prosody.component, server: { host: prosody.host, port: prosody.componentPort }, secret },
      mapping: { xmppDomains: [prosody.domain] },
    }),
  );
  return path;
}

beforeAll(async () => {
  prosody = await startProsody();
  dir = await mkdtemp(join(tmpdir(), 'bridge-cli-'));
});

afterAll(async () => {
  await prosody?.stop();
});

describe('sip-xmpp-bridge CLI', () => {
  it('check-config accepts the example configuration', async () => {
    const run = await cli(['check-config', 'config/bridge.example.yaml']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('config/bridge.example.yaml: valid');
  });

  it('check-config names the wrong key and exits 2', async () => {
    const path = join(dir, 'wrong.yaml');
    await writeFile(path, 'sip:\n  listen: [{ transport: udp, port: "5060" }]\nxmpp: { component: c.test, secret: s }\nmapping: { xmppDomains: [x.test] }\n');
    const run = await cli(['check-config', path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/sip\.listen\.0\.port: .*expected number/);
  });

  it('start stops with a clear message when the XMPP server refuses the component secret', async () => {
    const run = await cli(['start', '--config', await configFile('bad-secret.yaml', 'not-the-secret')]);
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/refused the component name or secret/);
  });

  it('start runs with a good configuration and exits 0 on SIGTERM', async () => {
    const run = await cli(['start', '--config', await configFile('good.yaml', prosody.secret)], (stdout, signal) => {
      if (stdout.includes('"bridge started"')) signal('SIGTERM');
    });
    expect(run.stdout).toContain('"msg":"XMPP component online"');
    expect(run.stdout).toContain('"msg":"bridge stopped"');
    expect(run.code).toBe(0);
  });
});
