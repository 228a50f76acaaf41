/**
 * The adaptive sleep between rounds (sync-rules.md R9): starts at R/2, stays there for about
 * four idle rounds, then rises to R; any round that transferred something resets it.
 */
export class AdaptiveClock {
  private sleeps = 0;

  constructor(private readonly refreshSec: number) {
    if (!(refreshSec > 0)) throw new RangeError('refresh must be a positive number of seconds');
  }

  /** The next sleep in seconds, advancing the clock: t(n) = R/2 + (R/2) / (1 + e^(10 − 2n)). */
  next(): number {
    const half = this.refreshSec / 2;
    const raw = half + half / (1 + Math.exp(10 - 2 * this.sleeps));
    this.sleeps += 1;
    // why: the original rounds to one digit below the magnitude of R/2 (5.0, 5.1, 5.6 for R = 10).
    const step = 10 ** (Math.floor(Math.log10(half)) - 1);
    return roundHalfEven(raw / step) * step;
  }

  /** Starts again from R/2 (after a round that transferred something). */
  reset(): void {
    this.sleeps = 0;
  }
}

/** Rounds to the nearest integer, ties to even (as Python's round, which the original used). */
function roundHalfEven(value: number): number {
  const floor = Math.floor(value);
  const fraction = value - floor;
  if (Math.abs(fraction - 0.5) < 1e-9) return floor % 2 === 0 ? floor : floor + 1;
  return Math.round(value);
}
