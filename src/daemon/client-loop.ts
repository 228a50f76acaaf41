import { setTimeout as sleepFor } from 'node:timers/promises';
import { EscaleError, isRetryable } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { AdaptiveClock } from './adaptive-clock.js';

/** One client's round, as the loop drives it. */
export interface RoundRunner {
  round(signal?: AbortSignal): Promise<{ transferred: number; failed: number; deferred: number; planned?: readonly { kind: string }[] }>;
  requestRepair(): void;
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
  /** Consecutive failed rounds with the same permanent error code before the client gives up. */
  readonly maxPermanentFailures?: number;
  /** Waits between rounds (injected for tests). */
  readonly sleep?: (seconds: number, signal: AbortSignal) => Promise<void>;
}

/** How the loop ended. */
export interface ClientLoopResult {
  readonly rounds: number;
  /** True when a round failed or a file could not be transferred (for `--once`) or the client gave up. */
  readonly failed: boolean;
  /** The error that made the client give up, if any. */
  readonly fatal?: unknown;
}

const defaultSleep = async (seconds: number, signal: AbortSignal): Promise<void> => {
  await sleepFor(seconds * 1000, undefined, { signal }).catch(() => undefined);
};

/**
 * Runs rounds until the signal fires: the error policy of cli-and-config §7.3, improved: transient
 * errors (network, 5xx, busy locks) are retried after a clock step forever; a permanent error is
 * retried too, but the client gives up after `maxPermanentFailures` consecutive rounds failing
 * with the same code. Repair runs again after any error.
 */
export async function runClientLoop(options: ClientLoopOptions): Promise<ClientLoopResult> {
  const { runner, clock, logger, signal } = options;
  const sleep = options.sleep ?? defaultSleep;
  const maxPermanent = options.maxPermanentFailures ?? 5;
  let rounds = 0;
  let failed = false;
  let lastCode: string | undefined;
  let sameCodeCount = 0;
  while (!signal.aborted) {
    rounds += 1;
    try {
      const report = await runner.round(signal);
      lastCode = undefined;
      sameCodeCount = 0;
      if (report.failed > 0) failed = true;
      const idle = report.transferred === 0 && report.failed === 0 && report.deferred === 0 && !(report.planned ?? []).some((a) => a.kind !== 'note');
      if (rounds === 1 && idle) logger.info('repository is up to date');
      if (report.transferred > 0) {
        logger.debug('reset adaptive timer');
        clock.reset();
      }
    } catch (error) {
      if (signal.aborted) break;
      failed = true;
      runner.requestRepair();
      const code = error instanceof EscaleError ? error.code : 'Internal';
      sameCodeCount = code === lastCode ? sameCodeCount + 1 : 1;
      lastCode = code;
      if (isRetryable(error)) {
        logger.warning(`round failed (${describe(error)}); retrying after a pause`);
      } else {
        logger.error(`round failed: ${describe(error)}`);
        if (!(error instanceof EscaleError)) logger.debug(String((error as Error)?.stack ?? error));
        if (sameCodeCount >= maxPermanent || options.once) {
          if (!options.once) logger.critical(`giving up after ${sameCodeCount} failed rounds in a row: ${describe(error)}`);
          return { rounds, failed: true, fatal: error };
        }
      }
    }
    if (options.once) break;
    await sleep(clock.next(), signal);
  }
  logger.debug('exiting');
  return { rounds, failed };
}

function describe(error: unknown): string {
  if (error instanceof EscaleError) return `${error.code}: ${error.message}`;
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
