#!/usr/bin/env node
/**
 * sip-xmpp-bridge command line: `start --config FILE`, `check-config FILE`,
 * `lookup NUMBER-OR-ADDRESS --config FILE`.
 */
import { Command } from 'commander';
import { createBridge } from './app.js';
import { ConfigError, loadConfig } from './config/load.js';
import { ROLES } from './config/schema.js';
import { BridgeError } from './core/errors.js';
import { BullMQQueue } from './core/queue/bullmq.js';
import { INBOUND_QUEUE, QUEUE_FOR } from './core/router.js';
import { lookupReport, runLookup } from './mapping/identity/lookup.js';
import { HealthServer, readiness } from './telemetry/health.js';
import { metricsHandler } from './telemetry/metrics.js';
import { createLogger } from './telemetry/logger.js';

const program = new Command()
  .name('sip-xmpp-bridge')
  .description('Federation bridge for instant messages between SIP/SIMPLE and XMPP')
  .showHelpAfterError();

program
  .command('check-config')
  .description('validate a configuration file and exit')
  .argument('<file>', 'YAML configuration file')
  .action(async (file: string) => {
    const config = await loadConfig(file);
    process.stdout.write(
      `${file}: valid (role ${config.role}, ${config.queue.backend} queue, component ${config.xmpp.component}, ${config.sip.listen.length} SIP listener(s), ${config.mapping.identities.length} identities, ${config.mapping.sources.length} identity source(s))\n`,
    );
  });

program
  .command('start')
  .description('run the bridge')
  .requiredOption('-c, --config <file>', 'YAML configuration file')
  .option('--role <role>', `what this process does, overriding the file's role: ${ROLES.join(', ')}`)
  .action(async (opts: { config: string; role?: string }) => {
    const config = await loadConfig(opts.config, opts.role === undefined ? {} : { role: opts.role });
    const logger = createLogger({ level: config.log.level });
    const bridge = createBridge(config, logger);
    // Health first, so an orchestrator sees "alive, not ready" while the bridge connects.
    const health = config.health === undefined ? undefined : new HealthServer(config.health.listen, () => readiness(bridge.readinessChecks()), metricsHandler(bridge.metrics));
    let stopping: Promise<void> | undefined;
    const shutdown = (signal: string) => {
      if (stopping) return;
      logger.info({ signal }, 'shutting down');
      stopping = bridge.stop().then(() => health?.stop()).then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'error while stopping');
          process.exit(1);
        },
      );
    };
    process.on('SIGINT', () => shutdown('SIGINT'));
    process.on('SIGTERM', () => shutdown('SIGTERM'));
    // Static identity files are re-read on SIGHUP; traffic keeps flowing on the old table meanwhile.
    process.on('SIGHUP', () => {
      logger.info({ signal: 'SIGHUP' }, 'reloading identity tables');
      bridge.reloadIdentities().catch((err: unknown) => logger.error({ err }, 'identity reload failed'));
    });
    try {
      if (health !== undefined) logger.info({ listening: await health.start() }, 'health endpoints listening (/healthz, /readyz)');
      await bridge.start();
    } catch (err) {
      logger.fatal({ err }, `cannot start: ${(err as Error).message}`);
      await health?.stop();
      process.exitCode = 1;
    }
  });

program
  .command('queues')
  .description('show how many events wait in each queue on Redis, how many are in progress, and how old the oldest is')
  .requiredOption('-c, --config <file>', 'YAML configuration file')
  .action(async (opts: { config: string }) => {
    const config = await loadConfig(opts.config);
    if (config.queue.backend !== 'redis') {
      process.stderr.write('sip-xmpp-bridge: the memory queue lives inside the running process; only a Redis queue can be read from outside\n');
      process.exitCode = 2;
      return;
    }
    const { url, prefix } = config.redis;
    const queue = new BullMQQueue({ ...config.queue, connection: url, prefix });
    try {
      const lines = ['queue      waiting  active  oldest'];
      for (const name of [INBOUND_QUEUE, QUEUE_FOR.sip, QUEUE_FOR.xmpp]) {
        const s = await queue.stats(name);
        const age = s.oldestAgeMs === undefined ? '-' : `${(s.oldestAgeMs / 1000).toFixed(1)} s`;
        lines.push(`${name.padEnd(10)} ${String(s.pending - s.active).padStart(7)} ${String(s.active).padStart(7)}  ${age}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    } catch (err) {
      process.stderr.write(`sip-xmpp-bridge: ${(err as Error).message}\n`);
      process.exitCode = 1;
    } finally {
      await queue.close();
    }
  });

program
  .command('lookup')
  .description('show who a number or address maps to, which identity source answered and how long each took')
  .argument('<number-or-address>', 'e.g. +15551234567, "(555) 123-4567", tel:+1-555-123-4567, sip:alice@corp.example, +15551234567@<component>')
  .requiredOption('-c, --config <file>', 'YAML configuration file')
  .option('--json', 'print the result as JSON')
  .action(async (input: string, opts: { config: string; json?: boolean }) => {
    const config = await loadConfig(opts.config);
    // Source failures are part of the answer; the log only adds detail, on stderr.
    const logger = createLogger({ level: 'warn', destination: process.stderr });
    try {
      const result = await runLookup(config, input, logger);
      process.stdout.write(opts.json === true ? `${JSON.stringify(result, null, 2)}\n` : lookupReport(result));
      process.exitCode = result.identity === undefined ? 1 : 0;
    } catch (err) {
      if (!(err instanceof BridgeError)) throw err;
      process.stderr.write(`sip-xmpp-bridge: ${err.message}\n`);
      process.exitCode = 2;
    }
  });

program.parseAsync(process.argv).catch((err: unknown) => {
  // A BridgeError this far out is a configuration an identity source refused at construction.
  if (err instanceof ConfigError || err instanceof BridgeError) {
    process.stderr.write(`sip-xmpp-bridge: ${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`sip-xmpp-bridge: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
