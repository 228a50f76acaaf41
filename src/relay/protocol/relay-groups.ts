import { setTimeout as sleepFor } from 'node:timers/promises';
import { hasCode, throwIfAborted } from '../../core/errors.js';
import type { RelPath } from '../../core/relpath.js';
import type { Backend, Entry } from '../backend.js';
import type { RelayFlavour } from './backup-archive.js';
import type { IndexRelay } from './index-relay.js';
import { classifyRelayName, lockPathOf, placeholderPathOf } from './layout.js';
import { pageLockName, parsePageFileName } from './pages.js';
import type { PlaceholderRelay } from './placeholder-relay.js';

/**
 * Relay files that one lock guards: a resource with its placeholder (placeholder relay, relay-protocol
 * §3.1) or a page with its indices and update data (index relay, §4.2).
 */
export interface RelayGroup {
  /** The resource path or the page name. */
  readonly name: string;
  /** The lock file of the group. */
  readonly lockPath: RelPath;
}

/** The group a relay file belongs to, or undefined when no lock guards it (other dot files, messages). */
export function groupOf(path: RelPath, flavour: RelayFlavour): RelayGroup | undefined {
  if (flavour === 'placeholder') {
    const { resource } = classifyRelayName(path);
    return resource === undefined ? undefined : { name: resource, lockPath: lockPathOf(resource) };
  }
  const page = parsePageFileName(path);
  return page === undefined ? undefined : { name: page.page, lockPath: pageLockName(page.page) };
}

/** A group lock held by a maintenance job. */
export interface HeldGroup {
  readonly group: RelayGroup;
  /** Deletes the lock (idempotent; a failure is logged by the caller's relay or thrown). */
  release(): Promise<void>;
}

/** Takes group locks for a maintenance job and reads a locked group's files. */
export interface GroupLocker {
  /**
   * Locks a group, waiting at most `maxWaitMs` (0: one try) while another client holds it;
   * 'busy' when it stays held.
   */
  lock(group: RelayGroup, maxWaitMs: number, signal?: AbortSignal): Promise<HeldGroup | 'busy'>;
  /** The group's files on the relay now, its lock file left out (call it while holding the lock). */
  files(group: RelayGroup, signal?: AbortSignal): Promise<Entry[]>;
}

/** How long a waiting lock sleeps between two looks at a foreign lock. */
export const GROUP_LOCK_POLL_MS = 2000;

/** Waits of a locker (injected by tests). */
export interface LockerClock {
  readonly now: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Group locks of a placeholder relay: the resource lock `D/.N.lock`, written with `mode`. */
export function placeholderLocker(relay: PlaceholderRelay, backend: Backend, mode: 'r' | 'w', clock: LockerClock): GroupLocker {
  const sleep = clock.sleep ?? ((ms: number, signal?: AbortSignal) => sleepFor(ms, undefined, signal ? { signal } : {}));
  return {
    async lock(group, maxWaitMs, signal) {
      const resource = group.name as RelPath;
      const start = clock.now();
      for (;;) {
        throwIfAborted(signal);
        if ((await relay.tryLock(resource, mode, signal)) === 'locked') {
          let released = false;
          return {
            group,
            release: async () => {
              if (released) return;
              released = true;
              await relay.unlock(resource);
            },
          };
        }
        const left = maxWaitMs - (clock.now() - start);
        if (left <= 0) return 'busy';
        await sleep(Math.min(GROUP_LOCK_POLL_MS, left), signal);
      }
    },
    async files(group, signal) {
      const resource = group.name as RelPath;
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
export function indexLocker(relay: IndexRelay, mode: 'r' | 'w'): GroupLocker {
  return {
    async lock(group, maxWaitMs, signal) {
      const held = await relay.lock(group.name, mode, { pollMs: GROUP_LOCK_POLL_MS, maxWaitMs, ...(signal === undefined ? {} : { signal }) });
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
      return found;
    },
  };
}
