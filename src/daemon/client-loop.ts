import { setTimeout as sleepFor } from 'node:timers/promises';
import { EscaleError, isRetryable } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ReportOnce } from '../core/report-once.js';
import type { AdaptiveClock } from './adaptive-clock.js';
import { Backoff } from './backoff.js';
import type { RootCheck } from './local-root.js';
import type { ClientStatus } from './status-model.js';
import type { Wakeup } from './wakeup.js';

/** What one round reports to the loop. */
export interface RoundResult {
  transferred: number;
  failed: number;
  deferred: number;
  /** Files, folders or pages still failing or stuck after the round (refused names not counted). */
  failing?: number;
  planned?: readonly { kind: string }[];
}

/** One client's round, as the loop drives it. */
export interface RoundRunner {
  /** Runs a round; `list` lists the relay even when its change marker says nothing changed. */
  round(signal?: AbortSignal, options?: { readonly list?: boolean }): Promise<RoundResult>;
  requestRepair(): void;
  /**
   * Optional: whether the relay may have changed since the last round's listing, at the cost of
   * one small request (its change marker). Without it, the loop sleeps until the next round.
   */
  relayChanged?(signal?: AbortSignal): Promise<boolean>;
}

/** How the loop runs. */
export interface ClientLoopOptions {
  readonly runner: RoundRunner;
  readonly clock: AdaptiveClock;
  readonly logger: Logger;
  /** Stop after one round. */
  readonly once?: boolean;
  /** Ends the loop (SIGINT/SIGTERM). */
  readonly signal: AbortSignal;
  /** The pause between failed rounds (default: `Backoff.forRefresh(10)`; the daemon passes one for the section's refresh). */
  readonly backoff?: Backoff;
  /** Checked before every round: a client whose local root is missing pauses (see LocalRootGuard). */
  readonly guard?: { check(): Promise<RootCheck> };
  /** The client's live status (updated at each change). */
  readonly status?: ClientStatus;
  /** Waits between rounds (injected for tests). */
  readonly sleep?: (seconds: number, signal: AbortSignal) => Promise<void>;
  /** Clock in milliseconds for the status (default Date.now). */
  readonly now?: () => number;
  /** Seconds between two polls of the relay while idle (`poll interval`); without it the loop sleeps until the next round. */
  readonly pollIntervalSec?: number;
  /** Woken by the local index when settled local changes wait for a round. */
  readonly wakeup?: Wakeup;
}

/** How the loop ended. */
export interface ClientLoopResult {
  readonly rounds: number;
  /**
   * For `--once`: true when the round failed, the client was paused, or a file is failing or stuck
   * (refused names do not count).
   */
  readonly failed: boolean;
  /** The unexpected exception (not an EscaleError: a bug) that ended the loop, if any: a crash, restarted with `keep alive`. */
  readonly fatal?: unknown;
}

const defaultSleep = async (seconds: number, signal: AbortSignal): Promise<void> => {
  await sleepFor(seconds * 1000, undefined, { signal }).catch(() => undefined);
};

/**
 * Runs rounds until the signal fires. The error policy (sync-rules.md R10, reworked by issue 12):
 * - a file, folder or page that fails is the engine's business (tracked, retried with back-off);
 *   the round goes on and counts as completed;
 * - a round that fails as a whole (the relay is unreachable, refuses the login, is full, its listing
 *   fails: any EscaleError out of `round`) is retried forever, after a pause that doubles up to the
 *   back-off's cap; a line is logged at each change of cause or pause, and one when rounds work again;
 * - a local root that is missing or lost its marker pauses the client (one ERROR per change, checked
 *   every round, the normal pause between rounds);
 * - an unexpected exception (not an EscaleError) is a crash: the loop ends with `fatal`, and
 *   `keep alive` (or `-r`) decides whether the client starts again.
 * Repair runs again after any failed round.
 */
export async function runClientLoop(options: ClientLoopOptions): Promise<ClientLoopResult> {
  const { runner, clock, logger, signal, status } = options;
  const sleep = options.sleep ?? defaultSleep;
  const now = options.now ?? Date.now;
  const backoff = options.backoff ?? Backoff.forRefresh(10);
  const reported = new ReportOnce();
  let rounds = 0;
  let failed = false;
  let paused = false;
  /** Whether the next round must list the relay (every `refresh`, or the change marker moved). */
  let list = true;
  while (!signal.aborted) {
    let delay: number;
    /** Whether the next round may come earlier, from a local change or the relay's change marker. */
    let mayWake = false;
    const check = options.guard === undefined ? ({ ok: true } as const) : await options.guard.check();
    if (!check.ok) {
      failed = true;
      if (reported.isNew('root', check.reason)) logger.error(`pausing this client: ${check.reason}`);
      status?.setState('paused', check.reason);
      paused = true;
      delay = clock.next();
    } else {
      if (check.warning !== undefined && reported.isNew('root-warning', check.warning)) logger.warning(check.warning);
      if (paused) {
        paused = false;
        reported.clear('root');
        logger.info('the local folder is back; resuming');
        status?.setState('idle');
      }
      rounds += 1;
      status?.roundStarted();
      try {
        const report = await runner.round(signal, { list });
        status?.roundEnded(report);
        if (backoff.failures > 0) {
          logger.info(`rounds work again after ${backoff.failures} failed round(s)`);
          backoff.reset();
          reported.clear('round');
          status?.setBackoff(null);
        }
        if (report.failed > 0 || (report.failing ?? 0) > 0) failed = true;
        const idle = report.transferred === 0 && report.failed === 0 && report.deferred === 0 && !(report.planned ?? []).some((a) => a.kind !== 'note');
        if (rounds === 1 && idle) logger.info('repository is up to date');
        if (report.transferred > 0) {
          logger.debug('reset adaptive timer');
          clock.reset();
        }
        delay = clock.next();
        mayWake = true;
        status?.setState('idle');
      } catch (error) {
        if (signal.aborted) break;
        if (!(error instanceof EscaleError)) {
          logger.critical(`client crashed: ${describe(error)}`);
          logger.debug(String((error as Error)?.stack ?? error));
          status?.roundEnded({ transferred: 0, failed: 0, deferred: 0 }, { code: 'Internal', message: describe(error) });
          return { rounds, failed: true, fatal: error };
        }
        failed = true;
        runner.requestRepair();
        delay = backoff.next();
        const cause = `${error.code}: ${error.message}`;
        status?.roundEnded({ transferred: 0, failed: 0, deferred: 0 }, { code: error.code, message: error.message });
        status?.setBackoff({ failures: backoff.failures, delaySec: delay });
        status?.setState('backing off', cause);
        // why: one line per change of cause or pause, not one per round while the relay stays away.
        if (reported.isNew('round', `${error.code}|${delay}`)) {
          const line = `round failed (${cause}); next attempt in ${formatSeconds(delay)}${delay >= backoff.maxSec ? ' (the longest pause)' : ''}`;
          if (isRetryable(error)) logger.warning(line);
          else logger.error(line);
        } else {
          logger.debug(`round failed again (${cause})`);
        }
      }
    }
    if (options.once) break;
    status?.setNextRound(now() + delay * 1000);
    list = mayWake ? await waitForChange(options, delay, signal, sleep, now) : (await sleep(delay, signal), true);
  }
  logger.debug('exiting');
  return { rounds, failed };
}

/**
 * Waits up to `delaySec` (the next `refresh` round) for a reason to run a round earlier: settled
 * local changes (the wakeup), or the relay's change marker, polled every `poll interval`. Returns
 * whether the round must list the relay (refresh due, or the marker moved); a local change alone
 * lets the round ask the marker itself.
 */
async function waitForChange(options: ClientLoopOptions, delaySec: number, signal: AbortSignal, sleep: (seconds: number, signal: AbortSignal) => Promise<void>, now: () => number): Promise<boolean> {
  const { runner, wakeup, pollIntervalSec } = options;
  const deadline = now() + delaySec * 1000;
  const poll = runner.relayChanged === undefined ? undefined : pollIntervalSec;
  if (poll === undefined && wakeup === undefined) {
    await sleep(delaySec, signal);
    return true;
  }
  while (!signal.aborted) {
    const left = deadline - now();
    if (left <= 0) return true;
    const step = Math.min(left, (poll ?? delaySec) * 1000);
    const woken = wakeup === undefined ? (await sleep(step / 1000, signal), false) : await wakeup.wait(step, signal);
    if (signal.aborted) break;
    if (woken) return false;
    if (now() >= deadline) return true;
    try {
      if (poll !== undefined && (await runner.relayChanged?.(signal)) === true) return true;
    } catch (error) {
      // why: a poll that fails says nothing; the round that follows reports what is wrong with the relay.
      if (signal.aborted) break;
      options.logger.debug(`polling the relay failed: ${describe(error)}`);
      return true;
    }
  }
  return true;
}

/** `5 s`, `2 min`, `1.5 h`. */
export function formatSeconds(seconds: number): string {
  if (seconds < 120) return `${Number(seconds.toFixed(1))} s`;
  if (seconds < 7200) return `${Number((seconds / 60).toFixed(1))} min`;
  return `${Number((seconds / 3600).toFixed(1))} h`;
}

function describe(error: unknown): string {
  if (error instanceof EscaleError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
