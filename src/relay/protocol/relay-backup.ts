import { Readable } from 'node:stream';
import { hasCode, throwIfAborted } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { isRelPath, ROOT } from '../../core/relpath.js';
import type { Backend, Entry } from '../backend.js';
import { packTar, type ArchiveSource } from './archive.js';
import { formatManifest, MANIFEST_NAME, type BackupManifest, type RelayFlavour } from './backup-archive.js';
import { groupOf, type GroupLocker, type HeldGroup, type RelayGroup } from './relay-groups.js';

/** A relay file that a backup or restore could not copy, and why. */
export interface CopyFailure {
  readonly path: string;
  readonly reason: string;
}

/** What a backup copied; filled in while the archive stream is read. */
export interface BackupReport {
  files: number;
  bytes: number;
  readonly missing: CopyFailure[];
}

/** Settings of `backupTar`. */
export interface BackupTarOptions {
  readonly backend: Backend;
  readonly flavour: RelayFlavour;
  readonly manifest: BackupManifest;
  /** Takes the source group locks (`mode: r`); undefined: fast mode, nothing is locked. */
  readonly locker?: GroupLocker;
  /** How long to wait, in all, for the groups another client had locked. */
  readonly maxWaitMs: number;
  readonly logger: Logger;
  readonly now: () => number;
  /** Called after each file with the files handled so far and the files listed. */
  readonly onProgress?: (done: number, total: number) => void;
  readonly signal?: AbortSignal;
}

/** A backup in progress: the uncompressed tar, its report, and how to let go of the locks it holds. */
export interface BackupStream {
  readonly tar: Readable;
  readonly report: BackupReport;
  /** Releases every group lock still held (after a failure; a finished stream holds none). */
  releaseLocks(): Promise<void>;
}

interface ListedGroup {
  readonly group: RelayGroup;
  readonly listed: Entry[];
  /** Whether the listing showed the group's lock (another client is at work there). */
  initiallyLocked: boolean;
}

/**
 * Streams a tar of every relay file (cli-and-config §9.1 with the TS changes): the manifest first,
 * then the files as they are on the relay (encrypted stays encrypted). Without a locker every listed
 * file is copied as it is (locks included). With one, files that no lock guards are copied, every
 * group that is not locked is locked at once and copied, then the groups another client held are
 * waited for (at most `maxWaitMs` in all); each group's lock is released once it is copied and is
 * never archived. A file that cannot be read, and the files of a group that stayed locked, are
 * reported as missing; a file that left the relay meanwhile is simply not archived. A read that fails
 * halfway fails the stream.
 */
export function backupTar(options: BackupTarOptions): BackupStream {
  const report: BackupReport = { files: 0, bytes: 0, missing: [] };
  const held = new Set<HeldGroup>();
  return {
    tar: packTar(backupSources(options, report, held)),
    report,
    releaseLocks: () => releaseAll(held, options.logger),
  };
}

async function* backupSources(options: BackupTarOptions, report: BackupReport, held: Set<HeldGroup>): AsyncGenerator<ArchiveSource> {
  const { backend, flavour, locker, logger, signal } = options;
  const manifest = formatManifest(options.manifest);
  yield { path: MANIFEST_NAME, size: manifest.length, mtimeSec: Math.floor(options.now() / 1000), open: async () => Readable.from([manifest]) };

  const groups = new Map<string, ListedGroup>();
  const loose: Entry[] = [];
  for await (const entry of backend.list(ROOT, { recursive: true, signal })) {
    if (entry.kind !== 'file') continue;
    if (!isRelPath(entry.path)) {
      report.missing.push({ path: entry.path, reason: 'its name is not a safe relative path in NFC form' });
      continue;
    }
    if (entry.path === MANIFEST_NAME) {
      report.missing.push({ path: entry.path, reason: 'this name is reserved for the manifest of backup archives' });
      continue;
    }
    const group = groupOf(entry.path, flavour);
    if (group === undefined) {
      loose.push(entry);
      continue;
    }
    let slot = groups.get(group.name);
    if (slot === undefined) groups.set(group.name, (slot = { group, listed: [], initiallyLocked: false }));
    slot.listed.push(entry);
    if (entry.path === group.lockPath) slot.initiallyLocked = true;
  }
  let total = loose.length;
  for (const slot of groups.values()) total += slot.listed.length;
  let done = 0;
  const step = (count: number): void => {
    done += count;
    options.onProgress?.(done, total);
  };

  const copy = async function* (entry: Entry, checked: boolean): AsyncGenerator<ArchiveSource> {
    throwIfAborted(signal);
    let stream: Readable;
    let described = entry;
    try {
      // why: a listing may be old by now (or give no size); the tar header needs the size of what is read.
      if (!checked || entry.size < 0) described = await backend.stat(entry.path, { signal });
      stream = await backend.get(entry.path, { signal });
    } catch (error) {
      if (hasCode(error, 'Aborted')) throw error;
      if (hasCode(error, 'NotFound')) logger.debug(`'${entry.path}' left the relay before it was copied`);
      else report.missing.push({ path: entry.path, reason: (error as Error).message });
      return;
    }
    if (described.size < 0) {
      stream.destroy();
      report.missing.push({ path: entry.path, reason: 'the relay does not tell its size' });
      return;
    }
    report.files += 1;
    report.bytes += described.size;
    yield { path: entry.path, size: described.size, mtimeSec: Math.floor((described.mtimeMs ?? options.now()) / 1000), open: async () => stream };
  };

  for (const entry of loose) {
    yield* copy(entry, false);
    step(1);
  }
  if (locker === undefined) {
    for (const slot of groups.values()) {
      for (const entry of slot.listed) {
        yield* copy(entry, false);
        step(1);
      }
    }
    return;
  }
  const copyGroup = async function* (slot: ListedGroup, lock: HeldGroup): AsyncGenerator<ArchiveSource> {
    try {
      for (const entry of await locker.files(slot.group, signal)) yield* copy(entry, true);
    } finally {
      held.delete(lock);
      await releaseOne(lock, logger);
    }
    step(slot.listed.length);
  };
  // Safe mode (cli-and-config §9.3): lock at once every group nobody holds, copy them, then wait for the others.
  const ready: Array<[ListedGroup, HeldGroup]> = [];
  const deferred: ListedGroup[] = [];
  try {
    for (const slot of groups.values()) {
      const lock = slot.initiallyLocked ? 'busy' : await locker.lock(slot.group, 0, signal);
      if (lock === 'busy') deferred.push(slot);
      else {
        held.add(lock);
        ready.push([slot, lock]);
      }
    }
    for (const [slot, lock] of ready) yield* copyGroup(slot, lock);
    if (deferred.length > 0) logger.info(`waiting for ${deferred.length} locked file group(s) to be released by other clients`);
    const deadline = options.now() + options.maxWaitMs;
    for (const slot of deferred) {
      const lock = await locker.lock(slot.group, Math.max(0, deadline - options.now()), signal);
      if (lock === 'busy') {
        for (const entry of slot.listed) report.missing.push({ path: entry.path, reason: `'${slot.group.name}' stayed locked by another client` });
        step(slot.listed.length);
        continue;
      }
      held.add(lock);
      yield* copyGroup(slot, lock);
    }
  } finally {
    // why: a stream that fails or is destroyed halfway still lets go of every lock it took.
    await releaseAll(held, logger);
  }
}

/** Releases every lock of `held` (emptying it); a failed release is logged and left for repair. */
export async function releaseAll(held: Set<HeldGroup>, logger: Logger): Promise<void> {
  for (const lock of [...held]) {
    held.delete(lock);
    await releaseOne(lock, logger);
  }
}

async function releaseOne(lock: HeldGroup, logger: Logger): Promise<void> {
  await lock.release().catch((error: unknown) => logger.warning(`cannot release the lock of '${lock.group.name}': ${(error as Error).message}`));
}
