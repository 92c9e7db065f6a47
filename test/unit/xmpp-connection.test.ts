import { describe, expect, it } from 'vitest';
import { nextBackoff, offlineError, serverDomain } from '../../src/adapters/xmpp/connection.js';

describe('nextBackoff', () => {
  it('doubles from the initial delay up to the maximum, then stays there', () => {
    const delays = [100];
    for (let i = 0; i < 6; i++) delays.push(nextBackoff(delays.at(-1)!, 1000));
    expect(delays).toEqual([100, 200, 400, 800, 1000, 1000, 1000]);
  });
});

describe('serverDomain', () => {
  it.each([
    ['sip.example.com', 'example.com'],
    ['sip.xmpp.test', 'xmpp.test'],
    ['gw.im.corp.example', 'im.corp.example'],
    ['example.com', 'example.com'],
    ['localhost', 'localhost'],
  ])('given component %s, pings %s', (component, server) => {
    expect(serverDomain(component)).toBe(server);
  });
});

describe('offlineError', () => {
  it('is retryable, coded XMPP_OFFLINE, with a wait-type condition', () => {
    expect(offlineError('x')).toMatchObject({ code: 'XMPP_OFFLINE', condition: 'remote-server-timeout', retryable: true });
  });
});
