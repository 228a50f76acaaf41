import type { BaseRelation } from './base.js';
import type { AccessRule, SyncMode } from './model.js';

/**
 * The local side of one path, relative to the relay record (from `compareWithRecord` in both
 * directions): `present` when there is no record to compare with; `same` when the checksums are
 * equal; `older`/`newer` when only one direction is modified; `conflict` when both are (different
 * content, equal mtimes, sync-rules.md R3.2 step 4); `undetermined` when neither is (no timestamp to compare, or
 * timestamps off with differing checksums, or equal mtimes without checksums).
 */
export type LocalState = 'absent' | 'present' | 'same' | 'older' | 'newer' | 'conflict' | 'undetermined';

/**
 * The relay side of one path in the placeholder protocol: `locked` (a lock file exists),
 * `pushed-by-me` (the record's pusher is this client, with or without data), `data+record`,
 * `record-only` (placeholder without data: already consumed), `data-without-record`,
 * `unreadable-record` (no data, placeholder present but not parseable), `absent` (nothing).
 */
export type RelayState =
  | 'absent'
  | 'data+record'
  | 'record-only'
  | 'data-without-record'
  | 'unreadable-record'
  | 'locked'
  | 'pushed-by-me';

/** One cell of the download decision table. */
export interface DownloadCell {
  readonly mode: SyncMode;
  readonly local: LocalState;
  readonly relay: RelayState;
  readonly access: AccessRule;
  /** `puller count` is exactly 1 and this client is not yet in the record's pullers (D4 may consume). */
  readonly consumeAllowed: boolean;
  /** `puller count` is 2 or more and this client is not yet in the record's pullers (identical content registers it). */
  readonly registerAllowed: boolean;
  /**
   * `puller count` is 2 or more, the record names fewer distinct pullers than that and not this
   * client, and this client has not yet asked for this version as often as it may (row `resend-missing`).
   */
  readonly resendAllowed?: boolean;
  /** Where the local file and the relay record stand against the base (`no-base` applies the rules without one). */
  readonly base: BaseRelation;
}

/** One cell of the upload decision table. */
export interface UploadCell {
  readonly mode: SyncMode;
  readonly local: LocalState;
  readonly relay: RelayState;
  readonly access: AccessRule;
  /** At least one of the `modification time` and `checksum` options is on (else U3). */
  readonly detectorsEnabled: boolean;
  /**
   * This client asked for a re-send of the path's version (row resend-missing) and the relay shows
   * nothing newer yet; `local` is then classified against the version asked for.
   */
  readonly resendPending?: boolean;
  /** Where the local file and the relay record stand against the base (`no-base` applies the rules without one). */
  readonly base: BaseRelation;
}

/** What the download phase does with one relay path. */
export type DownloadOutcome =
  | 'skip'
  | 'skip-locked'
  | 'protect'
  | 'leave-without-metadata'
  | 'consume-duplicate'
  | 'consume-outdated'
  | 'register-puller'
  | 'request-resend'
  | 'download-new'
  | 'download-update';

/** What the upload phase does with one local path. */
export type UploadOutcome = 'skip' | 'skip-locked' | 'skip-identical' | 'upload-new' | 'upload-refresh' | 'upload-update';

/** One row of an ordered decision table: the first row whose condition holds decides. */
export interface PolicyRow<Cell, Outcome> {
  /** The rule's name, after sync-rules.md R4.1, R4.2 (D1–D6, U2–U6) where one applies. */
  readonly rule: string;
  /** The condition, in words (printed by dry-run and the table test). */
  readonly doc: string;
  readonly when: (cell: Cell) => boolean;
  readonly outcome: Outcome;
}

/** A decision: the outcome and the row that produced it. */
export interface PolicyDecision<Outcome> {
  readonly rule: string;
  readonly outcome: Outcome;
}

const hasNoData = (relay: RelayState): boolean => relay === 'absent' || relay === 'record-only' || relay === 'unreadable-record';

/** Whether this client would download the version of the cell's record if its data were on the relay. */
function wouldDownload(cell: DownloadCell): boolean {
  const outcome = decideDownload({ ...cell, relay: 'data+record', resendAllowed: false }).outcome;
  return outcome === 'download-new' || outcome === 'download-update';
}

/** The download decision table (sync-rules.md R4.1), first match wins. */
export const DOWNLOAD_RULES: readonly PolicyRow<DownloadCell, DownloadOutcome>[] = [
  { rule: 'mode', doc: 'upload mode never downloads', when: (c) => c.mode === 'upload', outcome: 'skip' },
  { rule: 'locked', doc: 'a transfer holds the lock: retry next round', when: (c) => c.relay === 'locked', outcome: 'skip-locked' },
  // why: an escale 0.7 puller with `puller count` ≥ 2 deletes the data on its first pull and never
  // records itself (relay-format.md P3.5, P8.1), so the other pullers would never get the file. A
  // missing placeholder is the record protocol's own "send it again" (relay-format.md P3.2, P3.11).
  {
    rule: 'resend-missing',
    doc: 'puller count ≥ 2, the data left before that many distinct pullers (this client not among them) and this client would download that version: ask its pusher to send it again',
    when: (c) => c.relay === 'record-only' && c.resendAllowed === true && wouldDownload(c),
    outcome: 'request-resend',
  },
  // why: a placeholder without data means the content was consumed; there is nothing to pull.
  { rule: 'no-data', doc: 'no data on the relay', when: (c) => hasNoData(c.relay), outcome: 'skip' },
  // why: fix — in the original a shared pusher consumed its own upload before anyone pulled it.
  { rule: 'own-push', doc: 'this client pushed it: never pulled nor consumed', when: (c) => c.relay === 'pushed-by-me', outcome: 'skip' },
  // why: with N ≥ 2 pullers, a client that already holds this very version must still count, or the
  // relay copy waits forever for a puller that never downloads it. Recording it writes nothing local,
  // so it comes before the access rules (a w- or protected file holds the version all the same).
  {
    rule: 'D4-register',
    doc: 'puller count ≥ 2, identical content, not yet a recorded puller: record this client as puller without downloading',
    when: (c) => c.registerAllowed && c.local === 'same',
    outcome: 'register-puller',
  },
  { rule: 'D1', doc: 'access forbids writing (w-)', when: (c) => c.access.write === false, outcome: 'skip' },
  {
    rule: 'D1-protect',
    doc: 'conservative: a pre-existing local file with unset write flag is protected (w- recorded)',
    when: (c) => c.mode === 'conservative' && c.local !== 'absent' && c.access.write === undefined,
    outcome: 'protect',
  },
  // why: relay data is downloaded only with a record to verify it against (checksum, timestamp):
  // junk beside the data, or no placeholder at all, is never written as a new local file. 0.7 always
  // writes the placeholder first and cannot pull data without one (relay-format.md F-7); the pusher's U4 sends again.
  {
    rule: 'D3-no-local',
    doc: 'relay data without a readable placeholder and no local copy: never downloaded unverified; warn and leave it (its pusher sends it again, U4)',
    when: (c) => c.relay === 'data-without-record' && c.local === 'absent',
    outcome: 'leave-without-metadata',
  },
  { rule: 'D6', doc: 'no local file: download', when: (c) => c.local === 'absent', outcome: 'download-new' },
  // why: fix of sync-rules.md B-1 — the original deleted the relay copy here and could lose both copies.
  { rule: 'D3', doc: 'relay data without metadata next to a local copy: warn and leave it', when: (c) => c.relay === 'data-without-record', outcome: 'leave-without-metadata' },
  // why: with a base, what changed is known without comparing the clocks of two machines.
  { rule: 'base-relay', doc: 'relay changed since the base, local file unchanged: download, whatever the mtimes', when: (c) => c.base === 'relay-changed', outcome: 'download-update' },
  { rule: 'base-local', doc: 'local file changed since the base, relay unchanged: keep it (the upload phase sends it), whatever the mtimes', when: (c) => c.base === 'local-changed', outcome: 'skip' },
  { rule: 'base-same-consume', doc: 'neither side changed since the base, puller count 1: consume the duplicate', when: (c) => c.base === 'in-sync' && c.consumeAllowed, outcome: 'consume-duplicate' },
  { rule: 'base-same', doc: 'neither side changed since the base: nothing to do', when: (c) => c.base === 'in-sync', outcome: 'skip' },
  // Base 'both-changed' (a concurrent edit) and 'no-base' go on to last-writer-wins by mtime below.
  // TODO(issue 16): 'both-changed' becomes a conflict copy instead of last-writer-wins.
  { rule: 'D5', doc: 'relay copy is newer: download over the local file', when: (c) => c.local === 'older' || c.local === 'conflict', outcome: 'download-update' },
  { rule: 'D4-duplicate', doc: 'puller count 1, identical content: consume', when: (c) => c.consumeAllowed && c.local === 'same', outcome: 'consume-duplicate' },
  { rule: 'D4-outdated', doc: 'puller count 1, relay copy is older: consume', when: (c) => c.consumeAllowed && c.local === 'newer', outcome: 'consume-outdated' },
  { rule: 'D4', doc: 'relay copy is not newer: skip', when: () => true, outcome: 'skip' },
];

/** The upload decision table (sync-rules.md R4.2, U2–U6), first match wins. */
export const UPLOAD_RULES: readonly PolicyRow<UploadCell, UploadOutcome>[] = [
  { rule: 'mode', doc: 'download mode never uploads', when: (c) => c.mode === 'download', outcome: 'skip' },
  { rule: 'r-', doc: 'access forbids reading (r-): never uploaded', when: (c) => c.access.read === false, outcome: 'skip' },
  { rule: 'no-local', doc: 'no local file to send', when: (c) => c.local === 'absent', outcome: 'skip' },
  { rule: 'locked', doc: 'a transfer holds the lock: retry next round', when: (c) => c.relay === 'locked', outcome: 'skip-locked' },
  // why: the placeholder this client deleted to ask for a re-send must not let an older local copy
  // look new (U2) and be sent in the version's place; a newer local edit is sent as usual.
  {
    rule: 'resend-pending',
    doc: 'a re-send this client asked for has not arrived and the local file is not newer than that version: wait for it',
    when: (c) => c.resendPending === true && c.local !== 'newer',
    outcome: 'skip',
  },
  { rule: 'U2', doc: 'unknown to the relay: upload', when: (c) => c.relay === 'absent', outcome: 'upload-new' },
  { rule: 'U3', doc: 'timestamps and checksums both disabled: never re-sent', when: (c) => !c.detectorsEnabled, outcome: 'skip' },
  {
    rule: 'U4',
    doc: 'known without readable metadata: upload to refresh it',
    when: (c) => c.relay === 'data-without-record' || c.relay === 'unreadable-record',
    outcome: 'upload-refresh',
  },
  // why: identical content is never re-transferred, whatever the mtimes say.
  { rule: 'U6-identical', doc: 'identical content: skip', when: (c) => c.local === 'same', outcome: 'skip-identical' },
  // why: only this client writes records naming it, so once it has a base for the path (it ran here
  // before), a local file that differs from its own push changed after it, whatever the mtimes (a file
  // restored with an older mtime, a clock set back) and whatever the base says (an agreement lost to a
  // crash between the push and its record). Without a base (a client set up again under its old name,
  // its folder restored from a backup) the rules without a base decide, as in 0.7.
  {
    rule: 'own-push-differs',
    doc: "the relay holds this client's own push, the local file differs from it and a base exists: upload, whatever the mtimes",
    when: (c) => c.relay === 'pushed-by-me' && c.base !== 'no-base' && (c.local === 'older' || c.local === 'newer' || c.local === 'conflict'),
    outcome: 'upload-update',
  },
  { rule: 'base-local', doc: 'local file changed since the base, relay unchanged: upload, whatever the mtimes', when: (c) => c.base === 'local-changed', outcome: 'upload-update' },
  { rule: 'base-relay', doc: 'relay changed since the base, local file unchanged: never sent back (the download phase takes it)', when: (c) => c.base === 'relay-changed', outcome: 'skip' },
  { rule: 'base-same', doc: 'neither side changed since the base: nothing to send', when: (c) => c.base === 'in-sync', outcome: 'skip' },
  // Base 'both-changed' (a concurrent edit) and 'no-base' go on to last-writer-wins by mtime below.
  // TODO(issue 16): 'both-changed' becomes a conflict copy instead of last-writer-wins.
  { rule: 'U5', doc: 'local file is newer: upload', when: (c) => c.local === 'newer' || c.local === 'conflict', outcome: 'upload-update' },
  { rule: 'U6', doc: 'local file is not newer: skip', when: () => true, outcome: 'skip' },
];

/** Finds the first row of `rules` whose condition holds for `cell`. */
function decide<Cell, Outcome>(rules: readonly PolicyRow<Cell, Outcome>[], cell: Cell): PolicyDecision<Outcome> {
  for (const row of rules) {
    if (row.when(cell)) return { rule: row.rule, outcome: row.outcome };
  }
  // why: both tables end with an unconditional row, so this is unreachable.
  throw new Error('decision table without a default row');
}

/** Decides what the download phase does for one relay path. */
export function decideDownload(cell: DownloadCell): PolicyDecision<DownloadOutcome> {
  return decide(DOWNLOAD_RULES, cell);
}

/** Decides what the upload phase does for one local path. */
export function decideUpload(cell: UploadCell): PolicyDecision<UploadOutcome> {
  return decide(UPLOAD_RULES, cell);
}
