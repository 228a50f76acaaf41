import { setTimeout as sleepFor } from 'node:timers/promises';
import { hasCode, throwIfAborted, type EscaleError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import type { RelayPath } from '../../core/relpath.js';
import type { Backend, Entry } from '../backend.js';
import type { RelayFlavour } from './backup-archive.js';
import { IndexRelay } from './index-relay.js';
import { classifyRelayName, lockPathOf, placeholderPathOf } from './layout.js';
import { pageLockName, parsePageFileName } from './pages.js';
import { PlaceholderRelay } from './placeholder-relay.js';

/*
 * What the maintenance jobs that move relay files (backup, restore, migrate) share: file groups and
 * their locks, the wait for groups other clients hold, and the tally of progress and failures.
 */

/**
 * Relay files that one lock guards: a resource with its placeholder (placeholder relay, relay-format.md
 * P3.1) or a page with its indices and update data (index relay, relay-format.md P4.2).
 */
export interface RelayGroup {
  /** The resource path or the page name. */
  readonly name: string;
  /** The lock file of the group. */
  readonly lockPath: RelayPath;
}

/** The group a relay file belongs to, or undefined when no lock guards it (other dot files, messages). */
export function groupOf(path: RelayPath, flavour: RelayFlavour): RelayGroup | undefined {
  if (flavour === 'placeholder') {
    const { resource } = classifyRelayName(path);
    return resource === undefined ? undefined : { name: resource, lockPath: lockPathOf(resource) };
  }
  const page = parsePageFileName(path);
  return page === undefined ? undefined : { name: page.page, lockPath: pageLockName(page.page) };
}

/** A group and its files as a listing showed them (its lock file included, when there was one). */
export interface ListedGroup {
  readonly group: RelayGroup;
  readonly listed: Entry[];
}

/** Sorts listed files into groups (in the order of their first file) and the files no lock guards. */
export function groupListing(entries: Iterable<Entry>, flavour: RelayFlavour): { groups: ListedGroup[]; loose: Entry[] } {
  const groups = new Map<string, ListedGroup>();
  const loose: Entry[] = [];
  for (const entry of entries) {
    const group = groupOf(entry.path, flavour);
    if (group === undefined) {
      loose.push(entry);
      continue;
    }
    let slot = groups.get(group.name);
    if (slot === undefined) groups.set(group.name, (slot = { group, listed: [] }));
    slot.listed.push(entry);
  }
  return { groups: [...groups.values()], loose };
}

/** Where a file stands in the order a writer puts a group on the relay (relay-format.md P3.4, P4.8). */
function writeRank(path: RelayPath, flavour: RelayFlavour): [number, number] {
  if (flavour === 'placeholder') return [classifyRelayName(path).kind === 'data' ? 0 : 1, 0];
  const name = parsePageFileName(path);
  const rank = { 'update-data': 0, index: 1, 'update-index': 2, lock: 3 } as const;
  return [name === undefined ? 3 : rank[name.kind], name?.timestamp ?? 0];
}

/**
 * A group's files without its lock, in the order a writer puts them on the relay: data before its
 * placeholder; update data, then the persistent index, then update indices (by T).
 */
export function inWriteOrder(group: RelayGroup, files: readonly Entry[], flavour: RelayFlavour): Entry[] {
  const ranked = files.filter((entry) => entry.path !== group.lockPath).map((entry) => ({ entry, rank: writeRank(entry.path, flavour) }));
  ranked.sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1] || (a.entry.path < b.entry.path ? -1 : a.entry.path > b.entry.path ? 1 : 0));
  return ranked.map(({ entry }) => entry);
}

/** A group lock held by a maintenance job. */
export interface HeldGroup {
  readonly group: RelayGroup;
  /** Deletes the lock (idempotent; a failure is logged by the relay or thrown). */
  release(): Promise<void>;
}

/** The locks a job holds, by group name. */
export type HeldGroups = Map<string, HeldGroup>;

/** Takes group locks for a maintenance job and reads a locked group's files. */
export interface GroupLocker {
  /**
   * One try at a group's lock, never waiting: a free lock or one of this job's own name (left by an
   * interrupted run) is written and read back; 'busy' when another client holds it (or its record
   * cannot be read) or won the race for it. A lock of another client is never removed or replaced
   * (an index page's stale lock excepted, broken as the protocol says: by the relay's clock, never
   * the local one).
   */
  lock(group: RelayGroup, signal?: AbortSignal): Promise<HeldGroup | 'busy'>;
  /** The group's files on the relay now, its lock left out, in write order (call it while holding the lock). */
  files(group: RelayGroup, signal?: AbortSignal): Promise<Entry[]>;
}

/** How long a wait for other clients' locks sleeps between two rounds of tries. */
export const GROUP_LOCK_POLL_MS = 2000;

/** Clock of a maintenance job (injected by tests). */
export interface LockerClock {
  readonly now: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Group locks of a placeholder relay: the resource lock `D/.N.lock`, written with `mode`. */
function placeholderLocker(relay: PlaceholderRelay, backend: Backend, mode: 'r' | 'w'): GroupLocker {
  return {
    async lock(group, signal) {
      const resource = group.name as RelayPath;
      if ((await relay.tryLock(resource, mode, signal)) === 'busy') return 'busy';
      let released = false;
      return {
        group,
        release: async () => {
          if (released) return;
          released = true;
          await relay.unlock(resource);
        },
      };
    },
    async files(group, signal) {
      const resource = group.name as RelayPath;
      const found: Entry[] = [];
      for (const path of [resource, placeholderPathOf(resource)]) {
        try {
          found.push(await backend.stat(path, { signal }));
        } catch (error) {
          if (!hasCode(error, 'NotFound')) throw error;
        }
      }
      return found;
    },
  };
}

/** Group locks of an index relay: the page lock `.<P>.lock`, written with `mode` (stale locks are broken as the protocol says). */
function indexLocker(relay: IndexRelay, mode: 'r' | 'w'): GroupLocker {
  return {
    async lock(group, signal) {
      const held = await relay.lock(group.name, mode, { pollMs: GROUP_LOCK_POLL_MS, maxWaitMs: 0, ...(signal === undefined ? {} : { signal }) });
      return held === 'busy' ? 'busy' : { group, release: () => held.release() };
    },
    async files(group, signal) {
      const files = await relay.pageFiles(group.name, signal);
      const found: Entry[] = [];
      if (files.index !== undefined) found.push(files.index);
      for (const update of files.updates.values()) {
        if (update.index !== undefined) found.push(update.index);
        if (update.data !== undefined) found.push(update.data);
      }
      return inWriteOrder(group, found, 'index');
    },
  };
}

/** Who a job's locks are written for, and the settings of the stale-lock rule (`judgeExpiry`). */
export interface LockerSettings {
  /** Lock owner, e.g. `<client>-backup`. */
  readonly owner: string;
  /** `lock timeout` of the section in seconds (index pages: a stale foreign lock is broken as clients do). */
  readonly lockTimeoutSec: number | null;
  readonly logger: Logger;
  /** This machine's wall clock (skew warnings); relay files' ages are judged by the relay's clock. */
  readonly now: () => number;
}

/** The group locker of a relay of `flavour`, writing locks with `mode`. */
export function openGroupLocker(backend: Backend, flavour: RelayFlavour, mode: 'r' | 'w', settings: LockerSettings): GroupLocker {
  const options = { client: settings.owner, lockTimeoutSec: settings.lockTimeoutSec, now: settings.now, logger: settings.logger };
  return flavour === 'index' ? indexLocker(new IndexRelay(backend, options), mode) : placeholderLocker(new PlaceholderRelay(backend, options), backend, mode);
}

/** Start of the message of a job that needs an idle destination relay and finds a group locked there. */
export const DESTINATION_LOCKED = 'cannot lock resource on destination relay';

/**
 * Locks every group without waiting (the relay must be idle): a group another client holds ends it
 * with `refusal(group)`. The locks taken are in `held`, for the caller to release (also after a refusal).
 */
export async function lockEveryGroup(groups: Iterable<RelayGroup>, locker: GroupLocker, held: HeldGroups, refusal: (group: RelayGroup) => EscaleError, signal?: AbortSignal): Promise<void> {
  for (const group of groups) {
    throwIfAborted(signal);
    const lock = await locker.lock(group, signal);
    if (lock === 'busy') throw refusal(group);
    held.set(group.name, lock);
  }
}

/** Settings of `groupsInTurn`. */
export interface TurnOptions {
  /** How long to wait, in all, for the groups other clients hold. */
  readonly maxWaitMs: number;
  readonly clock: LockerClock;
  readonly logger: Logger;
  /** The line logged once when some groups must be waited for. */
  readonly waiting: (count: number) => string;
  /** Where the locks are kept while held (so that a caller can release them if the turns are abandoned). */
  readonly held?: HeldGroups;
  readonly signal?: AbortSignal;
}

/** A group's turn: its lock (released when the next turn is asked for), or 'busy' when another client held it to the end. */
export interface GroupTurn<T> {
  readonly slot: T;
  readonly lock: HeldGroup | 'busy';
}

/**
 * Gives each group its turn under its lock (the safe mode of relay-format.md P7.3): every group nobody
 * else holds is locked at once and handed out; then the others are tried in rounds, every
 * GROUP_LOCK_POLL_MS, for at most `maxWaitMs` in all, and handed out as each is freed; the ones
 * still held at the end are handed out as 'busy'. A lock is released when the caller asks for the
 * next turn, and every lock still held when the caller stops early or fails.
 */
export async function* groupsInTurn<T extends { readonly group: RelayGroup }>(slots: readonly T[], locker: GroupLocker, options: TurnOptions): AsyncGenerator<GroupTurn<T>> {
  const { clock, logger, signal } = options;
  const sleep = clock.sleep ?? (async (ms: number, aborted?: AbortSignal) => void (await sleepFor(ms, undefined, aborted ? { signal: aborted } : {}).catch(() => undefined)));
  const held = options.held ?? new Map<string, HeldGroup>();
  const take = async (slot: T): Promise<HeldGroup | undefined> => {
    const lock = await locker.lock(slot.group, signal);
    if (lock === 'busy') return undefined;
    held.set(slot.group.name, lock);
    return lock;
  };
  async function* turn(slot: T, lock: HeldGroup): AsyncGenerator<GroupTurn<T>> {
    yield { slot, lock };
    held.delete(slot.group.name);
    await releaseOne(lock, logger);
  }
  try {
    const ready: Array<[T, HeldGroup]> = [];
    let waiting: T[] = [];
    for (const slot of slots) {
      throwIfAborted(signal);
      const lock = await take(slot);
      if (lock === undefined) waiting.push(slot);
      else ready.push([slot, lock]);
    }
    for (const [slot, lock] of ready) yield* turn(slot, lock);
    if (waiting.length > 0) logger.info(options.waiting(waiting.length));
    const deadline = clock.now() + options.maxWaitMs;
    while (waiting.length > 0) {
      const still: T[] = [];
      for (const slot of waiting) {
        throwIfAborted(signal);
        const lock = await take(slot);
        if (lock === undefined) still.push(slot);
        else yield* turn(slot, lock);
      }
      waiting = still;
      if (waiting.length === 0 || clock.now() >= deadline) break;
      await sleep(Math.min(GROUP_LOCK_POLL_MS, Math.max(0, deadline - clock.now())), signal);
    }
    for (const slot of waiting) yield { slot, lock: 'busy' };
  } finally {
    // why: turns abandoned halfway (a failure, a destroyed stream) still let go of every lock taken.
    await releaseAll(held, logger);
  }
}

/** Releases every lock of `held` (emptying it); a failed release is logged and left for repair. */
export async function releaseAll(held: HeldGroups, logger: Logger): Promise<void> {
  for (const [name, lock] of [...held]) {
    held.delete(name);
    await releaseOne(lock, logger);
  }
}

async function releaseOne(lock: HeldGroup, logger: Logger): Promise<void> {
  await lock.release().catch((error: unknown) => logger.warning(`cannot release the lock of '${lock.group.name}': ${(error as Error).message}`));
}

/** A file (or a whole group) that a maintenance job could not copy, and why. */
export interface CopyFailure {
  readonly path: string;
  readonly reason: string;
}

/** Progress and failures of a job that copies relay files. */
export class CopyTally {
  readonly failed: CopyFailure[] = [];
  /** Files to handle, as far as known (a listed file that leaves the relay is taken off). */
  total = 0;
  private done = 0;

  constructor(private readonly told: { onProgress?: (done: number, total: number) => void; onFailure?: (failure: CopyFailure) => void } = {}) {}

  /** `count` more files were handled (copied, failed or left out). */
  handled(count = 1): void {
    this.done += count;
    this.told.onProgress?.(this.done, Math.max(this.total, this.done));
  }

  fail(path: string, reason: string): void {
    const failure = { path, reason };
    this.told.onFailure?.(failure);
    this.failed.push(failure);
  }

  /**
   * Runs the transfer of one listed relay file: an abort is thrown; a file that left the relay
   * since the listing is skipped (undefined; no longer counted); any other failure is recorded
   * (undefined). Counts the file as handled unless it left.
   */
  async transfer<R>(path: RelayPath, logger: Logger, run: () => Promise<R>, signal?: AbortSignal): Promise<R | undefined> {
    throwIfAborted(signal);
    let result: R | undefined;
    try {
      result = await run();
    } catch (error) {
      if (hasCode(error, 'Aborted') || signal?.aborted) throw error;
      if (hasCode(error, 'NotFound')) {
        logger.debug(`'${path}' left the relay before it was copied`);
        this.total = Math.max(this.done, this.total - 1);
        return undefined;
      }
      this.fail(path, (error as Error).message);
    }
    this.handled();
    return result;
  }
}
