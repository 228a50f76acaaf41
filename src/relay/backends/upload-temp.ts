import { createHash, randomBytes } from 'node:crypto';
import type { Logger } from '../../core/log.js';
import { formatDuration, probeRelayClock, type ProbeTarget, type RelayClock } from '../relay-clock.js';

/** Prefix of the hidden names a put uploads to before renaming them into place; never listed. */
export const UPLOAD_TEMP_PREFIX = '.escale-put-';
const SUFFIX = '.tmp';
/** Temporaries left this long (by the relay's clock, or unchanged while watched) are left-overs of a crashed put. */
export const STALE_UPLOAD_TEMP_MS = 24 * 3600 * 1000;
/**
 * A temporary whose target was completed at least this long after the temporary's last write
 * belongs to a put that died (a later put of the same name succeeded), so it is deleted at once.
 * Both times are the relay's mtimes, so no two machines' clocks are compared.
 */
const SUPERSEDED_MS = 3000;
const TAGGED = /^\.escale-put-([0-9a-f]{8})-[0-9a-f]{16}\.tmp$/;

/** Base name of a new upload temporary for a put of `name`: it carries a tag of the target name. */
export function uploadTempName(name: string): string {
  return `${UPLOAD_TEMP_PREFIX}${tagOf(name)}-${randomBytes(8).toString('hex')}${SUFFIX}`;
}

/** Whether a base name is an upload temporary (tagged or of the earlier untagged form). */
export function isUploadTempName(name: string): boolean {
  return name.startsWith(UPLOAD_TEMP_PREFIX) && name.endsWith(SUFFIX);
}

/** One item of a folder listing, as the backend read it. */
export interface ListedName {
  readonly name: string;
  /** Size in bytes, when the listing gives it (a growing temporary is making progress). */
  readonly size?: number;
  /** Server modification time in ms; undefined when the server gave none. */
  readonly mtimeMs?: number;
}

/** An upload temporary that is a left-over, and the evidence for the log. */
export interface LeftoverTemp {
  readonly name: string;
  readonly evidence: string;
}

/**
 * The upload temporaries of one folder listing (`dir`) that are left-overs: superseded (their
 * target is in the same listing and was written completely after them), or stale by
 * `clock.judge`: older than `staleAfterMs` by the relay's clock, or unchanged that long while this
 * client watched. Never by the local wall clock, so another client's upload in progress is kept
 * however far this machine's clock is ahead.
 */
export function leftoverTemps(items: readonly ListedName[], clock: Pick<RelayClock, 'judge'>, dir: string, staleAfterMs = STALE_UPLOAD_TEMP_MS): LeftoverTemp[] {
  const targets = new Map<string, number>();
  for (const item of items) {
    const mtimeMs = mtimeOf(item);
    if (!isUploadTempName(item.name) && mtimeMs !== undefined) {
      const tag = tagOf(item.name);
      targets.set(tag, Math.max(targets.get(tag) ?? -Infinity, mtimeMs));
    }
  }
  const out: LeftoverTemp[] = [];
  for (const item of items) {
    if (!isUploadTempName(item.name)) continue;
    const mtimeMs = mtimeOf(item);
    const tag = TAGGED.exec(item.name)?.[1];
    const target = tag === undefined ? undefined : targets.get(tag);
    if (target !== undefined && mtimeMs !== undefined && target - mtimeMs >= SUPERSEDED_MS) {
      out.push({ name: item.name, evidence: `a later put of its target completed ${formatDuration(target - mtimeMs)} after its last write` });
      continue;
    }
    const verdict = clock.judge(pathIn(dir, item.name), { size: item.size ?? -1, ...(mtimeMs === undefined ? {} : { mtimeMs }) }, staleAfterMs);
    if (verdict.stale) out.push({ name: item.name, evidence: verdict.evidence });
  }
  return out;
}

/** What `removeLeftoverTemps` needs of its backend. */
export interface TempCleaner {
  /** The backend itself: its clock judges, and its put, stat and delete probe the clock when needed. */
  readonly backend: ProbeTarget;
  /** Deletes one temporary of the folder by base name (may throw; the failure is logged). */
  remove(name: string): Promise<void>;
  readonly logger?: Logger;
  /** Stale age (default STALE_UPLOAD_TEMP_MS). */
  readonly staleAfterMs?: number;
}

/**
 * Removes the left-over upload temporaries of one folder listing (see `leftoverTemps`), each
 * logged with its evidence. When some temporary has an mtime and the relay's clock is not known
 * yet, the clock is learned first (one probe per connection). Best effort: a failed removal is
 * logged and tried again at a later listing. Returns how many were removed.
 */
export async function removeLeftoverTemps(items: readonly ListedName[], dir: string, cleaner: TempCleaner): Promise<number> {
  const temps = items.filter((item) => isUploadTempName(item.name));
  if (temps.length === 0) return 0;
  const { backend, logger } = cleaner;
  if (!backend.clock.known && temps.some((item) => mtimeOf(item) !== undefined)) await probeRelayClock(backend, logger === undefined ? {} : { logger });
  let removed = 0;
  for (const { name, evidence } of leftoverTemps(items, backend.clock, dir, cleaner.staleAfterMs)) {
    const path = pathIn(dir, name);
    try {
      await cleaner.remove(name);
      backend.clock.forget(path);
      logger?.info(`removed the upload temporary '${path}' left by an interrupted put: ${evidence}`);
      removed += 1;
    } catch (error) {
      logger?.debug(`cannot remove the upload temporary '${path}' (${evidence}): ${(error as Error).message}`);
    }
  }
  return removed;
}

function mtimeOf(item: ListedName): number | undefined {
  return item.mtimeMs !== undefined && Number.isFinite(item.mtimeMs) ? item.mtimeMs : undefined;
}

function pathIn(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

function tagOf(name: string): string {
  return createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 8);
}
