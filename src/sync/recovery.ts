import { failsWholeRelay, hasCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { folderSpellings, spellAs, type RelayPath, type RelPath } from '../core/relpath.js';
import type { IndexRelay } from '../relay/protocol/index-relay.js';
import type { IndexExtras } from '../relay/protocol/page-index.js';
import { pageOf, type PageScheme } from '../relay/protocol/pages.js';
import type { PlaceholderRelay } from '../relay/protocol/placeholder-relay.js';
import type { LocalPort, ScannedLocal } from './engine.js';
import { modePushes } from './index-planner.js';
import type { SyncMode } from './model.js';
import { pushedRecord, type MetadataRecord } from '../relay/protocol/records.js';
import { countProgressDue, percentProgress, PERCENT_PROGRESS_INTERVAL_MS, planIndexFix, planPlaceholderFix, type PlaceholderFixOutcome } from './recovery-planner.js';

// `escalectl fix` (relay-format.md P7.1, configuration.md C13): rebuilds a lost relay's metadata from the local
// repository, "as if the local state had been fully synchronized". What that means here:
//
// - Each record is what this client's own push would have written (`pushedRecord`): this client as
//   pusher, the integer mtime, and the checksum of the PLAINTEXT (the runtime compares plaintext
//   checksums; 0.7 hashed the encrypted file, so every file looked modified, configuration.md U-19).
// - No data is written, and the puller lists stay empty. A placeholder without data is what a
//   version looks like once every puller has taken it ("consumed"): the download rules skip it, and
//   clients whose copy has the same checksum (or, on index relays, the same mtime) skip the upload.
//   We cannot name the other clients as pullers (we do not know them), and we need not: pullers
//   only count while data waits on the relay. Index relays get no pending update either, so there
//   is no update whose pullers the relay would wait for, and no data it would expect.
// - A file whose data is still on the relay keeps its record: that record describes the data,
//   which may be newer than our copy; the normal rounds settle it.

/** Settings of a recovery run. */
export interface RecoveryOptions {
  readonly client: string;
  readonly mode: SyncMode;
  /** `-f`: no locks (and on placeholder relays, only files the relay does not know). */
  readonly fast: boolean;
  /** `-u` (placeholder relays): keep existing placeholders. */
  readonly update: boolean;
  /** Plan and report, write nothing on the relay. */
  readonly dryRun: boolean;
  readonly logger: Logger;
  /** Receives the progress lines (`progress: P%`, `progress: n of N files`). */
  readonly progress: (line: string) => void;
  /** Current time in milliseconds (for the progress interval). */
  readonly now: () => number;
  readonly signal?: AbortSignal;
}

/**
 * What became of one file on a placeholder relay: `written`, `kept` (`-u`), `known` (fast mode),
 * `has-data`, `locked` by another client, `vanished` locally; `to-write` in a dry run.
 */
export type PlaceholderOutcome = 'written' | 'kept' | 'known' | 'has-data' | 'locked' | 'vanished' | 'to-write';

/** What happened to one index page. */
export interface PageRecovery {
  readonly page: string;
  /** Entries of the new persistent index (0: the index is deleted). */
  readonly entries: number;
  /** `written`/`deleted`, or `busy` when another client held the page lock; `planned` in a dry run. */
  readonly outcome: 'written' | 'deleted' | 'busy' | 'planned';
}

/** What a recovery run did on one section. */
export interface RecoveryReport {
  readonly flavour: 'placeholder' | 'index';
  /** Local files described (after filters, access modifiers, mode and `-p`). */
  files: number;
  /** Placeholder relays: files per outcome (`to-write` is a dry run's `written`). */
  readonly placeholders: Partial<Record<PlaceholderOutcome, number>>;
  /** Index relays: one line per page. */
  readonly pages: PageRecovery[];
  /** Files (placeholder relays) or pages (index relays) that another client had locked: run `fix` again. */
  readonly locked: string[];
}

/** How long to wait for a page lock held by another client, and how often to look. */
export interface PageLockWait {
  readonly pollMs: number;
  readonly maxWaitMs: number;
}

/**
 * The local files the daemon would upload: the scan (filters, no dot names), less the files marked
 * `r-`; nothing in download mode (a download-only client never pushes, so it recovers nothing).
 */
export async function* uploadCandidates(local: LocalPort, mode: SyncMode, signal?: AbortSignal): AsyncIterable<ScannedLocal> {
  if (!modePushes(mode)) return;
  for await (const file of local.scan(signal)) if (local.access(file.path).read !== false) yield file;
}

/** The record of one local file, or undefined when it vanished (a warning is logged). */
async function recordOf(local: LocalPort, file: ScannedLocal, options: RecoveryOptions): Promise<MetadataRecord | undefined> {
  try {
    return pushedRecord(options.client, file.mtimeMs, await local.checksum(file, options.signal));
  } catch (error) {
    if (!hasCode(error, 'NotFound')) throw error;
    options.logger.warning(`file '${file.path}' vanished while escale was reading it`);
    return undefined;
  }
}

/** The report key of a planned outcome that is not carried out (all of them in a dry run). */
const PLANNED: Record<PlaceholderFixOutcome, PlaceholderOutcome> = { write: 'to-write', keep: 'kept', known: 'known', 'has-data': 'has-data' };

function count<K extends string>(tally: Partial<Record<K, number>>, key: K): void {
  tally[key] = (tally[key] ?? 0) + 1;
}

/** Rebuilds the placeholders of a placeholder relay (relay-format.md P7.1, with plaintext checksums). */
export async function recoverPlaceholders(relay: PlaceholderRelay, local: LocalPort, options: RecoveryOptions): Promise<RecoveryReport> {
  const report: RecoveryReport = { flavour: 'placeholder', files: 0, placeholders: {}, pages: [], locked: [] };
  const files = new Map<RelPath, ScannedLocal>();
  for await (const file of uploadCandidates(local, options.mode, options.signal)) files.set(file.path, file);
  report.files = files.size;
  const snapshot = await relay.crawl(options.signal);
  const steps = planPlaceholderFix({ paths: [...files.keys()], relay: snapshot.resources, fast: options.fast, update: options.update });
  let lastProgress = options.now();
  for (const [i, step] of steps.entries()) {
    if (options.now() - lastProgress >= PERCENT_PROGRESS_INTERVAL_MS) {
      options.progress(percentProgress(i, steps.length));
      lastProgress = options.now();
    }
    let outcome: PlaceholderOutcome;
    if (step.outcome !== 'write' || options.dryRun) outcome = PLANNED[step.outcome];
    else {
      const record = await recordOf(local, files.get(step.path) as ScannedLocal, options);
      outcome = record === undefined ? 'vanished' : await relay.restorePlaceholder(step.path, record, { lock: !options.fast, keepExisting: options.update }, options.signal);
    }
    count(report.placeholders, outcome);
    if (outcome === 'locked') {
      options.logger.warning(`file '${step.path}' is locked by another client; its placeholder was not written`);
      report.locked.push(step.path);
    } else if (outcome === 'has-data') {
      options.logger.info(`file '${step.path}' has data on the relay; its placeholder is left to the normal synchronization`);
    }
  }
  return report;
}

/**
 * Rebuilds the persistent indices of an index relay (relay-format.md P7.1): the records of the local files
 * (restricted to `pages` when given), then per page: write lock unless fast, replace the index
 * with them and what it keeps of the current one (`keptExtras`; an index left with nothing is
 * deleted), unlock. `recovering page(s): ...` is printed when pages are named.
 */
export async function recoverIndex(relay: IndexRelay, local: LocalPort, scheme: PageScheme, pages: readonly string[] | undefined, wait: PageLockWait, options: RecoveryOptions): Promise<RecoveryReport> {
  const report: RecoveryReport = { flavour: 'index', files: 0, placeholders: {}, pages: [], locked: [] };
  const wanted = pages === undefined || pages.length === 0 ? undefined : new Set(pages);
  if (wanted !== undefined) options.progress(`recovering page(s): ${[...wanted].join(', ')}`);
  const files: ScannedLocal[] = [];
  for await (const file of uploadCandidates(local, options.mode, options.signal)) {
    if (wanted === undefined || wanted.has(pageOf(file.path, scheme))) files.push(file);
  }
  const records = new Map<RelPath, MetadataRecord>();
  for (const [i, file] of files.entries()) {
    const record = await recordOf(local, file, options);
    if (record !== undefined) records.set(file.path, record);
    if (countProgressDue(i + 1, files.length)) options.progress(`progress: ${i + 1} of ${files.length} files`);
  }
  report.files = records.size;
  for (const [page, paths] of planIndexFix([...records.keys()], scheme, pages)) {
    const entries = paths.map((path) => [path, records.get(path) as MetadataRecord] as const);
    if (options.dryRun) {
      report.pages.push({ page, entries: entries.length, outcome: 'planned' });
      continue;
    }
    const lock = options.fast ? undefined : await relay.lock(page, 'w', { ...wait, ...(options.signal ? { signal: options.signal } : {}) });
    if (lock === 'busy') {
      options.logger.warning(`page '${page}' is locked by another client; its index was not written`);
      report.pages.push({ page, entries: entries.length, outcome: 'busy' });
      report.locked.push(page);
      continue;
    }
    let written: boolean;
    try {
      const extras = await keptExtras(relay, page, paths, local, options);
      written = entries.length > 0 || extras.kept.length > 0;
      if (written) await relay.writePersistentIndex(page, entries, options.signal, extras);
      else await relay.deletePersistentIndex(page, options.signal);
    } finally {
      await lock?.release();
    }
    report.pages.push({ page, entries: entries.length, outcome: written ? 'written' : 'deleted' });
  }
  return report;
}

/**
 * What a rebuilt index keeps of the current one (as a daemon's rewrite does): the entries whose
 * names escale refuses (other clients', 0.7 ones in particular, still find their files), except
 * those of a name the rebuilt index now lists, and the index's spelling of every name it lists
 * (0.7 clients match names byte for byte); a name new to the index takes the folder's spelling. An
 * index that cannot be read keeps nothing, with a warning (fix is what repairs a broken index).
 */
async function keptExtras(relay: IndexRelay, page: string, paths: readonly RelPath[], local: LocalPort, options: RecoveryOptions): Promise<IndexExtras> {
  let current: IndexExtras;
  try {
    current = await relay.readPersistentIndex(page, options.signal);
  } catch (error) {
    if (options.signal?.aborted || failsWholeRelay(error)) throw error;
    options.logger.warning(`page '${page}': the current index cannot be read (${(error as Error).message}); the entries escale does not sync, if it held any, are not kept`);
    return { spellings: new Map(), kept: [] };
  }
  const written = new Set<string>(paths);
  const folders = folderSpellings(current.spellings);
  const spellings = new Map<RelPath, RelayPath>();
  for (const path of paths) {
    const inIndex = spellAs(path, current.spellings, folders);
    const spelled = inIndex !== path ? inIndex : (local.spelling?.(path) ?? path);
    if (spelled !== path) spellings.set(path, spelled);
  }
  return { spellings, kept: current.kept.filter((entry) => !written.has(entry.name.normalize('NFC'))) };
}
