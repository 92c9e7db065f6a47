/**
 * Health over HTTP for orchestrators and load balancers (issue 7 item 3):
 * - `GET /healthz`: the process is alive and its event loop answers: always 200.
 * - `GET /readyz`: 200 when every check passes, else 503; the body says which check failed and
 *   why, e.g. `{"ready":false,"checks":{"xmpp":{"ok":false,"detail":"component not connected"}}}`.
 * - `GET /metrics`: the Prometheus exposition, when metrics are on (issue 7 item 2).
 * Listens on loopback unless configured otherwise; nothing but these paths is served.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Check {
  readonly ok: boolean;
  readonly detail?: string;
}

export interface Readiness {
  readonly ready: boolean;
  readonly checks: Readonly<Record<string, Check>>;
}

/** Runs named checks at once, each within `timeoutMs` (a check that hangs fails, naming the wait). */
export async function readiness(checks: Record<string, () => Promise<Check> | Check>, timeoutMs = 1000): Promise<Readiness> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, Check]> => {
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<Check>((resolve) => {
        timer = setTimeout(() => resolve({ ok: false, detail: `no answer within ${timeoutMs} ms` }), timeoutMs);
      });
      try {
        return [name, await Promise.race([Promise.resolve().then(check), late])];
      } catch (err) {
        return [name, { ok: false, detail: err instanceof Error ? err.message : String(err) }];
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  const result = Object.fromEntries(entries);
  return { ready: entries.every(([, c]) => c.ok), checks: result };
}

export class HealthServer {
  private server: Server | undefined;

  constructor(
    private readonly listen: { host: string; port: number },
    private readonly ready: () => Promise<Readiness>,
    /** Serves /metrics (see metricsHandler in ./metrics.ts); 404 without it. */
    private readonly metrics?: (req: IncomingMessage, res: ServerResponse) => void,
  ) {}

  async start(): Promise<{ host: string; port: number }> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0];
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (path === '/healthz') {
        res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
        return;
      }
      if (path === '/readyz') {
        this.ready().then(
          (r) => res.writeHead(r.ready ? 200 : 503, { 'content-type': 'application/json' }).end(`${JSON.stringify(r)}\n`),
          (err: unknown) => res.writeHead(503, { 'content-type': 'application/json' }).end(`${JSON.stringify({ ready: false, error: String(err) })}\n`),
        );
        return;
      }
      if (path === '/metrics' && this.metrics !== undefined) {
        this.metrics(req, res);
        return;
      }
      res.writeHead(404).end();
    });
    // Slow or idle clients must not hold sockets: the answers are tiny.
    server.requestTimeout = 5000;
    server.headersTimeout = 5000;
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.listen.port, this.listen.host, () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    return { host: address.address, port: address.port };
  }

  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server === undefined) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
