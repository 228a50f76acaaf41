import { createHash, randomBytes } from 'node:crypto';

/** Prefix of the hidden names a put uploads to before renaming them into place; never listed. */
export const UPLOAD_TEMP_PREFIX = '.escale-put-';
const SUFFIX = '.tmp';
/** Temporaries older than this are left-overs of a crashed put and are deleted when seen. */
const STALE_MS = 24 * 3600 * 1000;
/**
 * A temporary whose target was completed at least this long after the temporary's last write
 * belongs to a put that died (a later put of the same name succeeded), so it is deleted at once.
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
  /** Server modification time in ms; undefined when the server gave none. */
  readonly mtimeMs?: number;
}

/**
 * Names of the upload temporaries in one folder listing that are left-overs: older than a day, or
 * superseded (their target is in the same listing and was written completely after them).
 */
export function leftoverTemps(items: readonly ListedName[], now = Date.now()): string[] {
  const targets = new Map<string, number>();
  for (const item of items) {
    if (!isUploadTempName(item.name) && item.mtimeMs !== undefined) {
      const tag = tagOf(item.name);
      targets.set(tag, Math.max(targets.get(tag) ?? -Infinity, item.mtimeMs));
    }
  }
  const out: string[] = [];
  for (const item of items) {
    if (!isUploadTempName(item.name) || item.mtimeMs === undefined || Number.isNaN(item.mtimeMs)) continue;
    const tag = TAGGED.exec(item.name)?.[1];
    const target = tag === undefined ? undefined : targets.get(tag);
    if (now - item.mtimeMs > STALE_MS || (target !== undefined && target - item.mtimeMs >= SUPERSEDED_MS)) out.push(item.name);
  }
  return out;
}

function tagOf(name: string): string {
  return createHash('sha256').update(name, 'utf8').digest('hex').slice(0, 8);
}
