import { hasCode } from '../core/errors.js';
import type { RelPath } from '../core/relpath.js';
import type { BaseVersion } from '../local/base-store.js';
import { sameIdentity } from '../local/file-identity.js';
import { pageOf, type PageScheme } from '../relay/protocol/pages.js';
import { relationToBase } from './base.js';
import { compareWithRecord } from './compare.js';
import type { AccessRule, LocalFile, SyncMode } from './model.js';
import { mtimeSecOf, type MetadataRecord } from '../relay/protocol/records.js';

// The pure decisions of the index flavour (sync-rules.md R5, relay-format.md P4.8–P4.10):
// which local files go into a page's next update, which entries of a page a puller wants, and
// what a reader does with a pending update when it leaves the page. No I/O, no clock.

/** Change detectors and the index flavour's comparison (sync-rules.md R3.2 with step 0). */
export interface Detectors {
  readonly useMtime: boolean;
  readonly useChecksum: boolean;
}

/**
 * Whether the push side must know the local checksum of `file` to compare it with `record`: with a
 * base, unless the file kept the identity it had when agreed (then it is unchanged); without one,
 * unless step 0 (equal mtimes) decides.
 */
export function pushNeedsChecksum(file: LocalFile, record: MetadataRecord | undefined, detectors: Detectors, base?: BaseVersion): boolean {
  if (!detectors.useChecksum || record === undefined) return false;
  if (base !== undefined) return !sameIdentity(file, base);
  // why: step 0 (equal mtimes) decides without a checksum.
  return !(detectors.useMtime && record.timestamp !== undefined && record.timestamp === mtimeSecOf(file.mtimeMs));
}

/** Why a local file does or does not go into an update (`skip-relay-changed`: the relay's version is newer than the base and ours is not). */
export type PushOutcome = 'skip-unchanged' | 'skip-relay-changed' | 'send-new' | 'send-update';

/** One examined local file. */
export interface PushDecision {
  readonly file: LocalFile;
  readonly outcome: PushOutcome;
  readonly why: string;
  /** The file and its index entry hold the same content (equal checksums): their agreement may be recorded as the base. */
  readonly identical?: MetadataRecord;
}

/** What `selectPushBatch` decided for one page. */
export interface PushBatch {
  /** Every examined file, in order (the ones sent and the ones skipped). */
  readonly decisions: PushDecision[];
  /** The files that go into the update, in order. */
  readonly send: LocalFile[];
  /** The files not examined because the batch reached `maxBytes`: they wait for a later update. */
  readonly rest: LocalFile[];
  /** Plaintext bytes of `send`. */
  readonly bytes: number;
}

/** Inputs of `selectPushBatch`. */
export interface PushBatchInput extends Detectors {
  /** The page's pending local files in scan order (already filtered; readable). */
  readonly files: readonly LocalFile[];
  /** The page's persistent index as currently on the relay. */
  readonly index: ReadonlyMap<RelPath, MetadataRecord>;
  /** `maxpagesize` in bytes: the file that makes the total exceed it is the last one examined. */
  readonly maxBytes: number;
  /** Per path, the version this client last agreed on with the relay. */
  readonly base: ReadonlyMap<RelPath, BaseVersion>;
  /** This client's name: an entry it pushed itself that differs from the local file is sent again (`ownPushDiffers`). */
  readonly client: string;
}

/**
 * Whether `record` is `client`'s own push and `file` differs from it (by checksum when both have
 * one, else by mtime). Only this client writes entries naming it, so once it has a base for the path
 * (it ran here before) such a file changed after that push, whatever the mtimes (restored with an
 * older mtime, a clock set back) and whatever the base says (an agreement lost to a crash between the
 * push and its record): it is sent, never pulled over. Without a base (a client set up again under
 * its old name, its folder restored from a backup) the rules without a base decide, as in 0.7.
 */
export function ownPushDiffers(file: LocalFile, record: MetadataRecord, client: string, detectors: Detectors): boolean {
  if (record.pusher !== client) return false;
  if (detectors.useChecksum && file.checksum !== undefined && record.checksum !== undefined) return file.checksum !== record.checksum;
  return detectors.useMtime && record.timestamp !== undefined && record.timestamp !== mtimeSecOf(file.mtimeMs);
}

/**
 * Chooses the files of one page's next update (relay-format.md P4.8 step 5). With a base (and both
 * detectors not off): a file changed since the base while its index entry did not is sent, one whose
 * entry changed while the file did not is left to the download phase, and one where neither changed
 * is skipped, whatever the mtimes say. Otherwise (no base, or both changed: last-writer-wins until
 * issue 16) a file with an index entry that compare(local-newer?) finds unchanged is skipped (when
 * both detectors are off nothing is ever skipped); every other file is sent. Examination stops after
 * the file whose size takes the sent total over `maxBytes` (so an update may exceed it by one file).
 */
export function selectPushBatch(input: PushBatchInput): PushBatch {
  const decisions: PushDecision[] = [];
  const send: LocalFile[] = [];
  let bytes = 0;
  let examined = 0;
  const detectorsOn = input.useMtime || input.useChecksum;
  for (const file of input.files) {
    examined += 1;
    const record = input.index.get(file.path);
    const relation = detectorsOn ? relationToBase(file, record, input.base.get(file.path)) : 'no-base';
    const identical = record !== undefined && identicalContent(file, record, input) ? { identical: record } : {};
    if (record === undefined) {
      decisions.push({ file, outcome: 'send-new', why: 'not in the page index' });
    } else if (relation === 'in-sync') {
      decisions.push({ file, outcome: 'skip-unchanged', why: 'neither side changed since the base' });
      continue;
    } else if (relation !== 'no-base' && ownPushDiffers(file, record, input.client, input)) {
      decisions.push({ file, outcome: 'send-update', why: "the local file differs from this client's own push (changed after it, whatever the mtimes)" });
    } else if (relation === 'relay-changed') {
      decisions.push({ file, outcome: 'skip-relay-changed', why: 'the index entry changed since the base, the local file did not', ...identical });
      continue;
    } else if (relation === 'local-changed') {
      decisions.push({ file, outcome: 'send-update', why: 'the local file changed since the base, the index entry did not' });
    } else {
      // TODO(issue 16): 'both-changed' (a concurrent edit) becomes a conflict copy instead of last-writer-wins.
      const local = { mtimeSec: mtimeSecOf(file.mtimeMs), ...(file.checksum === undefined ? {} : { checksum: file.checksum }) };
      const result = compareWithRecord('local-newer', local, record, { ...input, indexFlavour: true });
      if (detectorsOn && !result.modified) {
        decisions.push({ file, outcome: 'skip-unchanged', why: result.why, ...identical });
        continue;
      }
      decisions.push({ file, outcome: 'send-update', why: detectorsOn ? result.why : 'timestamps and checksums are off' });
    }
    send.push(file);
    bytes += file.size;
    if (bytes > input.maxBytes) break;
  }
  return { decisions, send, rest: input.files.slice(examined), bytes };
}

/** Whether `file` and `record` hold the same content by checksum (the detectors' step 2). */
function identicalContent(file: LocalFile, record: MetadataRecord, detectors: Detectors): boolean {
  return detectors.useChecksum && file.checksum !== undefined && record.checksum !== undefined && file.checksum === record.checksum;
}

/** What a puller does with one entry of a page (sync-rules.md R5.2, rules I1–I5). */
export type PullOutcome = 'skip-filtered' | 'skip-access' | 'skip-trusted-present' | 'skip-no-metadata' | 'skip-not-newer' | 'want-new' | 'want-update';

/** One decided entry. */
export interface PullDecision {
  readonly path: RelPath;
  /** I1–I5 of sync-rules.md R5.2, or a base rule: base-relay (fetch), base-local and base-same (keep). */
  readonly rule: 'I1' | 'I2' | 'I3' | 'I4' | 'I5' | 'base-relay' | 'base-local' | 'base-same' | 'own-push';
  readonly outcome: PullOutcome;
  readonly record: MetadataRecord;
  /** The local file this entry would replace, as scanned. */
  readonly local?: LocalFile;
  readonly why: string;
  /** The local file holds the entry's content (equal checksums): their agreement may be recorded as the base. */
  readonly identical?: boolean;
}

/** Inputs of `decidePullEntry`. */
export interface PullEntryContext extends Detectors {
  readonly mode: SyncMode;
  /** `pull overwrite`: take incoming entries without comparing (outside lookup mode). */
  readonly trust: boolean;
  /** The entry list is the full persistent index, looking for files this client lacks. */
  readonly lookupMissing: boolean;
  readonly acceptsRemote: (path: RelPath) => boolean;
  readonly access: (path: RelPath) => AccessRule;
  /** Per path, the version this client last agreed on with the relay. */
  readonly base: ReadonlyMap<RelPath, BaseVersion>;
  /** This client's name: its own push is never pulled over a local file that differs from it (`ownPushDiffers`). */
  readonly client: string;
}

/**
 * Whether a puller must know the local checksum of `local` to decide on `record` (rule I4, or the
 * base rules: unless the file kept the identity it had when agreed).
 */
export function pullNeedsChecksum(local: LocalFile | undefined, record: MetadataRecord, context: PullEntryContext): boolean {
  if (local === undefined || !context.useChecksum || record.checksum === undefined) return false;
  const base = context.base.get(local.path);
  if (base !== undefined) return !sameIdentity(local, base);
  if (context.trust && !context.lookupMissing) return false;
  return !(context.useMtime && record.timestamp !== undefined && record.timestamp === mtimeSecOf(local.mtimeMs));
}

/**
 * Decides one entry of a page for a puller (rules I1–I5 of sync-rules.md R5.2). With a base, a
 * present local file is decided by what changed since it, whatever the mtimes say (and before `pull
 * overwrite`, so that a local edit of a file whose entry did not change is never overwritten): entry
 * changed and file not → fetch (base-relay); file changed and entry not → keep (base-local); neither →
 * keep (base-same). Both changed, or no base: the rules without a base (last-writer-wins until issue 16).
 */
export function decidePullEntry(path: RelPath, record: MetadataRecord, local: LocalFile | undefined, context: PullEntryContext): PullDecision {
  const base = { path, record, ...(local === undefined ? {} : { local }) };
  if (!context.acceptsRemote(path)) return { ...base, rule: 'I1', outcome: 'skip-filtered', why: 'filtered out' };
  if (context.access(path).write === false) return { ...base, rule: 'I1', outcome: 'skip-access', why: 'the local file may not be written (w-)' };
  if (local !== undefined) {
    const identical = identicalContent(local, record, context) ? { identical: true } : {};
    if (context.trust && context.lookupMissing) return { ...base, rule: 'I2', outcome: 'skip-trusted-present', why: 'pull overwrite: present locally', ...identical };
    if (record.timestamp !== undefined || record.checksum !== undefined) {
      const relation = relationToBase(local, record, context.base.get(path));
      if ((relation === 'relay-changed' || relation === 'both-changed') && ownPushDiffers(local, record, context.client, context)) {
        return { ...base, rule: 'own-push', outcome: 'skip-not-newer', why: "this client's own push, and the local file differs from it: the local file changed after it (the push side sends it)" };
      }
      switch (relation) {
        case 'relay-changed':
          return { ...base, rule: 'base-relay', outcome: 'want-update', why: 'the index entry changed since the base, the local file did not' };
        case 'local-changed':
          return { ...base, rule: 'base-local', outcome: 'skip-not-newer', why: 'the local file changed since the base, the index entry did not' };
        case 'in-sync':
          return { ...base, rule: 'base-same', outcome: 'skip-not-newer', why: 'neither side changed since the base' };
        case 'both-changed':
        case 'no-base':
          // TODO(issue 16): 'both-changed' (a concurrent edit) becomes a conflict copy instead of last-writer-wins.
          break;
      }
    }
    if (!context.trust || context.lookupMissing) {
      if (record.timestamp === undefined && record.checksum === undefined) {
        return { ...base, rule: 'I3', outcome: 'skip-no-metadata', why: `missing meta information for file '${path}'` };
      }
      const side = { mtimeSec: mtimeSecOf(local.mtimeMs), ...(local.checksum === undefined ? {} : { checksum: local.checksum }) };
      const result = compareWithRecord('remote-newer', side, record, { ...context, indexFlavour: true });
      if (!result.modified) return { ...base, rule: 'I4', outcome: 'skip-not-newer', why: result.why, ...identical };
      return { ...base, rule: 'I5', outcome: 'want-update', why: result.why };
    }
    return { ...base, rule: 'I5', outcome: 'want-update', why: 'pull overwrite' };
  }
  return { ...base, rule: 'I5', outcome: 'want-new', why: 'no local file' };
}

/** What a reader does with the page's pending update when it leaves the page (relay-format.md P4.10, fixed F-4 and F-5). */
export type ConsumeDecision =
  /** Every entry was pushed by this client: never consume one's own update (relay-format.md F-4). */
  | 'own-update'
  /** This client is already a recorded puller: nothing to write. */
  | 'already-recorded'
  /** This client is the last puller needed: delete the update (index first, then data). */
  | 'delete'
  /** Other pullers still need it: rewrite the update index with the same entries and this client added. */
  | 'record';

/** Inputs of `decideConsumption`. */
export interface ConsumeInput {
  readonly client: string;
  /** `puller count`: unset or 1 deletes on the first consumer; N ≥ 2 waits for N distinct pullers. */
  readonly pullerCount?: number;
  /** The update's entries (may be empty for an orphan data file or a 0.7 wiped update). */
  readonly entries: ReadonlyMap<RelPath, MetadataRecord>;
  /** The update's puller names as read (Python's empty phantom names included). */
  readonly pullers: readonly string[];
}

/**
 * Decides the consumption of a pending update (relay-format.md P4.10 with F-4 and F-5 fixed): pullers
 * are counted as distinct non-empty names other than the update's pushers; the update is deleted
 * once they reach `puller count` (or at once when it is unset or 1).
 */
export function decideConsumption(input: ConsumeInput): ConsumeDecision {
  const pushers = new Set<string>();
  for (const record of input.entries.values()) if (record.pusher !== undefined) pushers.add(record.pusher);
  if (input.entries.size > 0 && pushers.size === 1 && pushers.has(input.client)) return 'own-update';
  const counted = new Set(input.pullers.filter((name) => name !== '' && !pushers.has(name)));
  const needed = input.pullerCount === undefined || input.pullerCount < 1 ? 1 : input.pullerCount;
  if (counted.has(input.client)) return counted.size >= needed ? 'delete' : 'already-recorded';
  return counted.size + 1 >= needed ? 'delete' : 'record';
}

/** The puller names to write back when recording `client`: distinct non-empty names, in order, then `client`. */
export function pullersAfterRecording(pullers: readonly string[], client: string): string[] {
  const out: string[] = [];
  for (const name of pullers) if (name !== '' && !out.includes(name)) out.push(name);
  if (!out.includes(client)) out.push(client);
  return out;
}

/** Failed reads of one permanently unreadable update after which a reader gives it up. */
export const MAX_UPDATE_READ_ATTEMPTS = 3;

/**
 * Whether a failure to read a pending update looks permanent, so that it counts towards giving the
 * update up: a corrupt update index or archive (bad bzip2, bad tar), a failed integrity check
 * (Fernet HMAC), a hostile member name. Transient and local failures (network, disk full, a
 * vanished file, a refused permission) are retried without counting.
 */
export function isUnreadableUpdateError(error: unknown): boolean {
  return hasCode(error, 'CorruptRecord', 'Integrity', 'InvalidName');
}

/** Whether an update is this client's own (every entry pushed by it) or already consumed by it. */
export function updateDoneFor(client: string, input: Omit<ConsumeInput, 'client' | 'pullerCount'>): boolean {
  const decision = decideConsumption({ ...input, client });
  return decision === 'own-update' || decision === 'already-recorded';
}

/**
 * The local files the upload phase considers, grouped by page in listing order (sync-rules.md
 * R5.4): files whose access modifier is `r-` are left out.
 */
export function filesByPage<T extends { readonly path: RelPath }>(files: Iterable<T>, scheme: PageScheme, access: (path: RelPath) => AccessRule): Map<string, T[]> {
  const pages = new Map<string, T[]>();
  for (const file of files) {
    if (access(file.path).read === false) continue;
    const page = pageOf(file.path, scheme);
    let list = pages.get(page);
    if (list === undefined) pages.set(page, (list = []));
    list.push(file);
  }
  return pages;
}

/** Whether a mode pushes (`upload`, `shared`, `conservative`). */
export function modePushes(mode: SyncMode): boolean {
  return mode !== 'download';
}

/** Whether a mode pulls (`download`, `shared`, `conservative`). */
export function modePulls(mode: SyncMode): boolean {
  return mode !== 'upload';
}

/** Whether the upload phase repeats passes until every pending file is sent (sync-rules.md R5.4, R5.5). */
export function uploadRepeats(mode: SyncMode, priority: 'upload' | undefined): boolean {
  return mode === 'upload' || (priority === 'upload' && (mode === 'shared' || mode === 'conservative'));
}

/**
 * Lines of a `successfully uploaded files:` / `successfully downloaded files:` report (sync-rules.md R1.2): files
 * in the root as `'<name>'`, others grouped per folder as `in '<dir>':` then ` + '<name>'`.
 */
export function transferReport(paths: readonly RelPath[]): string[] {
  const byDir = new Map<string, string[]>();
  for (const path of paths) {
    const slash = path.lastIndexOf('/');
    const dir = slash < 0 ? '' : path.slice(0, slash);
    let names = byDir.get(dir);
    if (names === undefined) byDir.set(dir, (names = []));
    names.push(path.slice(slash + 1));
  }
  const lines: string[] = [];
  for (const [dir, names] of [...byDir].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    if (dir === '') for (const name of names) lines.push(`'${name}'`);
    else {
      lines.push(`in '${dir}':`);
      for (const name of names) lines.push(` + '${name}'`);
    }
  }
  return lines;
}
