/**
 * Remembers what was last reported about each subject (a file, a relay name, a lock), so that a
 * problem that repeats every round is logged once per state change instead of once per round.
 */
export class ReportOnce {
  readonly #states = new Map<string, string>();

  /** Whether `state` is news for `subject` (never reported, or another state was); records it. */
  isNew(subject: string, state: string): boolean {
    if (this.#states.get(subject) === state) return false;
    this.#states.set(subject, state);
    return true;
  }

  /** Forgets `subject` (its problem went away); true when something was recorded for it. */
  clear(subject: string): boolean {
    return this.#states.delete(subject);
  }

  /** Forgets every subject that `keep` rejects (problems of names that are no longer seen). */
  retain(keep: (subject: string) => boolean): void {
    for (const subject of [...this.#states.keys()]) if (!keep(subject)) this.#states.delete(subject);
  }

  /** Number of subjects with a recorded state. */
  get size(): number {
    return this.#states.size;
  }
}
