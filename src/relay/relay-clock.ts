import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../core/log.js';
import type { RelayPath } from '../core/relpath.js';

/*
 * What a client knows about time on the relay. Other machines' clocks disagree with ours (by
 * hours, on the field), so no decision about a relay file's age may read the local wall clock: it
 * is judged by the relay's own clock, learned from the mtimes of files this client has just written,
 * or, where that is not known, by lack of progress watched with the local monotonic clock.
 */

/**
 * How far two machines' clocks may disagree before escale says so (5 minutes): a relay record
 * dated further ahead of the relay's clock, or a local clock further from it, is warned about.
 * Minutes, not seconds: unsynchronised clocks drift by seconds a week, and FTP listings may give
 * minutes only.
 */
export const CLOCK_MARGIN_MS = 5 * 60_000;

/** How fast the local monotonic clock and the relay's clock may drift apart, at most (200 ppm, two quartz clocks). */
const DRIFT_PER_MS = 2e-4;
/** Wait before a failed probe is tried again. */
const PROBE_RETRY_MS = 10 * 60_000;
/** Entries whose progress is watched at most (the oldest watched is forgotten first). */
const WATCH_CAPACITY = 4096;
/** Precision assumed for judged mtimes before any sample told the backend's (whole seconds). */
const DEFAULT_PRECISION_MS = 1000;
/**
 * How far before the true time of a write its mtime may be: file systems stamp with a coarse clock
 * that lags by up to one scheduler tick (4 ms at 250 Hz, 10 ms at 100 Hz). Counted against staleness.
 */
const STAMP_LAG_MS = 20;

/** The relay's current time, as bounds in milliseconds since the epoch. */
export interface RelayTime {
  readonly earliest: number;
  readonly latest: number;
}

/** One write of this client: the relay mtime it got, and the monotonic times around the call. */
export interface WriteSample {
  /** Local monotonic time (ms) before the write started. */
  readonly startMono: number;
  /** Local monotonic time (ms) after the write ended. */
  readonly endMono: number;
  /** The relay's mtime of the written file (ms since the epoch). */
  readonly mtimeMs: number;
  /** Resolution of that mtime: the relay's time of the write is in [mtimeMs, mtimeMs + precisionMs). */
  readonly precisionMs: number;
}

/** A judgment of whether a relay file (upload temporary, lock, orphan) was left behind. */
export interface StaleVerdict {
  readonly stale: boolean;
  /** The evidence, for the log: its age by the relay's clock, or how long it did not change while watched. */
  readonly evidence: string;
  /** When not stale: the shortest time after which it may be (undefined when no bound is known yet). */
  readonly staleInMs?: number;
}

/** What `judge` needs of a listed relay file. */
export interface JudgedEntry {
  readonly size: number;
  readonly mtimeMs?: number;
}

/** Options of a RelayClock. */
export interface RelayClockOptions {
  /** Local monotonic clock in milliseconds (default `performance.now`); tests inject one. */
  readonly monotonic?: () => number;
}

interface Watched {
  readonly fingerprint: string;
  readonly sinceMono: number;
}

/**
 * The relay's clock as this client estimates it, and the judge of stale relay files. The offset
 * between the relay's clock and the local monotonic clock is bounded by every write sample (the
 * relay stamped the mtime at some instant between the start and the end of the call); samples are
 * intersected, widened by drift as time passes, and a sample that contradicts the others (the
 * relay's clock was set) replaces them. No I/O of its own (a probe is handed in), every clock
 * injected. One per relay connection, exposed as `Backend.clock`.
 */
export class RelayClock {
  /** The local monotonic clock (ms) this estimate is kept against. */
  readonly monotonic: () => number;
  /** Bounds of (relay time − monotonic time), as learned at monotonic time `atMono`. */
  private bounds: { low: number; high: number; atMono: number } | undefined;
  private precisionMs = DEFAULT_PRECISION_MS;
  private readonly watched = new Map<string, Watched>();
  private probeFailedAtMono: number | undefined;
  private probeFailureReported = false;
  private probesForbidden = false;
  private probing: Promise<void> | undefined;

  constructor(options: RelayClockOptions = {}) {
    this.monotonic = options.monotonic ?? (() => performance.now());
  }

  /** Whether the relay's clock is known (some write of this client gave an mtime). */
  get known(): boolean {
    return this.bounds !== undefined;
  }

  /** Records one write of this client (see WriteSample); a sample with an impossible interval is ignored. */
  observe(sample: WriteSample): void {
    const { startMono, endMono, mtimeMs, precisionMs } = sample;
    if (![startMono, endMono, mtimeMs, precisionMs].every(Number.isFinite) || endMono < startMono || precisionMs < 0) return;
    this.precisionMs = Math.max(1, precisionMs);
    const fresh = { low: mtimeMs - endMono, high: mtimeMs + this.precisionMs - startMono, atMono: endMono };
    const old = this.widened(endMono);
    if (old === undefined || old.high < fresh.low || fresh.high < old.low) {
      // why: no earlier knowledge, or it contradicts this write: the relay's clock was set (or stepped); start again.
      this.bounds = fresh;
      return;
    }
    this.bounds = { low: Math.max(old.low, fresh.low), high: Math.min(old.high, fresh.high), atMono: endMono };
  }

  /** Runs one write and records its sample from the mtime it returns (none: nothing learned). */
  async timed<T extends { readonly mtimeMs?: number }>(write: () => Promise<T>, precisionMs: number | undefined): Promise<T> {
    const startMono = this.monotonic();
    const written = await write();
    if (written.mtimeMs !== undefined && precisionMs !== undefined) {
      this.observe({ startMono, endMono: this.monotonic(), mtimeMs: written.mtimeMs, precisionMs });
    }
    return written;
  }

  /** The relay's time now, as bounds; undefined while unknown. */
  now(): RelayTime | undefined {
    const mono = this.monotonic();
    const bounds = this.widened(mono);
    return bounds === undefined ? undefined : { earliest: mono + bounds.low, latest: mono + bounds.high };
  }

  /**
   * How far a local wall-clock reading `localNowMs` (taken now) is ahead of the relay's clock, as
   * bounds (negative: behind); undefined while the relay's clock is unknown.
   */
  offsetOf(localNowMs: number): { readonly min: number; readonly max: number } | undefined {
    const relay = this.now();
    return relay === undefined ? undefined : { min: localNowMs - relay.latest, max: localNowMs - relay.earliest };
  }

  /**
   * Judges whether the relay file `key` (its path), as listed now, has been left for longer than
   * `staleAfterMs`. Stale when its age by the relay's clock is surely longer (mtime known, clock
   * known, every uncertainty counted against staleness), or when its size, mtime and `contentKey`
   * did not change while this clock watched it for longer than that (local monotonic clock). The
   * local wall clock is never read, so a file is never judged stale early because this machine's
   * clock is ahead. Each call also records what was seen, for the progress rule.
   */
  judge(key: string, entry: JudgedEntry, staleAfterMs: number, contentKey = ''): StaleVerdict {
    const mono = this.monotonic();
    const fingerprint = `${entry.size}:${entry.mtimeMs ?? '?'}:${contentKey}`;
    let watched = this.watched.get(key);
    if (watched === undefined || watched.fingerprint !== fingerprint) watched = { fingerprint, sinceMono: mono };
    // why: re-inserted so that the map's order is least recently seen first, for the capacity rule.
    this.watched.delete(key);
    this.watched.set(key, watched);
    if (this.watched.size > WATCH_CAPACITY) this.watched.delete(this.watched.keys().next().value as string);
    const unchangedMs = Math.max(0, mono - watched.sinceMono);
    const relay = entry.mtimeMs === undefined ? undefined : this.now();
    if (relay !== undefined && entry.mtimeMs !== undefined) {
      const minAge = relay.earliest - (entry.mtimeMs + this.precisionMs + STAMP_LAG_MS);
      if (minAge > staleAfterMs) return { stale: true, evidence: `it is ${formatDuration(minAge)} old by the relay's clock` };
      if (unchangedMs > staleAfterMs) return { stale: true, evidence: `it did not change for ${formatDuration(unchangedMs)} while this client watched it` };
      const age = minAge < 0 ? 'dated in the future by the relay\'s clock' : `${formatDuration(minAge)} old by the relay's clock`;
      return { stale: false, evidence: `it is ${age}`, staleInMs: Math.min(staleAfterMs - Math.max(0, minAge), staleAfterMs - unchangedMs) };
    }
    if (unchangedMs > staleAfterMs) return { stale: true, evidence: `it did not change for ${formatDuration(unchangedMs)} while this client watched it` };
    const why = entry.mtimeMs === undefined ? 'the relay gives no modification time' : "the relay's clock is not known yet";
    return { stale: false, evidence: `unchanged for ${formatDuration(unchangedMs)} while watched (${why})`, staleInMs: staleAfterMs - unchangedMs };
  }

  /** Forgets what was watched of `key` (the file is gone). */
  forget(key: string): void {
    this.watched.delete(key);
  }

  /**
   * Forbids probes from now on: the connection belongs to a run that promises to change nothing on
   * the relay (`--dry-run`, `list-pending`). Judgments that need the relay's clock then wait for a
   * sample or for lack of progress.
   */
  forbidProbes(): void {
    this.probesForbidden = true;
  }

  /**
   * Learns the relay's clock with `probe` (a write whose sample lands here) unless it is known,
   * probes are forbidden, a probe is already running (it is awaited), or the last one failed less
   * than 10 minutes ago.
   * Never throws: a failed probe only leaves the clock unknown; `onFailure` hears why, for the
   * first failure only (a read-only relay would fail every time).
   */
  async learn(probe: () => Promise<void>, onFailure?: (error: unknown) => void): Promise<void> {
    if (this.known || this.probesForbidden) return;
    if (this.probing !== undefined) return this.probing;
    if (this.probeFailedAtMono !== undefined && this.monotonic() - this.probeFailedAtMono < PROBE_RETRY_MS) return;
    this.probing = probe().then(
      () => {
        this.probeFailedAtMono = this.known ? undefined : this.monotonic();
      },
      (error: unknown) => {
        if (this.probeFailedAtMono === undefined && !this.probeFailureReported) onFailure?.(error);
        this.probeFailureReported = true;
        this.probeFailedAtMono = this.monotonic();
      },
    );
    try {
      await this.probing;
    } finally {
      this.probing = undefined;
    }
  }

  /** The bounds as of monotonic time `mono`, widened by the drift since they were learned. */
  private widened(mono: number): { low: number; high: number } | undefined {
    if (this.bounds === undefined) return undefined;
    const drift = Math.max(0, mono - this.bounds.atMono) * DRIFT_PER_MS;
    return { low: this.bounds.low - drift, high: this.bounds.high + drift };
  }
}

// why: spelled out rather than picked from Backend, which names RelayClock: the contract imports
// this module, not the other way round (no import cycle).
/** The calls of a backend that `probeRelayClock` uses (a Backend has them). */
export interface ProbeTarget {
  readonly clock: RelayClock;
  readonly features: { readonly mtimePrecisionMs?: number };
  put(path: RelayPath, body: Uint8Array, options?: { readonly signal?: AbortSignal }): Promise<unknown>;
  stat(path: RelayPath, options?: { readonly signal?: AbortSignal }): Promise<{ readonly mtimeMs?: number }>;
  delete(path: RelayPath): Promise<void>;
}

/** What `probeRelayClock` may use. */
export interface ProbeOptions {
  readonly signal?: AbortSignal;
  /** Hears about a probe that failed, or whose file could not be removed (the stale-temporary rule removes it later). */
  readonly logger?: Logger;
}

/**
 * Learns the relay's clock of `backend` when it is not known yet: puts an empty file under an
 * upload-temporary name (`.escale-put-<hex>.tmp`, which every backend hides from listings and
 * cleans when stale, and which escale 0.7 ignores as a dot file), reads its mtime (from the put's
 * answer, else with one stat), and deletes it. Two or three requests, once per connection, and
 * only when a judgment needs the clock; a failure leaves the clock unknown (retried 10 min later).
 */
export async function probeRelayClock(backend: ProbeTarget, options: ProbeOptions = {}): Promise<void> {
  const { clock } = backend;
  const { signal, logger } = options;
  const probe = async (): Promise<void> => {
    const name = `.escale-put-${randomBytes(8).toString('hex')}.tmp` as RelayPath;
    const startMono = clock.monotonic();
    await backend.put(name, new Uint8Array(0), { signal });
    try {
      // why: the backend's own put records the sample when it answers with an mtime; otherwise one stat does.
      if (!clock.known) {
        const endMono = clock.monotonic();
        const { mtimeMs } = await backend.stat(name, { signal });
        const precisionMs = backend.features.mtimePrecisionMs;
        if (mtimeMs !== undefined && precisionMs !== undefined) clock.observe({ startMono, endMono, mtimeMs, precisionMs });
      }
    } finally {
      await backend.delete(name).catch((error: unknown) => logger?.debug(`cannot remove the clock probe '${name}' (it goes once stale): ${(error as Error).message}`));
    }
  };
  await clock.learn(probe, (error) => logger?.warning(`cannot learn the relay's clock (${(error as Error).message}); stale locks and upload temporaries are judged by lack of progress only until it is known`));
}

/** A duration for log lines: `45 s`, `12 min`, `3 h 5 min`, `4 d 2 h`. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s} s`;
  const min = Math.floor(s / 60);
  if (min < 120) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
