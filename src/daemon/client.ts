import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { LoadedConfig } from '../config/load.js';
import type { ClientConfig } from '../config/schema.js';
import { asBoolean } from '../config/values.js';
import { EscaleError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { RefusedNames } from '../core/refused-names.js';
import type { RelayPath, RelPath } from '../core/relpath.js';
import type { Backend } from '../relay/backend.js';
import type { RelayTarget } from '../relay/backends/descriptor.js';
import { openBackend } from '../relay/registry.js';
import { IndexRelay } from '../relay/protocol/index-relay.js';
import { placeholderNameProblem } from '../relay/protocol/layout.js';
import { indexResourceProblem, type PageScheme } from '../relay/protocol/pages.js';
import { PlaceholderRelay } from '../relay/protocol/placeholder-relay.js';
import { withLimit } from '../relay/wrap/limit.js';
import { withRetry } from '../relay/wrap/retry.js';
import { withRelayScope } from '../relay/wrap/scope.js';
import { withStats, type BackendCounters } from '../relay/wrap/stats.js';
import { AccessStore } from '../local/access.js';
import { BaseStore } from '../local/base-store.js';
import { ChecksumCache } from '../local/checksum-cache.js';
import { UpdateFailureLog } from '../local/update-failures.js';
import { FileFilter } from '../local/filter.js';
import { ownFilesInside, type OwnFile } from '../local/own-files.js';
import { cleanStaleTemporaries } from '../local/local-writer.js';
import { PlaceholderEngine, type CipherPort, type LocalPort, type RoundPhase } from '../sync/engine.js';
import { FailureTracker, type FailureEvent } from '../sync/failure-tracker.js';
import { ResendLog } from '../sync/resend-log.js';
import { IndexEngine } from '../sync/index-engine.js';
import type { Action } from '../sync/model.js';
import { planPlaceholderRound } from '../sync/planner.js';
import { LocalRepository, type LocalWatchState } from './local-repository.js';
import { PersistentMap } from '../local/persistent-map.js';
import { PLACEHOLDER_CACHE_CODEC, PLACEHOLDER_CACHE_VERSION, type CachedRecord, type PlaceholderCache } from '../relay/protocol/placeholder-cache.js';
import { ReportOnce } from '../core/report-once.js';
import { releaseInterned } from '../core/intern.js';
import { Wakeup } from './wakeup.js';
import { controlSocketPath } from './control-socket.js';
import { pidFilePath } from './pidfile.js';
import type { RoundRunner } from './client-loop.js';

/** Most transfers one placeholder client runs at once (fewer when the relay takes fewer connections). */
const MAX_TRANSFERS = 16;

/** A client ready to run rounds, and how to release what it holds. */
export interface OpenedClient {
  readonly runner: RoundRunner;
  readonly relayId: string;
  /** The client's per-file, per-folder and per-page failures (read by the status model). */
  readonly failures: FailureTracker;
  /** Woken when settled local changes wait for a round (a running client that follows file-system events). */
  readonly wakeup?: Wakeup;
  /** How the local folder is followed now (events or full scans, and why), for the status. */
  readonly localWatch?: () => LocalWatchState;
  close(): Promise<void>;
}

/** What opening a client may use besides its configuration. */
export interface ClientContext {
  readonly logger: Logger;
  readonly now?: () => number;
  readonly dryRun?: boolean;
  /** One round only (`--once`): a page locked by another client is postponed at once, not waited for. */
  readonly once?: boolean;
  readonly onPlan?: (action: Action) => void;
  /** Builds the cipher of the section (null: no encryption). */
  readonly cipher?: (config: ClientConfig) => Promise<CipherPort | null>;
  readonly signal?: AbortSignal;
  /** Opens the relay instead of the backend registry (tests inject a shared, faulty or hostile backend). */
  readonly openRelay?: (target: RelayTarget) => Promise<Backend>;
  /** Counts every relay call (retries included) and the bytes moved; off when undefined. */
  readonly relayCounters?: BackendCounters;
  /** escale's own files besides the section's stores (logs, PID file, other sections' stores): never synced. */
  readonly ownFiles?: readonly OwnFile[];
  /** The run promises to write nothing on the relay (`--dry-run`, `list-pending`): not even a clock probe. */
  readonly readOnly?: boolean;
  /** Told about every failure of a file, folder or page (the status model's recent errors). */
  readonly onFailure?: (event: FailureEvent) => void;
  /** Told when a round enters a phase (the status model's state). */
  readonly onPhase?: (phase: RoundPhase) => void;
  /**
   * A running client (the daemon): follow local changes through file-system events (unless the
   * section says `watch = no`), so that rounds look only at what changed, and wake the loop on them.
   */
  readonly watch?: boolean;
  /** Wraps the local repository (tests inject local faults, as `openRelay` does for the relay). */
  readonly wrapLocal?: (local: LocalPort) => LocalPort;
}

/** Maps a configuration section to the backend's view of the relay. */
export function relayTargetOf(config: ClientConfig): RelayTarget {
  return {
    protocol: config.protocol,
    directory: config.directory,
    options: config.extra,
    ...(config.host === undefined ? {} : { host: config.host }),
    ...(config.port === undefined ? {} : { port: config.port }),
    ...(config.scheme === undefined ? {} : { scheme: config.scheme }),
    ...(config.user === undefined ? {} : { user: config.user }),
    ...(config.password === undefined ? {} : { password: config.password }),
    ...(config.verifySsl === undefined ? {} : { verifySsl: config.verifySsl }),
    ...(config.sslVersion === undefined ? {} : { sslVersion: config.sslVersion }),
    ...(config.certificate === undefined ? {} : { certificate: config.certificate }),
    ...(config.keyfile === undefined ? {} : { keyfile: config.keyfile }),
  };
}

/**
 * Path of one of the section's persistent stores, named as 0.7 names its own: `am` access modifiers,
 * `cc` checksum cache, and (escale TS only) `uf` the failed reads of unreadable index-relay updates
 * `lr` the record that the local root was initialised (see LocalRootGuard), `rs` the re-sends
 * this client asked for (versions taken by a puller that does not record itself), `bs` the
 * base state (what this client last agreed on with the relay, per path), and `pc` the placeholders
 * read from the relay (by listing mtime and size, so that a restart reads only what changed).
 */
export function persistentFile(config: ClientConfig, prefix: 'am' | 'cc' | 'uf' | 'lr' | 'rs' | 'bs' | 'pc'): string {
  return join(config.dataDir, `${prefix}${createHash('sha224').update(config.section, 'utf8').digest('hex')}`);
}

/**
 * The file of the section's persistent checksum cache (`checksum cache`: `cc<sha224(section)>` in
 * the data folder by default, or the path given), or null when the cache lives in memory only.
 */
export function checksumCacheFile(config: ClientConfig): string | null {
  return config.checksumCache === false ? null : config.checksumCache === true ? persistentFile(config, 'cc') : config.checksumCache;
}

/**
 * The stores of one section: its data folder, checksum cache, access store, base state,
 * update-failure and re-send logs (with the `.foreign` copy a store sets aside when it finds a file
 * it cannot read).
 */
export function sectionStores(config: ClientConfig): OwnFile[] {
  const cache = checksumCacheFile(config);
  const stores: OwnFile[] = [
    { path: persistentFile(config, 'am'), what: 'access store' },
    { path: persistentFile(config, 'uf'), what: 'update failure log', ...(config.index.enabled ? {} : { optional: true }) },
    { path: persistentFile(config, 'rs'), what: 're-send log' },
    { path: persistentFile(config, 'lr'), what: 'local root record', optional: true },
    { path: persistentFile(config, 'bs'), what: 'base state', optional: true },
    { path: persistentFile(config, 'pc'), what: 'placeholder cache', optional: true },
    ...(cache === null ? [] : [{ path: cache, what: 'checksum cache' }]),
  ];
  const setAside = stores.map((store) => ({ path: `${store.path}.foreign`, what: `${store.what} (set aside)`, optional: true }));
  return [{ path: config.dataDir, what: 'data folder' }, ...stores, ...setAside];
}

/**
 * Every file and folder escale writes for a configuration: the stores of each section (a section's
 * local root may hold another section's stores), the log file and its rotated copies, the PID file.
 */
export function ownFilesOf(config: LoadedConfig): OwnFile[] {
  const { logFile, logRotate } = config.global;
  return [
    ...config.clients.flatMap((client) => sectionStores(client)),
    { path: logFile, what: 'log file' },
    ...Array.from({ length: logRotate }, (_, i) => ({ path: `${logFile}.${i + 1}`, what: 'rotated log file', optional: true })),
    { path: pidFilePath(config.configDir, config.baseName), what: 'PID file' },
    { path: controlSocketPath(pidFilePath(config.configDir, config.baseName)), what: 'control socket', optional: true },
  ];
}

/**
 * What the section's base state is relative to: a base agreed with another relay, client name,
 * protocol or checksum algorithm is no base for this one (`BaseStore` then starts empty).
 */
export function baseContext(config: ClientConfig): string {
  return JSON.stringify({
    client: config.clientName,
    protocol: config.protocol,
    host: config.host ?? '',
    port: config.port ?? 0,
    user: config.user ?? '',
    directory: config.directory,
    index: config.index.enabled,
    checksum: config.checksumAlgorithm,
  });
}

/** Opens the section's base state (`bs<sha224(section)>` in the data folder); a dry run never writes it. */
export async function openBaseStore(config: ClientConfig, dryRun: boolean): Promise<BaseStore> {
  return BaseStore.open(persistentFile(config, 'bs'), { context: baseContext(config), readOnly: dryRun });
}

/** The local side of a client: the repository the engine scans, hashes and writes, over the section's stores. */
export interface OpenedLocal {
  readonly local: LocalRepository;
  readonly filter: FileFilter;
  /** Reports refused names once; the client's relay protocol shares it. */
  readonly refused: RefusedNames;
  /** Flushes and closes the stores (errors are ignored: they only cost re-hashing). */
  close(): Promise<void>;
}

/**
 * Opens the checksum cache and access store of a section and the local repository over them, as the
 * daemon uses them. `ownFiles` (default: the section's stores) are never scanned nor written.
 */
export async function openLocal(config: ClientConfig, logger: Logger, ownFiles: readonly OwnFile[] = sectionStores(config)): Promise<OpenedLocal> {
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
  const checksums = await ChecksumCache.open(checksumCacheFile(config), config.checksumAlgorithm === null ? {} : { algorithm: config.checksumAlgorithm });
  let access: AccessStore;
  try {
    access = await AccessStore.open(persistentFile(config, 'am'));
  } catch (error) {
    // why: the error being thrown says why the section cannot start; a failed close on the way out adds nothing.
    await checksums.close().catch(() => undefined);
    throw error;
  }
  const filter = new FileFilter(config.filters);
  const refused = new RefusedNames(logger);
  const inside = ownFilesInside(config.localPath, ownFiles);
  const local = new LocalRepository(config.localPath, filter, checksums, access, config.checksumAlgorithm, logger, {
    refused,
    relayNameProblem: relayNameProblemOf(config),
    ownFiles: inside.map((file) => file.path),
  });
  return {
    local,
    filter,
    refused,
    close: async () => {
      local.close();
      await Promise.allSettled([checksums.flush(), access.flush()]);
      await Promise.allSettled([checksums.close(), access.close()]);
    },
  };
}

/** Why the section's relay protocol cannot carry a resource name that is otherwise safe, or undefined. */
function relayNameProblemOf(config: ClientConfig): (path: RelayPath) => string | undefined {
  if (!config.index.enabled) return placeholderNameProblem;
  const scheme = pageSchemeFor(config);
  return (path) => indexResourceProblem(path, scheme);
}

/** Opens the relay backend of a section with the daemon's wrappers (connection limit, retries, optional counters). */
export async function openRelayBackend(config: ClientConfig, context: Pick<ClientContext, 'logger' | 'signal' | 'openRelay' | 'relayCounters' | 'readOnly'>): Promise<Backend> {
  const { logger } = context;
  logger.debug(`connecting to '${config.protocol}://${config.host ?? ''}/${config.directory}'`);
  const target = relayTargetOf(config);
  const raw = context.openRelay ? await context.openRelay(target) : await openBackend(target, { logger, ...(context.signal ? { signal: context.signal } : {}), ...(context.readOnly ? { readOnly: true } : {}) });
  logger.debug('connected');
  if (context.readOnly) raw.clock.forbidProbes();
  const retried = withRetry(withLimit(context.relayCounters ? withStats(raw, context.relayCounters) : raw), {
    onRetry: ({ method, path, attempt, error }) => logger.debug(`relay ${method} '${path}' failed (${error.message}); retry ${attempt}`),
  });
  // why: outermost, so that an error left after the retries is known to come from the relay (see failsWholeRelay).
  return withRelayScope(retried);
}

/** How the section spreads files over index pages (`index = 1`: one page, `topdir[:N]`: one per folder prefix). */
export function pageSchemeFor(config: ClientConfig): PageScheme {
  if (!config.index.enabled) throw new EscaleError('Internal', `[${config.section}] does not use an index relay`);
  return config.index.pages === 'topdir' ? { kind: 'topdir', depth: config.index.depth } : { kind: 'single' };
}

/**
 * Opens the section's placeholder cache (`pc<sha224(section)>` in the data folder), valid only for
 * the relay, client and record settings it was written with; a dry run never writes it.
 */
export async function openPlaceholderCache(config: ClientConfig, dryRun: boolean): Promise<PersistentMap<CachedRecord>> {
  return PersistentMap.open(persistentFile(config, 'pc'), {
    kind: 'escale-placeholder-cache',
    version: PLACEHOLDER_CACHE_VERSION,
    context: JSON.stringify([baseContext(config), config.legacyTimestampFormat ?? null]),
    codec: PLACEHOLDER_CACHE_CODEC,
    readOnly: dryRun,
  });
}

/** The placeholder protocol over a section's relay (relay-format.md P3), with the daemon's settings (and the local side's name checks and the placeholder cache, when given). */
export function placeholderRelayFor(config: ClientConfig, backend: Backend, logger: Logger, now: () => number = Date.now, local?: OpenedLocal, cache?: PlaceholderCache): PlaceholderRelay {
  return new PlaceholderRelay(backend, {
    ...(cache === undefined ? {} : { cache }),
    client: config.clientName,
    lockTimeoutSec: config.lockTimeoutSec,
    now,
    logger,
    ...(local === undefined ? {} : { refusedNames: local.refused, localNameProblem: (path: RelPath) => local.local.nameProblem(path) }),
    ...(config.pullerCount === undefined ? {} : { pullerCount: config.pullerCount }),
    ...(config.legacyTimestampFormat === undefined ? {} : { legacyTimestampFormat: config.legacyTimestampFormat }),
  });
}

/** The index protocol over a section's relay, acting as `client` (default: the section's client name), reporting refused names through `refused` when given. */
export function indexRelayFor(config: ClientConfig, backend: Backend, logger: Logger, now: () => number = Date.now, client: string = config.clientName, refused?: RefusedNames): IndexRelay {
  return new IndexRelay(backend, { client, lockTimeoutSec: config.lockTimeoutSec, now, logger, ...(refused === undefined ? {} : { refusedNames: refused }) });
}

/** Opens the relay, the local stores and the engine of one client section. */
export async function openClient(config: ClientConfig, context: ClientContext): Promise<OpenedClient> {
  try {
    return await openClientNow(config, context);
  } finally {
    // why: the stores are loaded: the strings they share stay shared, the pool goes.
    releaseInterned();
  }
}

async function openClientNow(config: ClientConfig, context: ClientContext): Promise<OpenedClient> {
  const { logger } = context;
  const now = context.now ?? Date.now;
  const cipher = context.cipher ? await context.cipher(config) : null;
  if (config.encryption.algorithm !== null && config.encryption.algorithm !== 'plain' && cipher === null) {
    throw new EscaleError('Unsupported', `[${config.section}] encryption '${config.encryption.algorithm}' is not available in this build yet`);
  }
  // why: the configuration's own files include this section's stores; each is named once.
  const ownFiles = [...new Map([...sectionStores(config), ...(context.ownFiles ?? [])].map((file) => [file.path, file])).values()];
  const opened = await openLocal(config, logger, ownFiles);
  const { filter } = opened;
  const local = context.wrapLocal ? context.wrapLocal(opened.local) : opened.local;
  const failures = new FailureTracker({ logger, now, ...(context.onFailure ? { onFailure: context.onFailure } : {}) });
  const observers = { failures, ...(context.onPhase ? { onPhase: context.onPhase } : {}) };
  for (const file of ownFilesInside(config.localPath, ownFiles)) {
    if (file.optional === true && !existsSync(file.path)) continue;
    logger.warning(`escale's ${file.what} '${file.path}' is inside the local folder '${config.localPath}'; it is never synced (move it out with 'cache dir', 'checksum cache' or 'log file')`);
  }
  if (!context.dryRun) {
    const cleaned = await cleanStaleTemporaries(config.localPath).catch((error: unknown) => {
      logger.warning(`cannot remove the temporary files left by interrupted downloads in '${config.localPath}': ${(error as Error).message}`);
      return 0;
    });
    if (cleaned > 0) logger.info(`removed ${cleaned} temporary file(s) left by an interrupted download`);
  }
  let backend: Backend;
  try {
    backend = await openRelayBackend(config, { ...context, ...(context.dryRun ? { readOnly: true } : {}) });
  } catch (error) {
    await opened.close();
    throw error;
  }
  let resends: ResendLog;
  let base: BaseStore;
  try {
    // why: kept beside the checksum cache, so that asking for a re-send stops after a bounded number of times, restarts included.
    resends = await ResendLog.open(context.dryRun ? null : persistentFile(config, 'rs'));
  } catch (error) {
    await Promise.allSettled([backend.close(), opened.close()]);
    throw error;
  }
  try {
    base = await openBaseStore(config, context.dryRun === true);
  } catch (error) {
    await Promise.allSettled([backend.close(), opened.close(), resends.close()]);
    throw error;
  }
  const closeAll = async (): Promise<void> => {
    await Promise.allSettled([backend.close(), opened.close(), Promise.resolve().then(() => base.close())]);
    await resends.close().catch((error: unknown) => logger.warning(`cannot close the re-send log: ${(error as Error).message}`));
  };
  // why: a running client follows local changes through events; a single round (--once, dry runs) scans once.
  const live = context.watch === true && context.once !== true && context.dryRun !== true && context.readOnly !== true;
  const wakeup = live ? new Wakeup() : undefined;
  if (wakeup !== undefined) opened.local.watch(config.watch, { fullScanIntervalMs: config.fullScanIntervalSec * 1000, onChange: () => wakeup.notify() });
  const watching = wakeup === undefined ? {} : { wakeup, localWatch: () => opened.local.watchStatus };
  if (config.index.enabled) {
    let updateFailures: UpdateFailureLog;
    try {
      // why: kept beside the checksum cache, so that an unreadable update is given up after a bounded number of tries, restarts included.
      updateFailures = await UpdateFailureLog.open(context.dryRun ? null : persistentFile(config, 'uf'));
    } catch (error) {
      await closeAll();
      throw error;
    }
    return {
      runner: openIndexEngine(config, backend, opened, local, cipher, context, now, updateFailures, observers, resends, base),
      relayId: backend.id,
      failures,
      ...watching,
      close: async () => {
        await closeAll();
        await updateFailures.close().catch((error: unknown) => logger.warning(`cannot close the update failure log: ${(error as Error).message}`));
      },
    };
  }
  let cache: PersistentMap<CachedRecord>;
  try {
    cache = await openPlaceholderCache(config, context.dryRun === true);
  } catch (error) {
    await closeAll();
    throw error;
  }
  const relay = placeholderRelayFor(config, backend, logger, now, opened, cache);
  const engine = new PlaceholderEngine(relay, local, {
    client: config.clientName,
    // why: each transfer is a chain of small relay and disk calls, mostly waiting (a round trip, a
    // flush to disk); as many in flight as the relay takes connections hide that latency.
    concurrency: Math.min(MAX_TRANSFERS, backend.features.maxConnections),
    mode: config.mode,
    ...(config.pullerCount === undefined ? {} : { pullerCount: config.pullerCount }),
    useMtime: config.useMtime,
    useChecksum: config.checksumAlgorithm !== null,
    ...(config.checksumAlgorithm === null ? {} : { checksumAlgorithm: config.checksumAlgorithm }),
    base,
    ...(config.diskQuotaBytes === undefined ? {} : { quotaBytes: config.diskQuotaBytes }),
    cipher,
    acceptsRemote: (path) => filter.acceptsFile(path) && !opened.local.isOwnFile(path),
    plan: planPlaceholderRound,
    logger,
    resends,
    ...(context.dryRun ? { dryRun: true } : {}),
    ...(context.onPlan ? { onPlan: context.onPlan } : {}),
    ...observers,
  });
  const cacheReports = new ReportOnce();
  // why: once per round, so that a restart finds what this run read (a failure only costs reading again).
  const saveCache = (): void => {
    try {
      cache.flush();
      cacheReports.clear('cache');
    } catch (error) {
      if (cacheReports.isNew('cache', (error as Error).message)) logger.warning(`cannot save the placeholder cache: ${(error as Error).message}; a restart reads the placeholders again`);
    }
  };
  return {
    runner: {
      round: async (signal, options) => {
        try {
          return await engine.round(signal, options);
        } finally {
          saveCache();
        }
      },
      requestRepair: () => engine.requestRepair(),
      relayChanged: (signal) => engine.relayChanged(signal),
    },
    relayId: backend.id,
    failures,
    ...watching,
    close: async () => {
      await closeAll();
      try {
        cache.close();
      } catch (error) {
        logger.warning(`cannot save the placeholder cache: ${(error as Error).message}`);
      }
    },
  };
}

/** The index-relay engine of a section with `index` on (relay-format.md P4). */
function openIndexEngine(
  config: ClientConfig,
  backend: Backend,
  opened: OpenedLocal,
  local: LocalPort,
  cipher: CipherPort | null,
  context: ClientContext,
  now: () => number,
  updateFailures: UpdateFailureLog,
  observers: { failures: FailureTracker; onPhase?: (phase: RoundPhase) => void },
  resends: ResendLog,
  base: BaseStore,
): IndexEngine {
  const { logger } = context;
  const { filter } = opened;
  if (!config.index.enabled) throw new EscaleError('Internal', 'openIndexEngine needs index = 1 or topdir');
  const relay = indexRelayFor(config, backend, logger, now, config.clientName, opened.refused);
  return new IndexEngine(relay, local, {
    client: config.clientName,
    mode: config.mode,
    scheme: pageSchemeFor(config),
    ...(config.pullerCount === undefined ? {} : { pullerCount: config.pullerCount }),
    useMtime: config.useMtime,
    checksumAlgorithm: config.checksumAlgorithm,
    maxPageSizeBytes: config.maxPageSizeBytes,
    ...(asBoolean(config.extra['single stream archives'] ?? '') ? { singleStreamArchives: true } : {}),
    pullOverwrite: config.pullOverwrite,
    allowPageDeletion: config.allowPageDeletion,
    ...(config.priority === undefined ? {} : { priority: config.priority }),
    uploadMaxWaitSec: config.uploadMaxWaitSec,
    lockTimeoutSec: config.lockTimeoutSec,
    cipher,
    acceptsRemote: (path) => filter.acceptsFile(path) && !opened.local.isOwnFile(path),
    logger,
    // why: extraction folders sit in the local root (hidden by the dot), on the same file system as the targets.
    scratchDir: config.localPath,
    updateFailures,
    resends,
    base,
    now,
    ...(context.dryRun ? { dryRun: true } : {}),
    ...(context.once ? { lockWaitMs: 0 } : {}),
    ...(context.onPlan ? { onPlan: context.onPlan } : {}),
    ...observers,
  });
}
