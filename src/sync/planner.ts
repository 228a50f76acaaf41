import type { RelPath } from '../core/relpath.js';
import type { BaseVersion } from '../local/base-store.js';
import { relationToBase, type BaseRelation } from './base.js';
import { compareWithRecord } from './compare.js';
import type { AccessRule, Action, LocalFile, SyncMode } from './model.js';
import { mtimeSecOf, sameVersion, type MetadataRecord, type RemoteFile } from '../relay/protocol/records.js';
import { decideDownload, decideUpload } from './policy.js';
import type { LocalState, RelayState } from './policy.js';

/**
 * Everything the placeholder planner decides from. The contract with the engine:
 *
 * - `phase`: the engine should call the planner with `download`, apply those actions, rescan the
 *   local tree and relist the relay, then call it with `upload` (sync-rules.md R1.1: downloads run first). `both`
 *   (the default) plans the two phases from one snapshot, assuming every planned download succeeds
 *   (a path with a planned download is not an upload candidate); it suits dry-run output.
 * - `local`: every local file at a path that passes the file and directory filters, including files
 *   marked `r-` (the planner applies access itself; a local file the planner does not see is taken
 *   as absent, so the engine must never overwrite a file that a download without `replaces` finds).
 *   When `useChecksum` is on, files whose path has a relay record (download) or relay entry
 *   (upload) must carry their plaintext checksum; a missing checksum counts as unknown.
 * - `remote`: what the relay holds, as the protocol layer describes it (hidden names excluded).
 * - `access`: the per-file access modifiers; in conservative mode the engine records `w+` before
 *   each download and `w-` after each upload itself (sync-rules.md R7.2); the planner emits `set-access` for the
 *   third automatic flag (protection of a pre-existing local file).
 * - `acceptsRemote`: the download-side filters (file and directory patterns) for relay paths.
 * - `base`: per path, the version this client last agreed on with the relay (`BaseStore`). With a
 *   base, a side that changed since it wins whatever the mtimes say (rows base-* of the tables); a
 *   concurrent change, or no base, falls back to last-writer-wins by mtime. The engine records a new
 *   base after each transfer; the planner asks for one with `record-base` when it finds the two
 *   sides identical while the base says otherwise.
 */
export interface PlanInput {
  readonly phase?: 'download' | 'upload' | 'both';
  readonly mode: SyncMode;
  readonly client: string;
  /** `puller count`: unset or 1 removes relay data on pull; N ≥ 2 keeps it until N distinct pullers. */
  readonly pullerCount?: number;
  readonly useMtime: boolean;
  readonly useChecksum: boolean;
  readonly local: ReadonlyMap<RelPath, LocalFile>;
  readonly remote: ReadonlyMap<RelPath, RemoteFile>;
  readonly access: (path: RelPath) => AccessRule;
  readonly acceptsRemote: (path: RelPath) => boolean;
  /** This client's requests for re-sends (row resend-missing), which the engine keeps across rounds; none when undefined. */
  readonly resends?: ResendRequests;
  /** The version each path last agreed with the relay (see `base.ts`); empty when none is known. */
  readonly base: ReadonlyMap<RelPath, BaseVersion>;
}

/** What the planner knows of this client's re-send requests (row resend-missing). */
export interface ResendRequests {
  /** Whether this client may still ask for the version `record` of `path` (it has not asked too often). */
  mayAsk(path: RelPath, record: MetadataRecord): boolean;
  /** The version of `path` this client asked for and has not received yet, if any. */
  pending(path: RelPath): MetadataRecord | undefined;
}

/**
 * Whether the data of `record` left the relay too early for this client: `puller count` ≥ 2, and
 * the record names fewer distinct pullers than that, this client not among them (a puller that does
 * not record itself took it: escale 0.7 with `puller count` ≥ 2, relay-format.md P8.1).
 */
export function pulledTooEarly(pullerCount: number | undefined, record: MetadataRecord, client: string): boolean {
  if (pullerCount === undefined || pullerCount < 2 || record.pullers.includes(client)) return false;
  return new Set(record.pullers.filter((name) => name !== '')).size < pullerCount;
}

/** Classifies the relay side of one path for the decision tables. */
export function classifyRelay(remote: RemoteFile | undefined, client: string): RelayState {
  if (remote === undefined) return 'absent';
  if (remote.locked) return 'locked';
  if (remote.record !== undefined) {
    if (remote.record.pusher === client) return 'pushed-by-me';
    return remote.hasData ? 'data+record' : 'record-only';
  }
  if (remote.hasData) return 'data-without-record';
  return remote.recordProblem !== undefined ? 'unreadable-record' : 'absent';
}

/** Classifies the local side of one path against the relay record (sync-rules.md R3.2 in both directions). */
export function classifyLocal(
  local: LocalFile | undefined,
  record: MetadataRecord | undefined,
  options: { useMtime: boolean; useChecksum: boolean },
): LocalState {
  if (local === undefined) return 'absent';
  if (record === undefined) return 'present';
  const side = { mtimeSec: mtimeSecOf(local.mtimeMs), ...(local.checksum === undefined ? {} : { checksum: local.checksum }) };
  const remoteNewer = compareWithRecord('remote-newer', side, record, options);
  if (remoteNewer.step === 2) return 'same';
  const localNewer = compareWithRecord('local-newer', side, record, options);
  if (remoteNewer.modified && localNewer.modified) return 'conflict';
  if (remoteNewer.modified) return 'older';
  if (localNewer.modified) return 'newer';
  return 'undetermined';
}

/** Whether a pull by `client` must leave the data on the relay (sync-rules.md R6, counting distinct puller names). */
export function keepOnRelayAfterPull(pullerCount: number | undefined, record: MetadataRecord | undefined, client: string): boolean {
  if (pullerCount === undefined || pullerCount < 2) return false;
  const others = new Set((record?.pullers ?? []).filter((name) => name !== '' && name !== client));
  // why: this pull makes |others| + 1 distinct pullers; the N-th distinct puller removes the data.
  return others.size + 1 < pullerCount;
}

/** Relay paths and local paths in code-unit order, so that plans do not depend on insertion order. */
function sortedKeys<V>(map: ReadonlyMap<RelPath, V>): RelPath[] {
  return [...map.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/** The note for identical content whose mtime differs (the original's mtime reset, sync-rules.md B-4). */
function identicalNote(path: RelPath, local: LocalFile, record: MetadataRecord, input: PlanInput): Action | undefined {
  if (input.mode === 'upload' || !input.useMtime || record.timestamp === undefined) return undefined;
  if (mtimeSecOf(local.mtimeMs) === record.timestamp) return undefined;
  return {
    kind: 'note',
    path,
    level: 'debug',
    message: `file '${path}' has the same content as the relay copy but a different mtime; not transferred`,
    resetLocalMtimeTo: record.timestamp,
  };
}

/** The note explaining why a differing file is never sent nor fetched when timestamps are off. */
function undeterminedNote(path: RelPath, input: PlanInput, local: LocalFile, record: MetadataRecord): Action | undefined {
  if (input.useMtime || !input.useChecksum || local.checksum === undefined || record.checksum === undefined) return undefined;
  return {
    kind: 'note',
    path,
    level: 'debug',
    message: `file '${path}' differs from the relay copy, but with timestamps disabled neither side is newer; not transferred`,
  };
}

/** Plans the download phase (sync-rules.md R4.1, D1–D6); returns actions in path order. */
function planDownloads(input: PlanInput): Action[] {
  const actions: Action[] = [];
  for (const path of sortedKeys(input.remote)) {
    if (!input.acceptsRemote(path)) continue;
    const remote = input.remote.get(path);
    const relay = classifyRelay(remote, input.client);
    const record = remote?.record;
    const localFile = input.local.get(path);
    const local = classifyLocal(localFile, record, input);
    const alreadyPulled = record?.pullers.includes(input.client) ?? false;
    const base = baseRelation(input, path, localFile, remote, relay);
    const decision = decideDownload({
      mode: input.mode,
      local,
      relay,
      access: input.access(path),
      consumeAllowed: input.pullerCount === 1 && !alreadyPulled,
      registerAllowed: (input.pullerCount ?? 0) >= 2 && !alreadyPulled,
      resendAllowed: record !== undefined && pulledTooEarly(input.pullerCount, record, input.client) && (input.resends?.mayAsk(path, record) ?? false),
      base,
    });
    // why: D2 — with timestamps on, a record without a timestamp cannot be compared; say so once.
    const missingTimestamp = input.useMtime && record !== undefined && record.timestamp === undefined;
    switch (decision.outcome) {
      case 'skip':
        if (decision.rule === 'D4' && localFile !== undefined && record !== undefined) {
          if (missingTimestamp) actions.push({ kind: 'note', path, level: 'warning', message: `corrupt meta information for file '${path}'` });
          const note = local === 'same' ? identicalNote(path, localFile, record, input) : local === 'undetermined' ? undeterminedNote(path, input, localFile, record) : undefined;
          if (note) actions.push(note);
        }
        if (local === 'same' && localFile !== undefined && record !== undefined) actions.push(...recordBase(path, localFile, record, relay, base));
        break;
      case 'skip-locked':
        actions.push({ kind: 'note', path, level: 'debug', message: `file '${path}' is locked by a transfer; skipped this round` });
        break;
      case 'protect':
        actions.push({ kind: 'set-access', path, modifiers: 'w-', reason: 'protect-pre-existing' });
        actions.push({ kind: 'note', path, level: 'info', message: `local file '${path}' existed before escale received it; protected from downloads (w-)` });
        break;
      case 'leave-without-metadata': {
        const detail = remote?.recordProblem === undefined ? '' : ` (${remote.recordProblem})`;
        actions.push({
          kind: 'note',
          path,
          level: 'warning',
          message: `missing meta information for file '${path}'${detail}; the relay copy is left in place until its pusher sends it again`,
        });
        break;
      }
      case 'consume-duplicate':
        actions.push({ kind: 'consume', path, reason: 'duplicate', ...(localFile === undefined || record === undefined ? {} : { local: localFile, record }) });
        break;
      case 'consume-outdated':
        actions.push({ kind: 'consume', path, reason: 'outdated' });
        break;
      case 'request-resend':
        if (record !== undefined) actions.push({ kind: 'request-resend', path, reason: 'pulled-too-early', record });
        break;
      case 'register-puller':
        // why: 'same' means equal checksums (sync-rules.md R3.2 step 2), so the record has one.
        if (record?.checksum !== undefined && localFile !== undefined) actions.push({ kind: 'register-puller', path, reason: 'identical', record: { ...record, checksum: record.checksum }, local: localFile });
        break;
      case 'download-new':
      case 'download-update':
        if (record === undefined) actions.push({ kind: 'note', path, level: 'warning', message: `missing meta information for file '${path}'` });
        else if (missingTimestamp) actions.push({ kind: 'note', path, level: 'warning', message: `corrupt meta information for file '${path}'` });
        actions.push({
          kind: 'download',
          path,
          reason: decision.outcome === 'download-new' ? 'new' : 'update',
          ...(record === undefined ? {} : { record }),
          keepOnRelay: keepOnRelayAfterPull(input.pullerCount, record, input.client),
          ...(localFile === undefined ? {} : { replaces: localFile }),
        });
        break;
    }
  }
  return actions;
}

/** Plans the upload phase (sync-rules.md R4.2, U2–U6); returns actions in path order. */
function planUploads(input: PlanInput, downloading: ReadonlySet<RelPath>): Action[] {
  const actions: Action[] = [];
  for (const path of sortedKeys(input.local)) {
    if (downloading.has(path)) continue;
    const localFile = input.local.get(path);
    if (localFile === undefined) continue;
    const remote = input.remote.get(path);
    const relay = classifyRelay(remote, input.client);
    const requested = input.resends?.pending(path);
    // why: once this client asked for a re-send, the relay shows nothing (or the old record) until
    // the pusher sends again; the version asked for stands in for the record meanwhile.
    const resendPending = requested !== undefined && (remote?.record === undefined ? !remote?.hasData : sameVersion(remote.record, requested));
    const record = resendPending ? requested : remote?.record;
    const local = classifyLocal(localFile, record, input);
    const base = baseRelation(input, path, localFile, remote, relay);
    const decision = decideUpload({
      mode: input.mode,
      local,
      relay,
      access: input.access(path),
      detectorsEnabled: input.useMtime || input.useChecksum,
      resendPending,
      base,
    });
    switch (decision.outcome) {
      case 'skip':
        if (decision.rule === 'resend-pending') {
          actions.push({ kind: 'note', path, level: 'debug', message: `file '${path}' is not sent: this client asked for a newer version of it to be sent again` });
          break;
        }
        if (decision.rule === 'U6' && record !== undefined && local === 'undetermined') {
          const note = undeterminedNote(path, input, localFile, record);
          if (note) actions.push(note);
        }
        break;
      case 'skip-locked':
        actions.push({ kind: 'note', path, level: 'debug', message: `file '${path}' is locked by a transfer; skipped this round` });
        break;
      case 'skip-identical': {
        const note = record === undefined ? undefined : identicalNote(path, localFile, record, input);
        if (note) actions.push(note);
        if (record !== undefined) actions.push(...recordBase(path, localFile, record, relay, base));
        break;
      }
      case 'upload-new':
      case 'upload-refresh':
      case 'upload-update':
        actions.push({
          kind: 'upload',
          path,
          reason: decision.outcome === 'upload-new' ? 'new' : decision.outcome === 'upload-refresh' ? 'refresh-metadata' : 'update',
          local: localFile,
          ...(remote?.hasData === true ? { replacesData: true } : {}),
        });
        break;
    }
  }
  return actions;
}

/** Where one path stands against its base; a locked resource or one without a readable record has none to compare. */
function baseRelation(input: PlanInput, path: RelPath, local: LocalFile | undefined, remote: RemoteFile | undefined, relay: RelayState): BaseRelation {
  if (relay === 'locked') return 'no-base';
  return relationToBase(local, remote?.record, input.base.get(path));
}

/** A `record-base` action for identical content, unless the base already says the two sides agree. */
function recordBase(path: RelPath, local: LocalFile, record: MetadataRecord, relay: RelayState, base: BaseRelation): Action[] {
  if (base === 'in-sync' || relay === 'locked') return [];
  return [{ kind: 'record-base', path, reason: 'identical', local, record }];
}

/** Drops repeated notes and base records (same path and content), e.g. one per phase in a `both` plan. */
function withoutRepeatedNotes(actions: Action[]): Action[] {
  const seen = new Set<string>();
  return actions.filter((action) => {
    if (action.kind !== 'note' && action.kind !== 'record-base') return true;
    const key = action.kind === 'record-base' ? `${action.path}\0record-base` : `${action.path}\0${action.level}\0${action.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Plans one round of the placeholder protocol: the download-phase actions, then the upload-phase
 * actions, each in path order (pure and deterministic; see `PlanInput` for the engine contract).
 */
export function planPlaceholderRound(input: PlanInput): Action[] {
  const phase = input.phase ?? 'both';
  const downloads = phase === 'upload' ? [] : planDownloads(input);
  // why: a path whose download, or re-send, this round asks for is no upload candidate of the same plan.
  const downloading = new Set(downloads.filter((a) => a.kind === 'download' || a.kind === 'request-resend').map((a) => a.path));
  const uploads = phase === 'download' ? [] : planUploads(input, downloading);
  // why: a planned registration or consumption of a duplicate records the base itself once it succeeds.
  const settled = new Set(downloads.filter((a) => a.kind === 'register-puller' || a.kind === 'consume').map((a) => a.path));
  return withoutRepeatedNotes([...downloads, ...uploads.filter((a) => a.kind !== 'record-base' || !settled.has(a.path))]);
}
