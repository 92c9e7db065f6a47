/**
 * `sip-xmpp-bridge queues` against a private redis-server: what waits in each queue and how
 * old the oldest is, read from outside the running processes.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { BullMQQueue } from '../../src/core/queue/bullmq.js';
import { cli } from '../support/cli.js';
import { startRedis, type RedisServer } from '../support/redis.js';

let redis: RedisServer;
let dir: string;

beforeAll(async () => {
  redis = await startRedis();
  dir = await mkdtemp(join(tmpdir(), 'bridge-cli-queues-'));
});

afterAll(async () => {
  await redis?.close();
});

async function configFile(name: string, queue: object, prefix = 'unused'): Promise<string> {
  const path = join(dir, name);
  await writeFile(
    path,
    stringify({
      role: 'router',
      xmpp: { component: 'sip.xmpp.test' },
      mapping: { xmppDomains: ['xmpp.test'] },
      queue,
      redis: { url: redis.url, prefix },
    }),
  );
  return path;
}

describe('sip-xmpp-bridge queues', () => {
  it('shows the events waiting in each queue and the age of the oldest', async () => {
    const prefix = redis.prefix();
    const queue = new BullMQQueue({ connection: redis.url, prefix, maxAttempts: 3, backoffMs: 10, maxBackoffMs: 100, maxPending: 100 });
    for (let i = 0; i < 3; i++) await queue.enqueue('to-sip', { n: i }, { orderingKey: `k${i}` });
    await queue.enqueue('inbound', { n: 9 });
    await queue.close();

    const run = await cli(['queues', '-c', await configFile('redis.yaml', { backend: 'redis' }, prefix)]);

    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^to-sip\s+3\s+0\s+\d+\.\d s$/m);
    expect(run.stdout).toMatch(/^inbound\s+1\s+0\s+\d+\.\d s$/m);
    expect(run.stdout).toMatch(/^to-xmpp\s+0\s+0\s+-$/m);
  });

  it('says the memory queue cannot be read from outside', async () => {
    const path = join(dir, 'memory.yaml');
    await writeFile(path, stringify({ xmpp: { component: 'sip.xmpp.test', secret: 's' }, mapping: { xmppDomains: ['xmpp.test'] } }));
    const run = await cli(['queues', '-c', path]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('only a Redis queue can be read from outside');
  });
});
