/**
 * docker-compose.yml, the Dockerfile and deploy/** as an operator would run them (issue 5
 * item 6), checked without a Docker engine: `docker-compose config` must accept the file, every
 * file a service mounts must exist, every bridge's mounted config must pass `check-config` with
 * the role its service is named after, and the files that must agree (component secret, Redis,
 * Kamailio routes, health-check ports) do.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, createConnection, type Server, type Socket } from 'node:net';
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config/load.js';
import type { BridgeConfig } from '../../src/config/schema.js';
import { StaticSource } from '../../src/mapping/identity/static.js';
import { parseUri } from '../../src/adapters/sip/codec/uri.js';
import { silentLogger } from '../../src/telemetry/logger.js';
import { cli, type CliRun } from '../support/cli.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const INSTALL_HINT = 'run scripts/install-test-peers.sh (Debian packages docker-compose, kamailio, prosody)';

interface Service {
  image?: string;
  build?: { context: string };
  command?: string[];
  entrypoint?: string[];
  volumes?: (string | { type: string; source: string; target: string; read_only?: boolean })[];
  networks?: Record<string, unknown>;
  ports?: unknown[];
  container_name?: string;
  restart?: string;
  healthcheck?: { test: string[] };
}

interface Mount {
  host: string;
  target: string;
  readOnly: boolean;
}

/** A bridge service: its role (from its name), mounts and the config it starts with. */
interface BridgeService {
  name: string;
  role: string;
  service: Service;
  configHostPath: string;
  readonly config: Readonly<BridgeConfig>;
}

/** `docker-compose config` output, or a failure naming the install script when the binary is missing. */
function composeConfig(): { code: number | null; stdout: string; stderr: string } {
  const run = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  if ((run.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') {
    throw new Error(`docker-compose not found: ${INSTALL_HINT}`);
  }
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

/**
 * docker-compose 1.29 prints short volume syntax, `HOST:TARGET[:MODE]` (named volumes have no
 * `/`); Compose v2 prints the long form.
 */
function bindMounts(service: Service): Mount[] {
  return (service.volumes ?? []).flatMap((v) => {
    if (typeof v !== 'string') return v.type === 'bind' ? [{ host: v.source, target: v.target, readOnly: v.read_only === true }] : [];
    const [host = '', target = '', mode = 'rw'] = v.split(':');
    return isAbsolute(host) ? [{ host, target, readOnly: mode.split(',').includes('ro') }] : [];
  });
}

/** ENTRYPOINT and CMD of the Dockerfile's last stage, in exec form. */
function dockerfileExec(text: string): { entrypoint: string[]; cmd: string[]; stages: string[]; user?: string; copies: string[] } {
  const lines = text.split('\n').filter((l) => !l.trimStart().startsWith('#'));
  const stages = lines.filter((l) => /^FROM\s/i.test(l));
  const last = lines.slice(lines.findIndex((l) => l === stages[stages.length - 1]));
  const exec = (keyword: string): string[] => {
    const line = last.find((l) => l.startsWith(`${keyword} `));
    return line === undefined ? [] : (JSON.parse(line.slice(keyword.length + 1)) as string[]);
  };
  const user = last.find((l) => l.startsWith('USER '))?.slice(5).trim();
  return {
    entrypoint: exec('ENTRYPOINT'),
    cmd: exec('CMD'),
    stages,
    ...(user === undefined ? {} : { user }),
    copies: last.filter((l) => l.startsWith('COPY ')),
  };
}

function optionValue(args: readonly string[], option: string): string | undefined {
  const i = args.indexOf(option);
  return i < 0 ? undefined : args[i + 1];
}

function sharesNetwork(a: Service, b: Service): boolean {
  const theirs = Object.keys(b.networks ?? {});
  return Object.keys(a.networks ?? {}).some((n) => theirs.includes(n));
}

let services: Record<string, Service>;
let bridges: BridgeService[];
let dockerfile: ReturnType<typeof dockerfileExec>;
let packageBin: string;

beforeAll(async () => {
  const run = composeConfig();
  if (run.code !== 0) throw new Error(`docker-compose config failed (${run.code}):\n${run.stderr}`);
  services = (parseYaml(run.stdout) as { services: Record<string, Service> }).services;
  dockerfile = dockerfileExec(await readFile(join(ROOT, 'Dockerfile'), 'utf8'));
  packageBin = (JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> }).bin['sip-xmpp-bridge'] ?? '';
  bridges = [];
  for (const [name, service] of Object.entries(services)) {
    if (!name.startsWith('bridge-')) continue;
    const args = service.command ?? dockerfile.cmd;
    const target = optionValue(args, '--config') ?? '';
    const mount = bindMounts(service).find((m) => m.target === target);
    if (mount === undefined) throw new Error(`${name}: nothing mounted at its --config ${target}`);
    // A config that does not load fails the tests that read it (check-config says why), not the file.
    const loaded = await loadConfig(mount.host).catch((err: unknown) => err as Error);
    bridges.push({
      name,
      role: name.slice('bridge-'.length),
      service,
      configHostPath: mount.host,
      get config() {
        if (loaded instanceof Error) throw loaded;
        return loaded;
      },
    });
  }
});

describe('docker-compose.yml', () => {
  it('is accepted by docker-compose config -q', () => {
    const run = spawnSync('docker-compose', ['-f', 'docker-compose.yml', 'config', '-q'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('runs Redis, Prosody, Kamailio and the bridge as a SIP edge, an XMPP edge and a router', () => {
    expect(Object.keys(services).sort()).toEqual(['bridge-router', 'bridge-sip-edge', 'bridge-xmpp-edge', 'kamailio', 'prosody', 'redis']);
  });

  it('mounts only files and folders that exist in the repository, read-only', () => {
    const mounts = Object.entries(services).flatMap(([name, s]) => bindMounts(s).map((m) => ({ name, ...m })));
    expect(mounts.length).toBeGreaterThanOrEqual(6);
    for (const m of mounts) {
      expect(relative(ROOT, m.host).startsWith('..'), `${m.name}: ${m.host} is outside the repository`).toBe(false);
      expect(existsSync(m.host), `${m.name}: ${m.host} does not exist`).toBe(true);
      expect(m.readOnly, `${m.name}: ${m.host} is mounted writable`).toBe(true);
    }
  });

  it('gives every service a health check', () => {
    for (const [name, s] of Object.entries(services)) {
      expect(s.healthcheck?.test.length ?? 0, `${name} has no health check`).toBeGreaterThan(1);
      expect(s.restart, name).toBe('unless-stopped');
    }
  });

  it('lets the scaled services run several replicas: no fixed container name, no published port', () => {
    for (const name of ['bridge-sip-edge', 'bridge-router']) {
      expect(services[name]?.container_name, name).toBeUndefined();
      expect(services[name]?.ports ?? [], name).toEqual([]);
    }
  });

  it('keeps the SIP edge off the inside network and Prosody off the DMZ: only Redis joins both', () => {
    const [edge, prosody, router, redis] = ['bridge-sip-edge', 'prosody', 'bridge-router', 'redis'].map((n) => services[n] as Service);
    expect(sharesNetwork(edge as Service, prosody as Service)).toBe(false);
    expect(sharesNetwork(edge as Service, router as Service)).toBe(false);
    for (const b of bridges) expect(sharesNetwork(b.service, redis as Service), b.name).toBe(true);
  });
});

describe('the bridge services', () => {
  it('start the image entrypoint with a config file mounted read-only', () => {
    expect(bridges.map((b) => b.name).sort()).toEqual(['bridge-router', 'bridge-sip-edge', 'bridge-xmpp-edge']);
    for (const b of bridges) {
      expect(b.service.build?.context, b.name).toBe(ROOT.replace(/\/$/, ''));
      expect(b.service.entrypoint, `${b.name} must rely on the Dockerfile's ENTRYPOINT`).toBeUndefined();
      expect(relative(ROOT, b.configHostPath)).toBe(`deploy/bridge/${b.role}.yaml`);
    }
  });

  it('each mounted config is accepted by check-config and has the role its service is named after', async () => {
    const runs = await Promise.all(bridges.map((b) => cli(['check-config', b.configHostPath])));
    for (const [i, b] of bridges.entries()) {
      const run = runs[i] as CliRun;
      expect(run.stderr, b.name).toBe('');
      expect(run.code, b.name).toBe(0);
      expect(run.stdout, b.name).toContain(`(role ${b.role}, redis queue,`);
    }
  });

  it('share one Redis, key prefix and component domain, reachable on their networks', () => {
    const [first] = bridges;
    for (const b of bridges) {
      expect(b.config.redis, b.name).toEqual(first?.config.redis);
      expect(b.config.xmpp.component, b.name).toBe(first?.config.xmpp.component);
      expect(b.config.mapping.xmppDomains, b.name).toEqual(first?.config.mapping.xmppDomains);
      const redisHost = new URL(b.config.redis.url).hostname;
      expect(services[redisHost], `${b.name}: ${redisHost} is not a service`).toBeDefined();
      expect(sharesNetwork(b.service, services[redisHost] as Service), b.name).toBe(true);
    }
  });

  it('mount every identity file their config names, and the files load', async () => {
    for (const b of bridges) {
      const mounts = bindMounts(b.service);
      for (const source of b.config.mapping.sources) {
        if (source.type !== 'static') continue;
        const mount = mounts.find((m) => m.target === source.file);
        expect(mount, `${b.name}: ${source.file} is not mounted`).toBeDefined();
        const table = new StaticSource({ file: mount?.host ?? '', logger: silentLogger(), defaultRegion: b.config.mapping.defaultRegion });
        await table.start();
        expect(table.size, source.file).toBeGreaterThan(0);
      }
    }
  });

  it("health checks watch the ports each role's config uses", () => {
    const test = (name: string) => services[name]?.healthcheck?.test ?? [];
    const bridge = (role: string) => bridges.find((b) => b.role === role)?.config as Readonly<BridgeConfig>;
    const redisPort = String(new URL(bridge('router').redis.url).port || 6379);
    for (const b of bridges) expect(test(b.name).slice(0, 3), b.name).toEqual(['CMD', 'node', 'healthcheck.mjs']);

    const sip = bridge('sip-edge').sip.listen.map((l) => `${l.transport}:${l.port}`);
    expect(optionValues(test('bridge-sip-edge'), '--listen').sort()).toEqual([...sip].sort());
    expect(optionValues(test('bridge-sip-edge'), '--connected')).toEqual([redisPort]);
    expect(optionValues(test('bridge-xmpp-edge'), '--connected').sort()).toEqual([String(bridge('xmpp-edge').xmpp.server.port), redisPort].sort());
    expect(optionValues(test('bridge-router'), '--connected')).toEqual([redisPort]);
  });

  it('run exactly one XMPP edge, restarted when it stops (Prosody takes one connection per component)', () => {
    const xmppEdges = bridges.filter((b) => b.config.role === 'xmpp-edge' || b.config.role === 'all');
    expect(xmppEdges.map((b) => b.name)).toEqual(['bridge-xmpp-edge']);
    expect(xmppEdges[0]?.service.restart).toBe('unless-stopped');
  });
});

describe('peer configs agree with the bridge', () => {
  it('Prosody mounts the component with the XMPP edge secret on the port the edge dials', async () => {
    const edge = bridges.find((b) => b.role === 'xmpp-edge')?.config as Readonly<BridgeConfig>;
    const lua = await readFile(join(ROOT, 'deploy/prosody/prosody.cfg.lua'), 'utf8');
    const component = new RegExp(`^Component "${edge.xmpp.component.replace(/\./g, '\\.')}"\\s*\\n\\s*component_secret = "([^"]*)"`, 'm').exec(lua);
    expect(component?.[1]).toBe(edge.xmpp.secret);
    expect(lua).toMatch(new RegExp(`^component_ports = \\{ ${edge.xmpp.server.port} \\}`, 'm'));
    for (const domain of edge.mapping.xmppDomains) expect(lua).toContain(`VirtualHost "${domain}"`);
    expect(services[edge.xmpp.server.host], 'xmpp.server.host is the Prosody service').toBe(services['prosody']);
  });

  it('Kamailio hands the XMPP domain to the SIP edges, and the edges send out through its bridge-side port', async () => {
    const edge = bridges.find((b) => b.role === 'sip-edge')?.config as Readonly<BridgeConfig>;
    const cfg = await readFile(join(ROOT, 'deploy/kamailio/kamailio.cfg'), 'utf8');
    const define = (name: string) => new RegExp(`^#!define ${name} "?([^"\\n]*)"?$`, 'm').exec(cfg)?.[1] ?? '';
    expect(edge.mapping.xmppDomains).toContain(define('XMPP_DOMAIN'));

    const edges = parseUri(define('BRIDGE_EDGES'));
    expect(edges.host).toBe('bridge-sip-edge');
    expect(edge.sip.listen).toContainEqual(expect.objectContaining({ transport: edges.params['transport'], port: edges.port }));
    expect(edge.sip.advertisedHost).toBe('bridge-sip-edge');

    const proxy = parseUri(edge.sip.outboundProxy ?? '');
    expect(services[proxy.host], 'sip.outboundProxy names the Kamailio service').toBe(services['kamailio']);
    expect(String(proxy.port)).toBe(define('BRIDGE_SIDE_PORT'));
    expect(cfg).toContain(`listen=${proxy.params['transport']}:eth0:${proxy.port} name "bridge"`);
    // Loose routing would add a Route header Kamailio's initial-request path does not strip.
    expect('lr' in proxy.params).toBe(false);
  });

  it('kamailio -c accepts deploy/kamailio/kamailio.cfg', async () => {
    if (spawnSync('sh', ['-c', 'command -v kamailio']).status !== 0) throw new Error(`kamailio not found: ${INSTALL_HINT}`);
    const dir = await mkdtemp(join(tmpdir(), 'deploy-kamailio-'));
    try {
      // The container listens on eth0; a test host may have none, so the check binds names to lo.
      const cfg = readFileSync(join(ROOT, 'deploy/kamailio/kamailio.cfg'), 'utf8').replaceAll(':eth0:', ':lo:');
      await writeFile(join(dir, 'kamailio.cfg'), cfg);
      const check = spawnSync('kamailio', ['-c', '-f', join(dir, 'kamailio.cfg')], {
        encoding: 'utf8',
        timeout: 15_000,
        env: { ...process.env, SIP_PUBLIC_ADDRESS: '192.0.2.10' },
      });
      expect(check.stderr).toContain('config file ok');
      expect(check.status).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('prosodyctl check config accepts deploy/prosody/prosody.cfg.lua', () => {
    const check = spawnSync('prosodyctl', ['--config', join(ROOT, 'deploy/prosody/prosody.cfg.lua'), 'check', 'config'], {
      encoding: 'utf8',
      timeout: 15_000,
    });
    if ((check.error as NodeJS.ErrnoException | undefined)?.code === 'ENOENT') throw new Error(`prosodyctl not found: ${INSTALL_HINT}`);
    expect(check.stdout).toContain('All checks passed');
    expect(check.status).toBe(0);
  });
});

describe('Dockerfile', () => {
  it('builds on node:20-bookworm-slim in two stages and runs as a non-root user', () => {
    expect(dockerfile.stages).toHaveLength(2);
    for (const stage of dockerfile.stages) expect(stage).toMatch(/^FROM node:20-bookworm-slim AS \w+$/);
    expect(dockerfile.user).toBeDefined();
    expect(['root', '0']).not.toContain(dockerfile.user);
  });

  it("names the entrypoint the compose services rely on: the package's bin, with start --config", () => {
    expect(dockerfile.entrypoint).toEqual(['node', packageBin]);
    expect(packageBin).toBe('dist/cli.js');
    expect(dockerfile.cmd.slice(0, 1)).toEqual(['start']);
    for (const b of bridges) expect(optionValue(b.service.command ?? dockerfile.cmd, '--config'), b.name).toBe('/etc/sip-xmpp-bridge/bridge.yaml');
  });

  it('copies the health-check script the services run', () => {
    expect(dockerfile.copies).toContain('COPY deploy/bridge/healthcheck.mjs ./healthcheck.mjs');
    expect(existsSync(join(ROOT, 'deploy/bridge/healthcheck.mjs'))).toBe(true);
  });
});

function optionValues(args: readonly string[], option: string): string[] {
  return args.flatMap((a, i) => (a === option && args[i + 1] !== undefined ? [args[i + 1] as string] : []));
}

/** The health-check script run against this process's own sockets (it reads /proc/net of its network namespace). */
describe('deploy/bridge/healthcheck.mjs', () => {
  let server: Server;
  let udp: UdpSocket;
  let client: Socket;
  let tcpPort: number;
  let udpPort: number;

  beforeAll(async () => {
    server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    tcpPort = (server.address() as { port: number }).port;
    udp = createSocket('udp4');
    await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
    udpPort = udp.address().port;
    client = createConnection(tcpPort, '127.0.0.1');
    await new Promise<void>((resolve) => client.once('connect', resolve));
  });

  afterAll(async () => {
    client.destroy();
    udp.close();
    await new Promise((resolve) => server.close(resolve));
  });

  const check = (...args: string[]) =>
    spawnSync(process.execPath, [join(ROOT, 'deploy/bridge/healthcheck.mjs'), ...args], { encoding: 'utf8', timeout: 10_000 });

  it('is healthy when the sockets it names are there', () => {
    const run = check('--listen', `tcp:${tcpPort}`, '--listen', `udp:${udpPort}`, '--connected', String(tcpPort));
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('is unhealthy, naming each missing socket, when they are not', () => {
    // /proc/net lists the whole network namespace: port 0 is the one no bound socket can hold.
    const run = check('--listen', 'udp:0', '--listen', `tcp:${tcpPort}`, '--connected', '0');
    expect(run.status).toBe(1);
    expect(run.stderr).toBe('unhealthy: nothing listens on udp:0; no connection to port 0\n');
  });

  it.each([[[]], [['--listen', 'sctp:5060']], [['--connected']], [['--port', '1']]])('refuses arguments %j with exit 2', (args) => {
    const run = check(...args);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/^healthcheck: /);
  });
});
