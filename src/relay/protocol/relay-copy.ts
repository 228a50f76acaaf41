import { setTimeout as sleepFor } from 'node:timers/promises';
import { EscaleError, hasCode, throwIfAborted } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { ROOT, type RelPath } from '../../core/relpath.js';
import { readSmall, type Backend } from '../backend.js';
import { deleteIfExists, IndexRelay, type PageFiles } from './index-relay.js';
import { classifyRelayName, lockPathOf, placeholderPathOf } from './layout.js';
import { formatLock, MAX_LOCK_BYTES, parseLock } from './lock.js';
import { parsePageFileName, persistentIndexName, updateDataName, updateIndexName } from './pages.js';

/** Settings of an inter-relay copy (cli-and-config §9.3). */
export interface RelayCopyOptions {
  /** Owner written into every lock this copy takes, on both relays (e.g. `<client>-migrate`). */
  readonly owner: string;
  /** `--fast`: take no lock at all (only safe when every client is stopped). */
  readonly fast: boolean;
  /** How long to wait, in total, for resources or pages locked by another client (ms). */
  readonly lockWaitMs: number;
  /** Pause between two looks at a foreign lock (ms). */
  readonly pollMs: number;
  /** `lock timeout` of the section in seconds (index pages: a stale foreign lock is broken as clients do). */
  readonly lockTimeoutSec: number | null;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** Told after each file (copied or failed). */
  readonly onProgress?: (progress: CopyProgress) => void;
  readonly signal?: AbortSignal;
}

/** Where a copy stands. */
export interface CopyProgress {
  readonly done: number;
  /** Files known so far (a resource whose files changed under its lock may add or remove some). */
  readonly total: number;
  readonly path: RelPath;
}

/** A file (or a whole resource or page) that was not copied, and why. */
export interface CopyFailure {
  readonly path: string;
  readonly reason: string;
}

/** What a copy did. */
export interface CopyReport {
  readonly copied: RelPath[];
  readonly failed: CopyFailure[];
  /** Whether the destination had files before the copy (the `repository is not empty` warning). */
  readonly destinationHadFiles: boolean;
}

/** Thrown when a destination lock is held by someone else: the destination relay must be idle. */
export const DESTINATION_LOCKED = 'cannot lock resource on destination relay';

/** Lists every file of a relay, recursively. */
async function listFiles(backend: Backend, signal?: AbortSignal): Promise<RelPath[]> {
  const out: RelPath[] = [];
  for await (const entry of backend.list(ROOT, { recursive: true, ...(signal ? { signal } : {}) })) if (entry.kind === 'file') out.push(entry.path);
  return out.sort();
}

/** Shared bookkeeping of both flavours: streaming file copies, progress, failures. */
class CopyRun {
  readonly copied: RelPath[] = [];
  readonly failed: CopyFailure[] = [];
  total = 0;
  private done = 0;
  readonly now: () => number;
  readonly sleep: (ms: number, signal?: AbortSignal) => Promise<void>;

  constructor(
    readonly source: Backend,
    readonly destination: Backend,
    readonly options: RelayCopyOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.sleep = options.sleep ?? (async (ms, signal) => void (await sleepFor(ms, undefined, signal ? { signal } : {}).catch(() => undefined)));
  }

  /**
   * Streams one file from source to destination (never held in memory). A file gone from the
   * source since the listing is skipped (false); any other failure is recorded (false), except
   * an abort, which is thrown.
   */
  async copy(path: RelPath): Promise<boolean> {
    const { signal } = this.options;
    throwIfAborted(signal);
    let ok = false;
    try {
      const body = await this.source.get(path, { signal });
      await this.destination.put(path, body, { signal });
      this.copied.push(path);
      ok = true;
    } catch (error) {
      if (hasCode(error, 'Aborted') || signal?.aborted) throw error;
      if (hasCode(error, 'NotFound')) {
        this.options.logger.debug(`'${path}' is gone from the source relay; nothing to copy`);
        this.total = Math.max(this.done, this.total - 1);
        return false;
      }
      this.fail(path, (error as Error).message);
    }
    this.done += 1;
    this.options.onProgress?.({ done: this.done, total: Math.max(this.total, this.done), path });
    return ok;
  }

  fail(path: string, reason: string): void {
    this.options.logger.error(`cannot copy '${path}': ${reason}`);
    this.failed.push({ path, reason });
  }

  report(destinationHadFiles: boolean): CopyReport {
    return { copied: this.copied, failed: this.failed, destinationHadFiles };
  }
}

/** The lock of a placeholder-protocol resource as found: none, ours (from this or an interrupted run), or someone else's. */
async function resourceLockState(backend: Backend, resource: RelPath, owner: string, signal?: AbortSignal): Promise<'free' | 'own' | 'foreign'> {
  try {
    const record = parseLock(await readSmall(backend, lockPathOf(resource), MAX_LOCK_BYTES, { signal }));
    return record.owner === owner ? 'own' : 'foreign';
  } catch (error) {
    if (hasCode(error, 'NotFound')) return 'free';
    // why: a lock that cannot be read is never taken for a free one (D-40).
    if (hasCode(error, 'CorruptRecord')) return 'foreign';
    throw error;
  }
}

/**
 * Takes the lock of a resource for `owner` unless another client holds it: check, write, read
 * back (the check-then-write is not atomic; reading back catches a lost race). Never removes or
 * overwrites a foreign lock.
 */
async function lockResource(backend: Backend, resource: RelPath, owner: string, mode: 'r' | 'w', signal?: AbortSignal): Promise<boolean> {
  if ((await resourceLockState(backend, resource, owner, signal)) === 'foreign') return false;
  await backend.put(lockPathOf(resource), Buffer.from(formatLock({ owner, mode }), 'utf8'), { signal });
  return (await resourceLockState(backend, resource, owner, signal)) === 'own';
}

/**
 * Copies a placeholder relay (relay-protocol §3) to another relay, with cli-and-config §9.3's
 * intended algorithm (D-59 fixed). Files are grouped by resource (data, placeholder, lock). Unless
 * `fast`: every resource nobody holds is locked on the source (`mode: r`), every resource is
 * locked on the destination (`mode: w`; a foreign destination lock aborts with DESTINATION_LOCKED
 * before anything is copied); the locked resources are copied; the resources another client held
 * on the source are then waited for (never unlocked by us), for at most `lockWaitMs`, and copied
 * once free; the rest are reported. Finally the destination locks, then the source locks this run
 * took, are released. Locks are never copied. Files that belong to no resource are copied as they are.
 */
export async function copyPlaceholderRelay(source: Backend, destination: Backend, options: RelayCopyOptions): Promise<CopyReport> {
  const { logger, owner, signal } = options;
  const run = new CopyRun(source, destination, options);
  const resources = new Map<RelPath, number>();
  const loose: RelPath[] = [];
  const initiallyLocked = new Set<RelPath>();
  for (const path of await listFiles(source, signal)) {
    const name = classifyRelayName(path);
    if (name.resource === undefined || (name.kind !== 'data' && name.kind !== 'placeholder' && name.kind !== 'lock')) loose.push(path);
    else if (name.kind === 'lock') {
      initiallyLocked.add(name.resource);
      resources.set(name.resource, resources.get(name.resource) ?? 0);
    } else resources.set(name.resource, (resources.get(name.resource) ?? 0) + 1);
  }
  const destinationHadFiles = (await listFiles(destination, signal)).length > 0;
  if (destinationHadFiles) logger.warning('repository is not empty');
  run.total = loose.length + [...resources.values()].reduce((a, b) => a + b, 0);

  const copyResource = async (resource: RelPath): Promise<void> => {
    // why: data first, then its description; both are read again under the lock (the listing may be stale).
    await run.copy(resource);
    await run.copy(placeholderPathOf(resource));
  };

  const sourceLocks: RelPath[] = [];
  const destinationLocks: RelPath[] = [];
  const waiting: RelPath[] = [];
  try {
    if (options.fast) {
      for (const resource of resources.keys()) await copyResource(resource);
    } else {
      const ready: RelPath[] = [];
      for (const resource of resources.keys()) {
        throwIfAborted(signal);
        // why: a resource another client holds is left alone for now; a lock of ours left by an interrupted run is taken over.
        const mine = !initiallyLocked.has(resource) || (await resourceLockState(source, resource, owner, signal)) === 'own';
        if (mine && (await lockResource(source, resource, owner, 'r', signal))) {
          sourceLocks.push(resource);
          ready.push(resource);
        } else waiting.push(resource);
        if (!(await lockResource(destination, resource, owner, 'w', signal))) {
          throw new EscaleError('LockBusy', `${DESTINATION_LOCKED}: '${resource}' is locked there by another client`, { path: resource, hint: 'the destination relay must not be in use during a migration' });
        }
        destinationLocks.push(resource);
      }
      for (const resource of ready) await copyResource(resource);
      const deadline = run.now() + options.lockWaitMs;
      while (waiting.length > 0) {
        for (const resource of [...waiting]) {
          if (!(await lockResource(source, resource, owner, 'r', signal))) continue;
          sourceLocks.push(resource);
          waiting.splice(waiting.indexOf(resource), 1);
          await copyResource(resource);
        }
        if (waiting.length === 0 || run.now() >= deadline) break;
        logger.info(`waiting for ${waiting.length} file(s) locked by another client on the source relay`);
        await run.sleep(Math.min(options.pollMs, Math.max(0, deadline - run.now())), signal);
      }
      for (const resource of waiting) run.fail(resource, 'locked by another client on the source relay; left untouched');
    }
    for (const path of loose) await run.copy(path);
  } finally {
    if (destinationLocks.length + sourceLocks.length > 0) {
      logger.info('reverting changes; please do not interrupt now');
      for (const resource of destinationLocks) await releaseQuietly(destination, lockPathOf(resource), logger);
      for (const resource of sourceLocks) await releaseQuietly(source, lockPathOf(resource), logger);
      logger.info('done');
    }
  }
  return run.report(destinationHadFiles);
}

async function releaseQuietly(backend: Backend, lock: RelPath, logger: Logger): Promise<void> {
  try {
    await deleteIfExists(backend, lock);
  } catch (error) {
    logger.warning(`cannot release lock '${lock}': ${(error as Error).message}`);
  }
}

/** The relay files of a page's pending update(s), in the order they are written: data, then index. */
function updateFiles(page: string, files: PageFiles): RelPath[] {
  const out: RelPath[] = [];
  for (const [timestamp, update] of [...files.updates].sort(([a], [b]) => a - b)) {
    if (update.data !== undefined) out.push(updateDataName(page, timestamp));
    if (update.index !== undefined) out.push(updateIndexName(page, timestamp));
  }
  return out;
}

/**
 * Copies an index relay (relay-protocol §4) page by page: unless `fast`, the source page is
 * locked for reading (waiting up to `lockWaitMs` for another client) and the destination page for
 * writing (it must be free); then the update data, the persistent index and the update index are
 * copied unchanged, in the order a pusher writes them, and both locks are released. A destination
 * page that already has a pending update of another `T` is not touched (two pending updates would
 * make readers delete both). Other files of the relay are copied as they are, without locks.
 */
export async function copyIndexRelay(source: Backend, destination: Backend, options: RelayCopyOptions): Promise<CopyReport> {
  const { logger, signal } = options;
  const run = new CopyRun(source, destination, options);
  const relayOptions = { client: options.owner, lockTimeoutSec: options.lockTimeoutSec, now: run.now, logger, sleep: run.sleep };
  const sourceRelay = new IndexRelay(source, relayOptions);
  const destinationRelay = new IndexRelay(destination, relayOptions);
  const all = await listFiles(source, signal);
  const loose = all.filter((path) => parsePageFileName(path) === undefined);
  const pages = [...(await sourceRelay.snapshot(signal)).pages.keys()].sort();
  const destinationHadFiles = (await listFiles(destination, signal)).length > 0;
  if (destinationHadFiles) logger.warning('repository is not empty');
  run.total = all.filter((path) => parsePageFileName(path)?.kind !== 'lock').length;

  for (const page of pages) {
    throwIfAborted(signal);
    const sourceLock = options.fast ? undefined : await sourceRelay.lock(page, 'r', { pollMs: options.pollMs, maxWaitMs: options.lockWaitMs, ...(signal ? { signal } : {}) });
    if (sourceLock === 'busy') {
      run.fail(persistentIndexName(page), `page '${page}' is locked by another client on the source relay; left untouched`);
      continue;
    }
    try {
      const destinationLock = options.fast ? undefined : await destinationRelay.lock(page, 'w', { pollMs: options.pollMs, maxWaitMs: 0, ...(signal ? { signal } : {}) });
      if (destinationLock === 'busy') {
        run.fail(persistentIndexName(page), `${DESTINATION_LOCKED}: page '${page}' is locked there by another client`);
        continue;
      }
      try {
        const files = await sourceRelay.pageFiles(page, signal);
        const theirs = await destinationRelay.pageFiles(page, signal);
        const clash = [...theirs.updates.keys()].filter((t) => !files.updates.has(t));
        if (clash.length > 0) {
          run.fail(persistentIndexName(page), `page '${page}' of the destination relay already has a pending update (${clash.join(', ')}); left untouched`);
          continue;
        }
        const names = updateFiles(page, files);
        // why: §4.8's write order: update data, persistent index, update index.
        const [data, index] = [names.filter((n) => n.endsWith('.data')), names.filter((n) => !n.endsWith('.data'))];
        for (const name of data) await run.copy(name);
        if (files.index !== undefined) await run.copy(persistentIndexName(page));
        for (const name of index) await run.copy(name);
      } finally {
        await destinationLock?.release();
      }
    } finally {
      await sourceLock?.release();
    }
  }
  for (const path of loose) await run.copy(path);
  return run.report(destinationHadFiles);
}
