/**
 * The status model a running daemon keeps per client section (issue 12, first version of issue 17's
 * model), and its JSON form as `escalectl status --json` prints it (schema in README, "Status").
 * Plain data updated by the client loop and the engines; no I/O.
 */
import type { ErrorCode } from '../core/errors.js';
import type { RoundPhase } from '../sync/engine.js';
import { isFailure, type FailureEvent, type FailureKind, type FailureState, type TrackedFailure } from '../sync/failure-tracker.js';

/** Version of the JSON schema; raised when a field changes meaning or goes away (new fields do not raise it). */
export const STATUS_VERSION = 1;

/** How many recent errors a client keeps. */
export const RECENT_ERRORS = 20;

/**
 * What a client is doing: `starting` (opening its relay), `idle` (between rounds), a round's phase
 * (`scanning`, `pulling`, `pushing`), `backing off` (its relay or its start failed; it waits longer
 * and longer, then tries again), `paused` (its local folder is missing or lost its marker; checked
 * every round), `stopped` (ended: daemon stopping, crash without keep alive, or unusable configuration).
 */
export type ClientState = 'starting' | 'idle' | RoundPhase | 'backing off' | 'paused' | 'stopped';

/** A cause: the error code of the catalogue and its message. */
export interface ProblemJson {
  readonly code: ErrorCode;
  readonly message: string;
}

/** The last round of a client. Times are ISO 8601 (UTC). */
export interface RoundJson {
  readonly start: string;
  /** Null while the round runs. */
  readonly end: string | null;
  /** `running`, `ok` (the round completed; some files may have failed), or `failed` (the round could not complete). */
  readonly result: 'running' | 'ok' | 'failed';
  readonly transferred: number;
  /** Files (or pages) that failed in the round. */
  readonly failed: number;
  readonly deferred: number;
  /** Why the round failed, when it did. */
  readonly error: ProblemJson | null;
}

/** A file, folder or page that failed and is being retried. */
export interface StuckJson {
  readonly kind: FailureKind;
  /** Relative path of the file or folder, or the page name. */
  readonly path: string;
  /** What failed, as a verb: `upload`, `download`, `read`, `scan`, ... */
  readonly action: string;
  /**
   * `failing` (retried with back-off), `stuck` (failed 3 times or more in a row), `refused` (a name
   * escale cannot use), `changing` (a file put off because it changed while it was read to be sent).
   */
  readonly state: FailureState;
  readonly code: ErrorCode;
  readonly message: string;
  /** Failed (or, `changing`, put-off) attempts in a row. */
  readonly failures: number;
  /** First failure of this run of failures (ISO 8601). */
  readonly since: string;
  readonly lastFailure: string;
  /** Rounds skipped before the next attempt (0: next round). */
  readonly retryInRounds: number;
}

/** One recent error of a client: a failed round, or a failure of one file, folder or page. */
export interface RecentErrorJson {
  readonly time: string;
  readonly code: ErrorCode;
  readonly message: string;
  /** What failed: absent for a failed round. */
  readonly kind?: FailureKind;
  readonly path?: string;
  readonly action?: string;
}

/** The back-off of a client whose relay (or start) fails. */
export interface BackoffJson {
  /** Failed attempts in a row. */
  readonly failures: number;
  /** The current pause between attempts, in seconds. */
  readonly delaySec: number;
}

/** How a client follows its local folder (issue 14). */
export interface LocalChangesJson {
  /** `events`: file-system events, only changed paths are looked at; `scans`: the whole folder is scanned at every round. */
  readonly mode: 'events' | 'scans';
  /** Why it scans (watch = no, a network file system, the limit of watched folders, events lost...), or null. */
  readonly reason: string | null;
  /** Folders watched. */
  readonly folders: number;
}

/** One client section in the status. */
export interface ClientStatusJson {
  readonly section: string;
  readonly client: string;
  /** The relay's display form (never holds a secret); null until the relay was opened. */
  readonly relay: string | null;
  readonly state: ClientState;
  readonly stateSince: string;
  /** Why the client is paused, backing off or stopped. */
  readonly reason: string | null;
  readonly lastRound: RoundJson | null;
  /** When the next round (or start attempt) is due; null when none is planned. */
  readonly nextRound: string | null;
  readonly backoff: BackoffJson | null;
  /** Every file, folder or page failing, stuck, refused or changing, oldest failure first. */
  readonly stuck: StuckJson[];
  /**
   * How many of them are failures (`failing` or `stuck`; refused names and files that keep changing
   * are not): the count on which `escale --once` exits 1.
   */
  readonly failing: number;
  /** The last RECENT_ERRORS errors, oldest first. */
  readonly recentErrors: RecentErrorJson[];
  /** How local changes are found; null until the client runs (or for a single round). */
  readonly localChanges: LocalChangesJson | null;
}

/** What `escalectl status --json` prints (version 1). */
export interface StatusJson {
  readonly version: typeof STATUS_VERSION;
  readonly running: boolean;
  readonly pid: number | null;
  readonly pidFile: string;
  readonly clients: ClientStatusJson[];
}

const iso = (ms: number): string => new Date(ms).toISOString();

/** The live status of one client section, updated by its loop and engine. */
export class ClientStatus {
  private state: ClientState = 'starting';
  private stateSinceMs: number;
  private reason: string | null = null;
  private relay: string | null = null;
  private round: { startMs: number; endMs: number | null; result: RoundJson['result']; transferred: number; failed: number; deferred: number; error: ProblemJson | null } | null = null;
  private nextRoundMs: number | null = null;
  private backoff: BackoffJson | null = null;
  private readonly recent: RecentErrorJson[] = [];
  private failures: { list(): TrackedFailure[] } | undefined;
  private localWatch: (() => { readonly mode: 'events' | 'scans'; readonly reason?: string; readonly folders: number }) | undefined;

  constructor(
    readonly section: string,
    readonly client: string,
    private readonly now: () => number = Date.now,
  ) {
    this.stateSinceMs = now();
  }

  /** Connects the client's failure tracker (the `stuck` list is read from it); undefined detaches it. */
  attach(failures: { list(): TrackedFailure[] } | undefined, relay?: string): void {
    this.failures = failures;
    if (relay !== undefined) this.relay = relay;
  }

  /** Connects how the client follows its local folder (read when the status is shown). */
  watchLocal(state: () => { readonly mode: 'events' | 'scans'; readonly reason?: string; readonly folders: number }): void {
    this.localWatch = state;
  }

  /** Enters a state (a new state resets `stateSince`; the reason is kept for paused, backing off and stopped). */
  setState(state: ClientState, reason: string | null = null): void {
    if (state !== this.state) this.stateSinceMs = this.now();
    this.state = state;
    this.reason = reason;
  }

  /** A round starts. */
  roundStarted(): void {
    this.round = { startMs: this.now(), endMs: null, result: 'running', transferred: 0, failed: 0, deferred: 0, error: null };
    this.nextRoundMs = null;
  }

  /** The round ended: completed (`error` undefined) or failed with `error`. */
  roundEnded(counts: { transferred: number; failed: number; deferred: number }, error?: ProblemJson): void {
    const startMs = this.round?.startMs ?? this.now();
    this.round = { startMs, endMs: this.now(), result: error === undefined ? 'ok' : 'failed', ...pickCounts(counts), error: error ?? null };
    if (error !== undefined) this.addError({ code: error.code, message: error.message });
  }

  /** When the next round (or attempt) is due, in ms since the epoch; null: none planned. */
  setNextRound(atMs: number | null): void {
    this.nextRoundMs = atMs;
  }

  /** The current back-off, or null once the client works again. */
  setBackoff(backoff: BackoffJson | null): void {
    this.backoff = backoff;
  }

  /** Records a recent error (the oldest goes when RECENT_ERRORS are kept). */
  addError(error: { code: ErrorCode; message: string; timeMs?: number; kind?: FailureKind; path?: string; action?: string }): void {
    const { timeMs, ...rest } = error;
    this.recent.push({ time: iso(timeMs ?? this.now()), ...rest });
    if (this.recent.length > RECENT_ERRORS) this.recent.splice(0, this.recent.length - RECENT_ERRORS);
  }

  /** Records the failure of a file, folder or page (the tracker's `onFailure`). */
  addFailure(event: FailureEvent): void {
    this.addError({ timeMs: event.timeMs, code: event.code, message: event.message, kind: event.kind, path: event.path, action: event.action });
  }

  /** The JSON form. */
  toJSON(): ClientStatusJson {
    const round = this.round;
    const stuck = stuckJson(this.failures?.list() ?? []);
    return {
      section: this.section,
      client: this.client,
      relay: this.relay,
      state: this.state,
      stateSince: iso(this.stateSinceMs),
      reason: this.reason,
      lastRound: round === null ? null : { start: iso(round.startMs), end: round.endMs === null ? null : iso(round.endMs), result: round.result, ...pickCounts(round), error: round.error },
      nextRound: this.nextRoundMs === null ? null : iso(this.nextRoundMs),
      backoff: this.backoff,
      stuck,
      failing: stuck.filter((f) => isFailure(f.state)).length,
      recentErrors: [...this.recent],
      localChanges: localChangesOf(this.localWatch?.()),
    };
  }
}

/** The JSON form of the tracked subjects. */
function stuckJson(list: readonly TrackedFailure[]): StuckJson[] {
  return list.map((f) => ({
    kind: f.kind,
    path: f.path,
    action: f.action,
    state: f.state,
    code: f.code,
    message: f.message,
    failures: f.failures,
    since: iso(f.sinceMs),
    lastFailure: iso(f.lastMs),
    retryInRounds: f.retryInRounds,
  }));
}

/** How the local folder is followed, in the JSON form. */
function localChangesOf(state: { readonly mode: 'events' | 'scans'; readonly reason?: string; readonly folders: number } | undefined): LocalChangesJson | null {
  return state === undefined ? null : { mode: state.mode, reason: state.reason ?? null, folders: state.folders };
}

function pickCounts(counts: { transferred: number; failed: number; deferred: number }): { transferred: number; failed: number; deferred: number } {
  return { transferred: counts.transferred, failed: counts.failed, deferred: counts.deferred };
}

/** The status of a whole daemon: one ClientStatus per running section. */
export class DaemonStatus {
  readonly clients: ClientStatus[] = [];

  /** Adds (and returns) the status of a section. */
  add(section: string, client: string, now?: () => number): ClientStatus {
    const status = new ClientStatus(section, client, now);
    this.clients.push(status);
    return status;
  }

  /** The JSON form, as this daemon (running) answers it. */
  toJSON(pidFile: string, pid: number = process.pid): StatusJson {
    return { version: STATUS_VERSION, running: true, pid, pidFile, clients: this.clients.map((c) => c.toJSON()) };
  }
}
