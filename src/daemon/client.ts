import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ClientConfig } from '../config/schema.js';
import { EscaleError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Backend } from '../relay/backend.js';
import { openBackend, type RelayTarget } from '../relay/registry.js';
import { PlaceholderRelay } from '../relay/protocol/placeholder-relay.js';
import { withLimit } from '../relay/wrap/limit.js';
import { withRetry } from '../relay/wrap/retry.js';
import { AccessStore } from '../local/access.js';
import { ChecksumCache } from '../local/checksum-cache.js';
import { FileFilter } from '../local/filter.js';
import { cleanStaleTemporaries } from '../local/local-writer.js';
import { PlaceholderEngine, type CipherPort } from '../sync/engine.js';
import type { Action } from '../sync/model.js';
import { planPlaceholderRound } from '../sync/planner.js';
import { LocalRepository } from './local-repository.js';
import type { RoundRunner } from './client-loop.js';

/** A client ready to run rounds, and how to release what it holds. */
export interface OpenedClient {
  readonly runner: RoundRunner;
  readonly relayId: string;
  close(): Promise<void>;
}

/** What opening a client may use besides its configuration. */
export interface ClientContext {
  readonly logger: Logger;
  readonly now?: () => number;
  readonly dryRun?: boolean;
  readonly onPlan?: (action: Action) => void;
  /** Builds the cipher of the section (null: no encryption). */
  readonly cipher?: (config: ClientConfig) => Promise<CipherPort | null>;
  readonly signal?: AbortSignal;
}

/** Maps a configuration section to the backend's view of the relay. */
export function relayTargetOf(config: ClientConfig): RelayTarget {
  return {
    protocol: config.protocol,
    directory: config.directory,
    options: config.extra,
    ...(config.host === undefined ? {} : { host: config.host }),
    ...(config.port === undefined ? {} : { port: config.port }),
    ...(config.user === undefined ? {} : { user: config.user }),
    ...(config.password === undefined ? {} : { password: config.password }),
    ...(config.verifySsl === undefined ? {} : { verifySsl: config.verifySsl }),
    ...(config.sslVersion === undefined ? {} : { sslVersion: config.sslVersion }),
    ...(config.certificate === undefined ? {} : { certificate: config.certificate }),
    ...(config.keyfile === undefined ? {} : { keyfile: config.keyfile }),
  };
}

/** Path of one of the section's persistent stores (`am` access modifiers, `cc` checksum cache), as 0.7 names them. */
export function persistentFile(config: ClientConfig, prefix: 'am' | 'cc'): string {
  return join(config.dataDir, `${prefix}${createHash('sha224').update(config.section, 'utf8').digest('hex')}`);
}

/** Opens the relay, the local stores and the engine of one client section. */
export async function openClient(config: ClientConfig, context: ClientContext): Promise<OpenedClient> {
  const { logger } = context;
  const now = context.now ?? Date.now;
  if (config.index.enabled) {
    throw new EscaleError('Unsupported', `[${config.section}] index relays (index = ${config.index.pages === 'topdir' ? `topdir:${config.index.depth}` : '1'}) are not available in this build yet; remove the 'index' key to use the placeholder protocol`);
  }
  const cipher = context.cipher ? await context.cipher(config) : null;
  if (config.encryption.algorithm !== null && config.encryption.algorithm !== 'plain' && cipher === null) {
    throw new EscaleError('Unsupported', `[${config.section}] encryption '${config.encryption.algorithm}' is not available in this build yet`);
  }
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const checksumFile = config.checksumCache === false ? null : config.checksumCache === true ? persistentFile(config, 'cc') : config.checksumCache;
  const checksums = await ChecksumCache.open(checksumFile, config.checksumAlgorithm === null ? {} : { algorithm: config.checksumAlgorithm });
  const access = await AccessStore.open(persistentFile(config, 'am'));
  const filter = new FileFilter(config.filters);
  if (!context.dryRun) {
    const cleaned = await cleanStaleTemporaries(config.localPath).catch(() => 0);
    if (cleaned > 0) logger.info(`removed ${cleaned} temporary file(s) left by an interrupted download`);
  }
  logger.debug(`connecting to '${config.protocol}://${config.host ?? ''}/${config.directory}'`);
  let backend: Backend;
  try {
    const raw = await openBackend(relayTargetOf(config), { logger, ...(context.signal ? { signal: context.signal } : {}) });
    backend = withRetry(withLimit(raw), {
      onRetry: ({ method, path, attempt, error }) => logger.debug(`relay ${method} '${path}' failed (${error.message}); retry ${attempt}`),
    });
  } catch (error) {
    await Promise.allSettled([checksums.close(), access.close()]);
    throw error;
  }
  logger.debug('connected');
  const relay = new PlaceholderRelay(backend, {
    client: config.clientName,
    lockTimeoutSec: config.lockTimeoutSec,
    now,
    logger,
    ...(config.pullerCount === undefined ? {} : { pullerCount: config.pullerCount }),
    ...(config.legacyTimestampFormat === undefined ? {} : { legacyTimestampFormat: config.legacyTimestampFormat }),
  });
  const local = new LocalRepository(config.localPath, filter, checksums, access, config.checksumAlgorithm, logger);
  const engine = new PlaceholderEngine(relay, local, {
    client: config.clientName,
    mode: config.mode,
    ...(config.pullerCount === undefined ? {} : { pullerCount: config.pullerCount }),
    useMtime: config.useMtime,
    useChecksum: config.checksumAlgorithm !== null,
    ...(config.diskQuotaBytes === undefined ? {} : { quotaBytes: config.diskQuotaBytes }),
    cipher,
    acceptsRemote: (path) => filter.acceptsFile(path),
    plan: planPlaceholderRound,
    logger,
    ...(context.dryRun ? { dryRun: true } : {}),
    ...(context.onPlan ? { onPlan: context.onPlan } : {}),
  });
  return {
    runner: engine,
    relayId: backend.id,
    close: async () => {
      await Promise.allSettled([checksums.flush(), access.flush()]);
      await Promise.allSettled([backend.close(), checksums.close(), access.close()]);
    },
  };
}
