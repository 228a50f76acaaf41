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
 * failure, and not counted by `failingCount`).
 */
export type FailureState = 'failing' | 'stuck' | 'refused';

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
  private readonly maxSkip: number;
  private round = 0;
  /** Subjects tried this round (they were due). */
  private readonly triedNow = new Set<string>();
  /** Subjects that failed this round. */
  private readonly failedNow = new Set<string>();

  constructor(private readonly options: FailureTrackerOptions) {
    this.now = options.now ?? Date.now;
    this.stuckAfter = Math.max(1, options.stuckAfter ?? 3);
    this.maxSkip = Math.max(0, options.maxSkipRounds ?? 16);
  }

  /** Starts a round (the engines call it first thing). */
  beginRound(): void {
    this.round += 1;
    this.triedNow.clear();
    this.failedNow.clear();
  }

  /**
   * Whether the subject must be left alone this round: it failed already this round, or it is in its
   * back-off. A tracked subject that is due answers false and counts as tried this round.
   */
  blocked(kind: FailureKind, path: string): boolean {
    const key = keyOf(kind, path);
    if (this.failedNow.has(key)) return true;
    const entry = this.tracked.get(key);
    if (entry === undefined) return false;
    if (entry.retryRound > this.round) return true;
    this.triedNow.add(key);
    return false;
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
    let entry = this.tracked.get(key);
    const again = this.failedNow.has(key);
    this.failedNow.add(key);
    this.triedNow.delete(key);
    if (entry === undefined) {
      entry = { kind: subject.kind, path: subject.path, action, code, message, failures: 0, sinceMs: now, lastMs: now, retryRound: this.round + 1 };
      this.tracked.set(key, entry);
    }
    entry.action = action;
    entry.code = code;
    entry.message = message;
    entry.lastMs = now;
    if (!again) {
      entry.failures += 1;
      // why: folders are read by every scan anyway; their back-off would only delay the report of their recovery.
      entry.retryRound = this.round + 1 + (subject.kind === 'folder' ? 0 : skipRounds(entry.failures, this.maxSkip));
    }
    this.report(key, entry);
    return !again && this.stateOf(entry) !== 'refused';
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
      this.options.logger.info(`${entry.kind} '${entry.path}' is no longer failing (it had failed ${entry.failures} time(s) to ${entry.action}: ${entry.code})`);
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

  /** How many subjects are failing or stuck (refused names are not counted). */
  get failingCount(): number {
    let count = 0;
    for (const entry of this.tracked.values()) if (this.stateOf(entry) !== 'refused') count += 1;
    return count;
  }

  private stateOf(entry: Tracked): FailureState {
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

/** The code and message of any error (not an EscaleError: Internal with its text). */
function describeError(error: unknown): { code: ErrorCode; message: string } {
  if (error instanceof EscaleError) return { code: error.code, message: error.message };
  const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return { code: 'Internal', message };
}
