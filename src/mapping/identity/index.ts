/**
 * Builds the identity chain the configuration describes (issue 3): `mapping.identities` as an
 * implicit first static source, then `mapping.sources` in their order.
 */
import type { MappingConfig } from '../../config/schema.js';
import type { Logger } from '../../telemetry/logger.js';
import type { IdentitySource } from '../identity-source.js';
import { IdentityChain, type SourceAttempt } from './chain.js';
import { EnumSource } from './enum.js';
import { LdapSource } from './ldap.js';
import { StaticSource } from './static.js';

export { IdentityChain, type IdentityQuery, type LookupTrace, type SourceAttempt, type SourceHealth } from './chain.js';
export { StaticSource } from './static.js';

export interface IdentitySetup {
  readonly chain: IdentityChain;
  /** Sources that can re-read their data (static files), for SIGHUP. */
  readonly reloadable: readonly StaticSource[];
}

/**
 * Constructs every source (no I/O: files are read and directories connected at chain.start()).
 * @throws BridgeError for a source configuration that cannot be used (e.g. a bad inline row).
 */
export function buildIdentityChain(mapping: Readonly<MappingConfig>, logger: Logger, onAttempt?: (attempt: SourceAttempt) => void): IdentitySetup {
  const sources: IdentitySource[] = [];
  const reloadable: StaticSource[] = [];
  const { defaultRegion } = mapping;
  if (mapping.identities.length > 0 || mapping.sources.length === 0) {
    sources.push(new StaticSource({ name: 'config', rows: mapping.identities, defaultRegion, logger }));
  }
  for (const source of mapping.sources) {
    const log = logger.child({ source: source.name ?? source.type });
    switch (source.type) {
      case 'static': {
        const s = new StaticSource({ name: source.name ?? 'static', file: source.file, format: source.format, defaultRegion, logger: log });
        sources.push(s);
        reloadable.push(s);
        break;
      }
      case 'enum':
        sources.push(new EnumSource(source, log));
        break;
      case 'ldap':
        sources.push(new LdapSource({ ...source, ...(defaultRegion === undefined ? {} : { defaultRegion }) }, log));
        break;
    }
  }
  const chain = new IdentityChain({
    sources,
    logger,
    sourceTimeoutMs: mapping.sourceTimeoutMs,
    sourceRetryMs: mapping.sourceRetryMs,
    cache: mapping.cache,
    ...(onAttempt === undefined ? {} : { onAttempt }),
  });
  return { chain, reloadable };
}

/** Re-reads every reloadable source and forgets cached answers once any table changed. */
export async function reloadIdentities(setup: IdentitySetup): Promise<void> {
  const swapped = await Promise.all(setup.reloadable.map((s) => s.reload()));
  if (swapped.some(Boolean)) setup.chain.clearCache();
}
