import { setTimeout as sleepFor } from 'node:timers/promises';

/**
 * Wakes a sleeping client loop early: the local index notifies it when settled changes wait for a
 * round. A notification that comes while nobody waits is kept for the next wait.
 */
export class Wakeup {
  private pending = false;
  private waiter: (() => void) | undefined;

  /** Wakes the current wait, or the next one. */
  notify(): void {
    this.pending = true;
    this.waiter?.();
  }

  /** Forgets a notification not waited for yet (a round is about to look at everything anyway). */
  clear(): void {
    this.pending = false;
  }

  /** Waits until notified (true) or until `ms` passed or the signal fired (false). */
  async wait(ms: number, signal: AbortSignal): Promise<boolean> {
    if (this.pending) {
      this.pending = false;
      return true;
    }
    const timer = new AbortController();
    const abort = (): void => timer.abort();
    signal.addEventListener('abort', abort, { once: true });
    const woken = new Promise<true>((resolve) => {
      this.waiter = () => resolve(true);
    });
    try {
      const outcome = await Promise.race([woken, sleepFor(ms, false as const, { signal: timer.signal }).catch(() => false as const)]);
      if (outcome) this.pending = false;
      return outcome;
    } finally {
      this.waiter = undefined;
      timer.abort();
      signal.removeEventListener('abort', abort);
    }
  }
}
