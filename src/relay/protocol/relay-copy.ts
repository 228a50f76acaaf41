import { EscaleError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { ROOT, type RelayPath } from '../../core/relpath.js';
import type { Backend, Entry } from '../backend.js';
import type { RelayFlavour } from './backup-archive.js';
import { parsePageFileName, persistentIndexName } from './pages.js';
import {
  CopyTally,
  DESTINATION_LOCKED,
  groupListing,
  groupsInTurn,
  inWriteOrder,
  lockEveryGroup,
  openGroupLocker,
  releaseAll,
  type CopyFailure,
  type HeldGroups,
  type LockerClock,
  type RelayGroup,
} from './relay-groups.js';

/** Settings of an inter-relay copy (relay-format.md P7.3). */
export interface RelayCopyOptions {
  /** Both relays use this flavour. */
  readonly flavour: RelayFlavour;
  /** Owner written into every lock this copy takes, on both relays (e.g. `<client>-migrate`). */
  readonly owner: string;
  /** `--fast`: take no lock at all (only safe when every client is stopped). */
  readonly fast: boolean;
  /** How long to wait, in total, for resources or pages locked by another client (ms). */
  readonly lockWaitMs: number;
  /** `lock timeout` of the section in seconds (index pages: a stale foreign lock is broken as clients do). */
  readonly lockTimeoutSec: number | null;
  readonly logger: Logger;
  readonly clock?: LockerClock;
  /** Told after each file (copied or failed) with the files handled and the files known so far. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

/** What a copy did. */
export interface CopyReport {
  readonly copied: RelayPath[];
  readonly failed: CopyFailure[];
  /** Whether the destination had files before the copy (the `repository is not empty` warning). */
  readonly destinationHadFiles: boolean;
}

async function listFiles(backend: Backend, signal?: AbortSignal): Promise<Entry[]> {
  const out: Entry[] = [];
  for await (const entry of backend.list(ROOT, { recursive: true, ...(signal ? { signal } : {}) })) if (entry.kind === 'file') out.push(entry);
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/**
 * How a copy's messages name a group, as each flavour always has: a placeholder resource by its
 * path (`'a.txt' is locked`), an index page by its persistent index (`page 'docs' is locked`).
 */
function describe(group: RelayGroup, flavour: RelayFlavour): { path: string; subject: string } {
  return flavour === 'index' ? { path: persistentIndexName(group.name), subject: `page '${group.name}'` } : { path: group.name, subject: `'${group.name}'` };
}

/** The update timestamps of `theirs` that `ours` does not have (an index page's pending updates). */
function otherUpdates(ours: readonly Entry[], theirs: readonly Entry[]): number[] {
  const stamps = (files: readonly Entry[]): Set<number> => new Set(files.map((entry) => parsePageFileName(entry.path)?.timestamp).filter((t): t is number => t !== undefined));
  const known = stamps(ours);
  return [...stamps(theirs)].filter((t) => !known.has(t)).sort((a, b) => a - b);
}

/**
 * Copies a relay to another relay of the same flavour (relay-format.md P7.3, configuration.md U-20 fixed), files as
 * they are (encrypted stays encrypted), locks never. Files are grouped as their locks guard them
 * (a resource with its placeholder; a page with its indices and update data). Unless `fast`: every
 * group is locked on the destination (`mode: w`) first, without waiting: one held by another client
 * aborts with DESTINATION_LOCKED before anything is copied. Then the groups get their turns under
 * a source lock (`mode: r`; see `groupsInTurn`: the ones other clients hold are waited for at most
 * `lockWaitMs` in all, never unlocked by us, and reported when they stay held); each group's files
 * are read again under the lock and written in the order a writer would. An index page of the
 * destination that already has a pending update of another `T` is not touched (two pending updates
 * would make readers delete both). Files no lock guards are copied last; the destination locks are
 * released at the end.
 */
export async function copyRelay(source: Backend, destination: Backend, options: RelayCopyOptions): Promise<CopyReport> {
  const { flavour, logger, signal } = options;
  const clock = options.clock ?? { now: Date.now };
  const { groups, loose } = groupListing(await listFiles(source, signal), flavour);
  const destinationHadFiles = (await listFiles(destination, signal)).length > 0;
  if (destinationHadFiles) logger.warning('repository is not empty');
  const tally = new CopyTally({
    ...(options.onProgress === undefined ? {} : { onProgress: options.onProgress }),
    onFailure: ({ path, reason }) => logger.error(`cannot copy '${path}': ${reason}`),
  });
  // why: a group's files as listed, its lock left out (locks are never copied), in write order.
  const listedFiles = groups.map((slot) => inWriteOrder(slot.group, slot.listed, flavour));
  tally.total = loose.length + listedFiles.reduce((sum, files) => sum + files.length, 0);
  const copied: RelayPath[] = [];
  const copy = async (entry: Entry): Promise<void> => {
    const done = await tally.transfer(entry.path, logger, async () => {
      await destination.put(entry.path, await source.get(entry.path, { signal }), { signal });
      return true;
    }, signal);
    if (done) copied.push(entry.path);
  };

  if (options.fast) {
    for (const files of listedFiles) for (const entry of files) await copy(entry);
    for (const entry of loose) await copy(entry);
    return { copied, failed: tally.failed, destinationHadFiles };
  }

  const settings = { owner: options.owner, lockTimeoutSec: options.lockTimeoutSec, logger, now: clock.now };
  const sourceLocker = openGroupLocker(source, flavour, 'r', settings);
  const destinationLocker = openGroupLocker(destination, flavour, 'w', settings);
  const destinationLocks: HeldGroups = new Map();
  try {
    const refusal = (group: RelayGroup): EscaleError =>
      new EscaleError('LockBusy', `${DESTINATION_LOCKED}: ${describe(group, flavour).subject} is locked there by another client`, {
        path: group.name,
        hint: 'the destination relay must not be in use during a migration',
      });
    await lockEveryGroup(groups.map((slot) => slot.group), destinationLocker, destinationLocks, refusal, signal);
    const turns = groupsInTurn(groups, sourceLocker, {
      maxWaitMs: options.lockWaitMs,
      clock,
      logger,
      waiting: (count) => `waiting for ${count} file(s) locked by another client on the source relay`,
      ...(signal === undefined ? {} : { signal }),
    });
    for await (const { slot, lock } of turns) {
      const { path, subject } = describe(slot.group, flavour);
      if (lock === 'busy') {
        // why: a resource's path already names it; a page is named in the reason, as before.
        tally.fail(path, `${flavour === 'index' ? `${subject} is ` : ''}locked by another client on the source relay; left untouched`);
        continue;
      }
      const files = await sourceLocker.files(slot.group, signal);
      const clash = flavour === 'index' ? otherUpdates(files, await destinationLocker.files(slot.group, signal)) : [];
      if (clash.length > 0) {
        tally.fail(path, `${subject} of the destination relay already has a pending update (${clash.join(', ')}); left untouched`);
        continue;
      }
      for (const entry of files) await copy(entry);
    }
    for (const entry of loose) await copy(entry);
  } finally {
    if (destinationLocks.size > 0) {
      logger.info('reverting changes; please do not interrupt now');
      await releaseAll(destinationLocks, logger);
      logger.info('done');
    }
  }
  return { copied, failed: tally.failed, destinationHadFiles };
}

