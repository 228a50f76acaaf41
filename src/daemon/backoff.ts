/** The longest pause between two attempts of a client whose relay fails, whatever its refresh (1 hour). */
export const MAX_BACKOFF_SEC = 3600;

/**
 * The pause before each new attempt while a client fails as a whole (its relay is unreachable, its
 * start fails): `base`, then doubled after each failure, never more than `max`; `reset` after a
 * success. Pure: the caller sleeps.
 */
export class Backoff {
  private count = 0;

  constructor(
    readonly baseSec: number,
    readonly maxSec: number,
  ) {
    if (!(baseSec > 0) || !(maxSec >= baseSec)) throw new RangeError('back-off needs 0 < base <= max');
  }

  /** The back-off of a client with the given `refresh`: starts at the refresh, capped at 16 refreshes (at most MAX_BACKOFF_SEC). */
  static forRefresh(refreshSec: number): Backoff {
    return new Backoff(refreshSec, Math.max(refreshSec, Math.min(16 * refreshSec, MAX_BACKOFF_SEC)));
  }

  /** Failures in a row so far. */
  get failures(): number {
    return this.count;
  }

  /** Records one more failure and returns the pause before the next attempt, in seconds. */
  next(): number {
    this.count += 1;
    return Math.min(this.maxSec, this.baseSec * 2 ** Math.min(this.count - 1, 40));
  }

  /** Back to the first step (after a success). */
  reset(): void {
    this.count = 0;
  }
}
