import { randomBytes } from 'node:crypto';
import { hasCode } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { ReportOnce } from '../../core/report-once.js';
import type { RelayPath } from '../../core/relpath.js';
import { readSmall, type Backend, type Entry } from '../backend.js';

/**
 * The change marker: a small file in the relay root that escale's pushers rewrite after each round
 * that changed the relay, so that idle clients learn of a change with one small request instead of
 * a listing. A dot name that no relay name parser takes for anything: escale 0.7 ignores it in both
 * protocols (a placeholder relay keeps only names ending in `.lock`, `.placeholder` and `.message`
 * besides files without a dot; an index relay only `.<P>.index`, `.<P>.lock`, `.<P>.<T>.index` and
 * `.<P>.<T>.data`), and so do escale's own parsers (`classifyRelayName`, `parsePageFileName`).
 * Clients that never touch it (0.7) are still seen at every `refresh` listing.
 */
export const CHANGE_MARKER = '.escale.changed' as RelayPath;

/** Largest marker accepted when read (it holds a client name and a nonce). */
const MAX_MARKER_BYTES = 4096;

/**
 * How far after a listing a write to the marker may still carry the mtime the listing saw, beyond
 * the backend's mtime precision: the coarse clock file systems stamp with lags by up to a tick.
 */
const STAMP_LAG_MS = 20;

/** Options of a ChangeMarker. */
export interface ChangeMarkerOptions {
  readonly client: string;
  readonly logger: Logger;
  /** Local monotonic clock in milliseconds (default `performance.now`). */
  readonly monotonic?: () => number;
}

/** What a listing saw of the marker, and when (monotonic) that listing started. */
export interface MarkerSighting {
  readonly stamp: string;
  readonly listedAtMono: number;
}

/**
 * Touches and polls the change marker of one relay. A poll is one `stat` (or, on a backend whose
 * listings give no mtime, one read of the few bytes of the marker); it answers whether the marker
 * differs from what the last listing saw. Two writes within the backend's mtime precision that
 * leave the same size would look alike, so a listing taken less than that precision after the
 * marker it saw first appeared is confirmed by one more listing (git's "racy" entries).
 */
export class ChangeMarker {
  private readonly monotonic: () => number;
  private readonly reported = new ReportOnce();
  /** The stamp the latest listing saw, the monotonic time it was first seen, and whether a later listing confirmed it. */
  private seen: { stamp: string; firstSeenMono: number; confirmed: boolean } | undefined;

  constructor(
    private readonly backend: Backend,
    private readonly options: ChangeMarkerOptions,
  ) {
    this.monotonic = options.monotonic ?? (() => performance.now());
  }

  /** The stamp of a listed marker entry (undefined: the listing had none). */
  static stampOf(entry: Entry | undefined): string {
    return entry === undefined ? 'absent' : `${entry.size}:${entry.mtimeMs ?? '?'}`;
  }

  /** The monotonic time to record before a listing starts (`listed` takes it back). */
  now(): number {
    return this.monotonic();
  }

  /**
   * Records what a listing that started at `listedAtMono` saw of the marker (its entry, or none).
   * With a backend that lists no mtime, the marker's content is read instead (one small request).
   */
  async listed(entry: Entry | undefined, listedAtMono: number, signal?: AbortSignal): Promise<void> {
    const stamp = entry !== undefined && entry.mtimeMs === undefined ? await this.contentStamp(signal) : ChangeMarker.stampOf(entry);
    const previous = this.seen;
    if (previous !== undefined && previous.stamp === stamp) {
      // why: a listing started a full precision after the stamp was first seen reads every write that could share its mtime.
      if (listedAtMono >= previous.firstSeenMono + this.precisionMs() + STAMP_LAG_MS) previous.confirmed = true;
      return;
    }
    // why: the write behind this stamp happened before the listing ended; a later write with the same mtime, before the end plus the precision.
    this.seen = { stamp, firstSeenMono: this.monotonic(), confirmed: stamp === 'absent' || stamp.startsWith('content:') };
  }

  /**
   * Whether the relay may have changed since the last listing: the marker differs, or the stamp
   * that listing saw is not confirmed yet, or nothing was listed yet. A failed poll answers true
   * (the caller lists, which reports the failure if the relay is down).
   */
  async changed(signal?: AbortSignal): Promise<boolean> {
    const seen = this.seen;
    if (seen === undefined) return true;
    if (!seen.confirmed && this.monotonic() >= seen.firstSeenMono + this.precisionMs() + STAMP_LAG_MS) return true;
    let stamp: string;
    try {
      stamp = this.backend.features.mtimePrecisionMs === undefined ? await this.contentStamp(signal) : ChangeMarker.stampOf(await this.statMarker(signal));
    } catch (error) {
      if (signal?.aborted) throw error;
      this.options.logger.debug(`cannot poll the change marker: ${(error as Error).message}; listing the relay`);
      return true;
    }
    return stamp !== seen.stamp;
  }

  /**
   * Rewrites the marker (after a round that changed the relay). A failure is a warning once per
   * cause and is otherwise ignored: the other clients then see the change at their next `refresh`.
   */
  async touch(signal?: AbortSignal): Promise<void> {
    const text = `escale change marker: the clients of this relay poll it to learn of changes without listing the relay\nlast change by: ${this.options.client}\nnonce: ${randomBytes(8).toString('hex')}\n`;
    try {
      await this.backend.put(CHANGE_MARKER, Buffer.from(text, 'utf8'), { ...(signal ? { signal } : {}) });
      if (this.reported.clear('touch')) this.options.logger.info('the change marker of the relay can be written again');
    } catch (error) {
      if (signal?.aborted) return;
      const message = (error as Error).message;
      if (this.reported.isNew('touch', message)) {
        this.options.logger.warning(`cannot write the change marker '${CHANGE_MARKER}' (${message}); the other clients will see this client's changes at their next full listing ('refresh') instead of within seconds`);
      }
    }
  }

  private precisionMs(): number {
    return this.backend.features.mtimePrecisionMs ?? 0;
  }

  private async statMarker(signal?: AbortSignal): Promise<Entry | undefined> {
    try {
      return await this.backend.stat(CHANGE_MARKER, { ...(signal ? { signal } : {}) });
    } catch (error) {
      if (hasCode(error, 'NotFound')) return undefined;
      throw error;
    }
  }

  /** The marker's content as a stamp (for backends without mtimes); 'absent' when there is none. */
  private async contentStamp(signal?: AbortSignal): Promise<string> {
    try {
      return `content:${(await readSmall(this.backend, CHANGE_MARKER, MAX_MARKER_BYTES, { ...(signal ? { signal } : {}) })).toString('base64')}`;
    } catch (error) {
      if (hasCode(error, 'NotFound')) return 'absent';
      throw error;
    }
  }
}
