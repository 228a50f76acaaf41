import { EscaleError, failsWholeRelay, hasCode, type ErrorCode } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ReportOnce } from '../core/report-once.js';

/**
 * What failed: a file (relative path; local or relay side), a local folder or entry the scan could
 * not read (relative path), or an index page (page name).
 */
export type FailureKind = 'file' | 'folder' | 'page';

/** One thing that failed, named by kind and path. */
export interface FailureSubject {
  readonly kind: FailureKind;
  readonly path: string;
}

/**
 * How a tracked subject stands: `failing` (retried with back-off), `stuck` (failed `stuckAfter`
 * times in a row; still retried, less often), `refused` (a name escale cannot use: a warning, not a
 * failure), `changing` (a file that changed while it was read to be sent, put off with the same
 * back-off: not a failure). Only `failing` and `stuck` count in `failingCount`.
 */
export type FailureState = 'failing' | 'stuck' | 'refused' | 'changing';

/** The phases of a round whose subjects the tracker keeps apart (see `FailureTracker.enterPhase`). */
export type RoundPhaseName = 'pull' | 'push';

/** A tracked subject as the status model shows it. */
export interface TrackedFailure extends FailureSubject {
  /** What was being done, as a verb phrase: `upload`, `download`, `read`, `scan`, `read page`... */
  readonly action: string;
  readonly state: FailureState;
  readonly code: ErrorCode;
  readonly message: string;
  /** Failed attempts in a row. */
  readonly failures: number;
  /** When the first failure of the current run of failures happened (ms since the epoch). */
  readonly sinceMs: number;
  /** When the last failure happened (ms since the epoch). */
  readonly lastMs: number;
  /** Rounds left before the next attempt (0: the next round tries again). */
  readonly retryInRounds: number;
}

/** One failure as it happened (for the status model's recent errors). */
export interface FailureEvent extends FailureSubject {
  readonly timeMs: number;
  readonly action: string;
  readonly code: ErrorCode;
  readonly message: string;
}

/** Settings of a FailureTracker. */
export interface FailureTrackerOptions {
  readonly logger: Logger;
  /** Clock in milliseconds (default Date.now). */
  readonly now?: () => number;
  /** Failures in a row after which a subject is reported stuck (default 3). */
  readonly stuckAfter?: number;
  /** Deferrals in a row after which a file that keeps changing is reported with a warning (default 5). */
  readonly changingAfter?: number;
  /** Most rounds a failing subject is skipped between two attempts (default 16). */
  readonly maxSkipRounds?: number;
  /** Told about every failure (the daemon feeds its status model's recent errors). */
  readonly onFailure?: (event: FailureEvent) => void;
}

/** How an error met in a per-file (or per-page) step is handled. */
export type FailureVerdict =
  /** The round was cancelled: rethrow. */
  | 'aborted'
  /** A lock busy or a local file changed meanwhile: try again next round, nothing failed. */
  | 'deferred'
  /** The relay as a whole fails (unreachable, full): the subject failed and the round fails too. */
  | 'relay'
  /** Only this subject failed: track it, go on with the others. */
  | 'subject';

/**
 * How an error raised while working on one file or page is handled, from its code and origin only
 * (see `failsWholeRelay`): errors that are not EscaleErrors (bugs) fail the subject, not the round.
 */
export function classifyFailure(error: unknown, signal?: AbortSignal): FailureVerdict {
  if (signal?.aborted || hasCode(error, 'Aborted')) return 'aborted';
  if (hasCode(error, 'LockBusy', 'Conflict')) return 'deferred';
  if (failsWholeRelay(error)) return 'relay';
  return 'subject';
}

/**
 * Rounds a subject is skipped after its `failures`-th failure in a row: 0, 1, 3, 7, 15, ... (the
 * first failure is retried at the next round), capped at `max`.
 */
export function skipRounds(failures: number, max: number): number {
  if (failures <= 1) return 0;
  return Math.min(max, 2 ** Math.min(failures - 1, 30) - 1);
}

interface Tracked {
  readonly kind: FailureKind;
  readonly path: string;
  /** A deferral (the subject kept changing), not a failure. */
  deferral: boolean;
  /** The phase in which it failed or was put off; a round clears it only once that phase tried it again. */
  phase: RoundPhaseName | undefined;
  action: string;
  code: ErrorCode;
  message: string;
  failures: number;
  sinceMs: number;
  lastMs: number;
  /** The round at which the subject is tried again. */
  retryRound: number;
}

const keyOf = (kind: FailureKind, path: string): string => `${kind}\u0000${path}`;

/**
 * Confinement of failures to the file, folder or page that caused them (issue 12): each failure is
 * recorded against its subject, logged once per state change (failing, stuck, refused, cleared) with
 * its real cause, and the subject is skipped for a growing number of rounds (`skipRounds`). The
 * engines ask `blocked` before working on a subject, report failures with `fail`, and call
 * `beginRound`/`endRound` around each round: a subject tried in a completed round without failing
 * is cleared, with an INFO line.
 */
export class FailureTracker {
  private readonly tracked = new Map<string, Tracked>();
  private readonly reported = new ReportOnce();
  private readonly now: () => number;
  private readonly stuckAfter: number;
  private readonly changingAfter: number;
  private readonly maxSkip: number;
  private round = 0;
  private phase: RoundPhaseName | undefined;
  /** Subjects tried this round (they were due). */
  private readonly triedNow = new Set<string>();
  /** Subjects that failed this round. */
  private readonly failedNow = new Set<string>();

  constructor(private readonly options: FailureTrackerOptions) {
    this.now = options.now ?? Date.now;
    this.stuckAfter = Math.max(1, options.stuckAfter ?? 3);
    this.changingAfter = Math.max(1, options.changingAfter ?? 5);
    this.maxSkip = Math.max(0, options.maxSkipRounds ?? 16);
  }

  /** Starts a round (the engines call it first thing). */
  beginRound(): void {
    this.round += 1;
    this.phase = undefined;
    this.triedNow.clear();
    this.failedNow.clear();
  }

  /**
   * Enters a phase of the round (engines whose phases decide separately: the index engine's pull
   * and push). A subject that failed in one phase counts as tried only when that phase works on it
   * again: an upload that failed is not cleared by a pull phase that looked at the same path, nor by
   * a round whose push phase never reached it (its page postponed).
   */
  enterPhase(phase: RoundPhaseName | undefined): void {
    this.phase = phase;
  }

  /**
   * Whether the subject must be left alone this round: it failed already this round, or it is in its
   * back-off. A tracked subject that is due answers false and counts as tried this round (in the
   * phase where it failed, see `enterPhase`).
   */
  blocked(kind: FailureKind, path: string): boolean {
    const key = keyOf(kind, path);
    if (this.failedNow.has(key)) return true;
    const entry = this.tracked.get(key);
    if (entry === undefined) return false;
    if (entry.retryRound > this.round) return true;
    if (entry.phase === undefined || this.phase === undefined || entry.phase === this.phase) this.triedNow.add(key);
    return false;
  }

  /** Takes back `blocked`'s "tried": the subject was not worked on after all (left for a later batch). */
  untried(kind: FailureKind, path: string): void {
    this.triedNow.delete(keyOf(kind, path));
  }

  /** Records that a tracked subject was worked on this round whatever its back-off (folders: every scan reads them). */
  tried(kind: FailureKind, path: string): void {
    const key = keyOf(kind, path);
    if (this.tracked.has(key) && !this.failedNow.has(key)) this.triedNow.add(key);
  }

  /**
   * Records that working on a subject failed (`action` says what was done, e.g. `upload`); logs it
   * when its state changes, and schedules the next attempt. A second failure of the same subject
   * within one round only updates the cause. Returns whether the failure counts in the round's
   * report: false for a repeat within the round, and for a refused name (a warning, not a failure).
   */
  fail(subject: FailureSubject, action: string, error: unknown): boolean {
    const key = keyOf(subject.kind, subject.path);
    const { code, message } = describeError(error);
    const now = this.now();
    this.options.onFailure?.({ ...subject, timeMs: now, action, code, message });
    if (!(error instanceof EscaleError)) this.options.logger.debug(`unexpected error on ${subject.kind} '${subject.path}': ${String((error as Error)?.stack ?? error)}`);
    const again = this.failedNow.has(key);
    const entry = this.record(key, subject, { action, code, message, now }, false);
    this.report(key, entry);
    return !again && this.stateOf(entry) !== 'refused';
  }

  /**
   * Records that a file was put off because it changed while it was read to be sent (a log being
   * written to): not a failure (no ERROR, not counted by `failingCount`, not in the round's failed
   * count), but it is skipped for a growing number of rounds like a failing file, so that a file
   * that never stops changing is not read whole every round. The first deferral of a run is an INFO
   * line; after `changingAfter` in a row one WARNING says that it keeps changing; a round that sends
   * it clears it with an INFO line.
   */
  defer(subject: FailureSubject, action: string, cause: string): void {
    const key = keyOf(subject.kind, subject.path);
    const entry = this.record(key, subject, { action, code: 'Conflict', message: cause, now: this.now() }, true);
    this.report(key, entry);
  }

  /** Updates (or starts) the entry of a subject that failed or was put off now; a second time in a round only updates the cause. */
  private record(key: string, subject: FailureSubject, what: { action: string; code: ErrorCode; message: string; now: number }, deferral: boolean): Tracked {
    const { action, code, message, now } = what;
    const again = this.failedNow.has(key);
    this.failedNow.add(key);
    this.triedNow.delete(key);
    let entry = this.tracked.get(key);
    if (entry === undefined || entry.deferral !== deferral) {
      // why: a file that stopped changing but now fails (or the reverse) starts a new run: its counts and back-off say one thing.
      if (entry !== undefined) this.reported.clear(key);
      entry = { kind: subject.kind, path: subject.path, deferral, phase: this.phase, action, code, message, failures: 0, sinceMs: now, lastMs: now, retryRound: this.round + 1 };
      this.tracked.set(key, entry);
    }
    entry.phase = this.phase;
    entry.action = action;
    entry.code = code;
    entry.message = message;
    entry.lastMs = now;
    if (!again) {
      entry.failures += 1;
      // why: folders are read by every scan anyway; their back-off would only delay the report of their recovery.
      entry.retryRound = this.round + 1 + (subject.kind === 'folder' ? 0 : skipRounds(entry.failures, this.maxSkip));
    }
    return entry;
  }

  /**
   * Ends a round. When it completed (not aborted by a relay failure or a signal), every subject that
   * was tried and did not fail is cleared with an INFO line.
   */
  endRound(completed: boolean): void {
    if (!completed) return;
    for (const key of this.triedNow) {
      if (this.failedNow.has(key)) continue;
      const entry = this.tracked.get(key);
      if (entry === undefined) continue;
      this.tracked.delete(key);
      this.reported.clear(key);
      if (entry.deferral) this.options.logger.info(`${entry.kind} '${entry.path}' could be read unchanged and sent (it had changed during ${entry.failures} attempt(s) to ${entry.action} it)`);
      else this.options.logger.info(`${entry.kind} '${entry.path}' is no longer failing (it had failed ${entry.failures} time(s) to ${entry.action}: ${entry.code})`);
    }
    this.triedNow.clear();
  }

  /**
   * Forgets the subjects of `kind` that did not fail this round and for which `present` is false
   * (the file or page is gone from both sides), with an INFO line.
   */
  forgetAbsent(kind: FailureKind, present: (path: string) => boolean): void {
    for (const [key, entry] of this.tracked) {
      if (entry.kind !== kind || this.failedNow.has(key) || present(entry.path)) continue;
      this.tracked.delete(key);
      this.reported.clear(key);
      this.triedNow.delete(key);
      this.options.logger.info(`${kind} '${entry.path}' is gone; it is no longer reported as failing`);
    }
  }

  /** The tracked subjects of `kind` that must be left alone this round (see `blocked`; the due ones count as tried). */
  blockedOf(kind: FailureKind): string[] {
    const out: string[] = [];
    for (const entry of [...this.tracked.values()]) if (entry.kind === kind && this.blocked(kind, entry.path)) out.push(entry.path);
    return out;
  }

  /** Every tracked subject, oldest failure first. */
  list(): TrackedFailure[] {
    return [...this.tracked.values()]
      .sort((a, b) => a.sinceMs - b.sinceMs || (a.path < b.path ? -1 : 1))
      .map((entry) => ({
        kind: entry.kind,
        path: entry.path,
        action: entry.action,
        state: this.stateOf(entry),
        code: entry.code,
        message: entry.message,
        failures: entry.failures,
        sinceMs: entry.sinceMs,
        lastMs: entry.lastMs,
        retryInRounds: Math.max(0, entry.retryRound - this.round - 1),
      }));
  }

  /** How many subjects are failing or stuck (refused names and files that keep changing are not counted). */
  get failingCount(): number {
    let count = 0;
    for (const entry of this.tracked.values()) if (isFailure(this.stateOf(entry))) count += 1;
    return count;
  }

  private stateOf(entry: Tracked): FailureState {
    if (entry.deferral) return 'changing';
    if (entry.code === 'InvalidName') return 'refused';
    return entry.failures >= this.stuckAfter ? 'stuck' : 'failing';
  }

  private report(key: string, entry: Tracked): void {
    const { logger } = this.options;
    const state = this.stateOf(entry);
    const skip = entry.retryRound - this.round - 1;
    const when = skip === 0 ? 'next round' : `in ${skip + 1} rounds`;
    const cause = `${entry.code}: ${entry.message}`;
    const subject = `${entry.kind} '${entry.path}'`;
    if (state === 'changing') {
      // why: INFO when it starts, one WARNING once it kept changing `changingAfter` times (never an ERROR: nothing is wrong with it).
      const phase = entry.failures >= this.changingAfter ? 'long' : 'short';
      if (!this.reported.isNew(key, `changing:${phase}`)) logger.debug(`${subject} changed again while it was read to ${entry.action} it (attempt ${entry.failures}: ${entry.message}); retried ${when}`);
      else if (phase === 'short') logger.info(`${subject} changed while it was read to ${entry.action} it (${entry.message}); nothing was published, and it is sent in a later round`);
      else logger.warning(`${subject} keeps changing while escale reads it to ${entry.action} it (${entry.failures} attempts since ${new Date(entry.sinceMs).toISOString()}): escale tries it less and less often (at most ${this.maxSkip + 1} rounds apart) and sends it once a read finds it unchanged; a file that is always being written (a log) is never sent whole, so exclude it if it need not be synced`);
      return;
    }
    // why: `failed to download 'a.txt'` as before for files; folders and pages say what they are.
    const object = entry.kind === 'file' ? `'${entry.path}'` : subject;
    if (!this.reported.isNew(key, `${state}:${entry.code}`)) {
      logger.debug(`failed again to ${entry.action} ${object} (attempt ${entry.failures}; ${cause}); retried ${when}`);
      return;
    }
    if (state === 'refused') logger.warning(`skipping ${subject} (cannot ${entry.action} it): ${cause}`);
    else if (state === 'stuck') logger.error(`${subject} is stuck after ${entry.failures} failed attempts to ${entry.action} it (${cause}); escale keeps retrying it (${when}, then less often) and logs when it succeeds`);
    else logger.error(`failed to ${entry.action} ${object}: ${cause}; retried ${when}`);
  }
}

/** Whether a state is a failure (counted by `failingCount`, an ERROR, status 1 for `--once`): `failing` or `stuck`. */
export function isFailure(state: FailureState): boolean {
  return state === 'failing' || state === 'stuck';
}

/** The code and message of any error (not an EscaleError: Internal with its text). */
function describeError(error: unknown): { code: ErrorCode; message: string } {
  if (error instanceof EscaleError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { code: 'Internal', message };
}
