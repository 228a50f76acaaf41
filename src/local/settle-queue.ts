/** What the queue learns of a path when it looks at it: a file's size and mtime, or something else. */
export type SettleStat = { readonly size: number; readonly mtimeMs: number } | 'other';

/** Options of a SettleQueue; every clock is injected so that the rules are tested without waiting. */
export interface SettleQueueOptions {
  /** How long a path must stay quiet (no event, size and mtime unchanged) before it counts as settled. */
  readonly settleMs: number;
  /** Monotonic clock in milliseconds (event times, delays). */
  readonly monotonic: () => number;
  /** Wall clock in milliseconds (compared with file mtimes). */
  readonly wallClock: () => number;
  /** Looks at one path (relative, as spelled on disk); 'other' for a folder, a missing path or anything else. */
  readonly stat: (path: string) => SettleStat;
}

interface Pending {
  /** Monotonic time of the last event for the path. */
  lastEvent: number;
  /** What the last look found, when the path was looked at since its last event. */
  looked?: { readonly size: number; readonly mtimeMs: number };
}

/**
 * Debounces file-system events into settled paths. A path is settled once no event came for it
 * for `settleMs` and it is not being written: a file whose mtime is at least `settleMs` old, or
 * whose size and mtime did not change between two looks `settleMs` apart (a file still being
 * written, or one dated in the future, is waited out); a folder or a vanished path settles at the
 * first look. Pure apart from the injected `stat`; the caller owns the timer.
 */
export class SettleQueue {
  private readonly pending = new Map<string, Pending>();

  constructor(private readonly options: SettleQueueOptions) {}

  /** Paths waiting to settle. */
  get size(): number {
    return this.pending.size;
  }

  /** Records an event for `path` (a new event restarts its quiet time). */
  add(path: string): void {
    const entry = this.pending.get(path);
    const now = this.options.monotonic();
    if (entry === undefined) this.pending.set(path, { lastEvent: now });
    else {
      entry.lastEvent = now;
      delete entry.looked;
    }
  }

  /** Forgets every pending path (a full scan is about to look at everything). */
  clear(): void {
    this.pending.clear();
  }

  /**
   * Looks at the paths whose quiet time is over and returns those that settled; `nextInMs` is when
   * the next one may settle (undefined when nothing is pending).
   */
  take(): { settled: string[]; nextInMs?: number } {
    const { settleMs, monotonic, wallClock, stat } = this.options;
    const now = monotonic();
    const settled: string[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (const [path, entry] of this.pending) {
      const quietUntil = entry.lastEvent + settleMs;
      if (now < quietUntil) {
        next = Math.min(next, quietUntil - now);
        continue;
      }
      const seen = stat(path);
      const previous = entry.looked;
      const stable = seen === 'other' || wallClock() - seen.mtimeMs >= settleMs || (previous !== undefined && previous.size === seen.size && previous.mtimeMs === seen.mtimeMs);
      if (stable) {
        settled.push(path);
        this.pending.delete(path);
        continue;
      }
      // why: still being written (or dated in the future): look again after another quiet time.
      entry.looked = { size: seen.size, mtimeMs: seen.mtimeMs };
      entry.lastEvent = now;
      next = Math.min(next, settleMs);
    }
    return next === Number.POSITIVE_INFINITY ? { settled } : { settled, nextInMs: next };
  }
}
