/**
 * `escalectl suspend [-r SECTION] [-p PAGE]... [--timeout SECONDS]` and `escalectl resume [-r SECTION]
 * [-p PAGE]...` (configuration.md C13, relay-format.md P7.6 and P4.7, with U-13 fixed): suspend takes the
 * write lock of every page (or of the pages named) of an index relay as client `<client name>-suspend`
 * and leaves them in place, so that every client postpones its transfers on those pages; it waits
 * for locks held by others with the adaptive pause and gives up after the timeout. resume removes
 * only the locks that suspend took.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { EscaleError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { AdaptiveClock } from '../../daemon/adaptive-clock.js';
import { indexRelayFor, openRelayBackend, pageSchemeFor } from '../../daemon/client.js';
import type { IndexRelay } from '../../relay/protocol/index-relay.js';
import { DEFAULT_PAGE } from '../../relay/protocol/pages.js';
import type { LockRecord } from '../../relay/protocol/records.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT, type Output } from '../output.js';
import { checkedPages, collect, eligibleSections, commandLogger, notIndexBased, selectSections, skippedLine } from './maintenance.js';

/** Options of `suspend` and `resume`. */
export interface PageLockOptions {
  repository?: string;
  page?: string[];
  /** `suspend` only: seconds to wait for locks held by other clients. */
  timeout?: string;
}

/** What `suspend` may be given besides its options (tests inject the pause and the clock). */
export interface SuspendDependencies {
  readonly sleep?: (ms: number) => Promise<void>;
  readonly now?: () => number;
}

/** Default `--timeout` of suspend: as long as `upload max wait`, enough for a client to finish a push. */
export const DEFAULT_SUSPEND_TIMEOUT_SEC = 600;

/** The owner name of the locks that suspend takes and resume removes (relay-format.md P4.7). */
export function suspendOwner(client: ClientConfig): string {
  return `${client.clientName}-suspend`;
}

function ownerOf(record: LockRecord | undefined): string {
  return record?.owner === undefined ? '(nobody)' : record.owner.trim();
}

function parseTimeout(text: string | undefined): number {
  if (text === undefined) return DEFAULT_SUSPEND_TIMEOUT_SEC;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || value < 0) throw new EscaleError('Usage', `--timeout expects a number of seconds (0 or more), got '${text}'`);
  return value;
}

/** Opens the section's relay as the suspend client and runs `work` on it. */
async function withSuspendRelay<T>(client: ClientConfig, logger: Logger, now: () => number, work: (relay: IndexRelay) => Promise<T>): Promise<T> {
  const backend = await openRelayBackend(client, { logger });
  try {
    return await work(indexRelayFor(client, backend, logger, now, suspendOwner(client)));
  } finally {
    await backend.close().catch(() => undefined);
  }
}

/** The pages to lock: those named, else every page on the relay (and page `0` of a one-page relay, even before its first push). */
async function pagesToLock(client: ClientConfig, relay: IndexRelay, named: string[] | undefined): Promise<string[]> {
  if (named !== undefined) return named;
  const pages = new Set((await relay.snapshot()).pages.keys());
  if (pageSchemeFor(client).kind === 'single') pages.add(DEFAULT_PAGE);
  return [...pages].sort();
}

/**
 * Locks the pages of one section, re-listing the relay and pausing with the adaptive clock (sync-rules.md R9)
 * while others hold some of them, until all are locked or `timeoutSec` passed. Returns whether
 * every page was locked; the locks taken stay in place either way.
 */
async function suspendSection(client: ClientConfig, relay: IndexRelay, named: string[] | undefined, timeoutSec: number, output: Output, logger: Logger, sleep: (ms: number) => Promise<void>, now: () => number): Promise<boolean> {
  const { section } = client;
  const clock = new AdaptiveClock(client.refreshSec);
  const deadline = now() + timeoutSec * 1000;
  const locked = new Set<string>();
  const announced = new Set<string>();
  for (;;) {
    const waiting: string[] = [];
    // why: without -p, pages created while we wait must be locked too, so each pass lists again.
    for (const page of await pagesToLock(client, relay, named)) {
      if (locked.has(page)) continue;
      const lock = await relay.lock(page, 'w', { pollMs: 0, maxWaitMs: 0 });
      if (lock === 'busy') {
        waiting.push(page);
        continue;
      }
      locked.add(page);
      logger.info(`page '${page}' locked for '${relay.client}'`);
      output.out(`in ${section}: page '${page}' locked\n`);
    }
    if (waiting.length === 0) {
      if (locked.size === 0) output.out(`in ${section}: no page to lock\n`);
      return true;
    }
    const left = deadline - now();
    if (left <= 0) {
      for (const page of waiting) output.err(`in ${section}: page '${page}' is still locked by '${ownerOf(await relay.readLock(page))}' after ${timeoutSec} s; not suspended\n`);
      if (locked.size > 0) output.err(`in ${section}: the ${locked.size} page(s) locked above stay locked; run 'escalectl suspend' again to finish, or 'escalectl resume' to release them\n`);
      return false;
    }
    for (const page of waiting) {
      if (announced.has(page)) continue;
      announced.add(page);
      output.out(`in ${section}: page '${page}' is locked by '${ownerOf(await relay.readLock(page))}'; waiting (at most ${Math.ceil(left / 1000)} s)\n`);
    }
    await sleep(Math.min(clock.next() * 1000, left));
  }
}

/** Runs `escalectl suspend`; returns the exit code (1 when some page could not be locked in time). */
export async function runSuspend(options: PageLockOptions, context: CommandContext, dependencies: SuspendDependencies = {}): Promise<number> {
  const { output } = context;
  const named = checkedPages(options.page);
  const timeoutSec = parseTimeout(options.timeout);
  const now = dependencies.now ?? Date.now;
  const sleep = dependencies.sleep ?? ((ms: number) => sleepFor(ms));
  const config = await loadConfig(context.configFile);
  const { eligible, skipped } = eligibleSections(config, selectSections(config, options.repository), 'suspend', notIndexBased);
  const logger = commandLogger(config, output, 'suspend', { terminalLevel: 'warning' });
  for (const s of skipped) output.out(skippedLine(s));
  let complete = true;
  for (const client of eligible) {
    const log = logger.child(client.section);
    const done = await withSuspendRelay(client, log, now, (relay) => suspendSection(client, relay, named, timeoutSec, output, log, sleep, now));
    complete &&= done;
  }
  return complete ? EXIT.ok : EXIT.failure;
}

/** Removes the suspend locks of one section; foreign locks are reported and left alone. */
async function resumeSection(client: ClientConfig, relay: IndexRelay, named: string[] | undefined, output: Output, logger: Logger): Promise<void> {
  const { section } = client;
  const pages = named ?? [...(await relay.snapshot()).pages].filter(([, files]) => files.lock !== undefined).map(([page]) => page).sort();
  let released = 0;
  for (const page of pages) {
    const outcome = await relay.releaseOwnLock(page);
    if (outcome.kind === 'released') {
      released += 1;
      logger.info(`page '${page}' unlocked ('${relay.client}')`);
      output.out(`in ${section}: page '${page}' unlocked\n`);
    } else if (outcome.kind === 'foreign') {
      output.out(`in ${section}: page '${page}' is locked by another client ('${ownerOf(outcome.record)}'); left in place\n`);
    } else if (named !== undefined) {
      output.out(`in ${section}: page '${page}' is not locked\n`);
    }
  }
  if (named === undefined && released === 0) output.out(`in ${section}: no page locked by '${relay.client}'\n`);
}

/** Runs `escalectl resume`; returns the exit code. */
export async function runResume(options: PageLockOptions, context: CommandContext): Promise<number> {
  const { output } = context;
  const named = checkedPages(options.page);
  const config = await loadConfig(context.configFile);
  const { eligible, skipped } = eligibleSections(config, selectSections(config, options.repository), 'resume', notIndexBased);
  const logger = commandLogger(config, output, 'resume', { terminalLevel: 'warning' });
  for (const s of skipped) output.out(skippedLine(s));
  for (const client of eligible) {
    const log = logger.child(client.section);
    await withSuspendRelay(client, log, Date.now, (relay) => resumeSection(client, relay, named, output, log));
  }
  return EXIT.ok;
}

/** `escalectl suspend`. */
export const suspendCommand: CommandModule = {
  name: 'suspend',
  register(program: Command, context, setExitCode) {
    program
      .command('suspend')
      .description('lock every page of an index relay (as <client name>-suspend) so that all clients postpone their transfers on it')
      .option('-r, --repository <section>', 'only this client section (default: every index-based section)')
      .option('-p, --page <page>', 'only this page (repeatable; default: every page on the relay)', collect)
      .option('--timeout <seconds>', `give up waiting for pages locked by other clients after this long (default ${DEFAULT_SUSPEND_TIMEOUT_SEC}; 0: try once)`)
      .addHelpText(
        'after',
        "\nThe locks stay in place after suspend exits; 'escalectl resume' removes them. Clients treat a lock\nolder than their 'lock timeout' (default 3 days) as stale and break it. Exit status 1 when some page\nwas still locked by another client at the timeout.\n",
      )
      .action((options: PageLockOptions) => setExitCode(runSuspend(options, context())));
  },
};

/** `escalectl resume`. */
export const resumeCommand: CommandModule = {
  name: 'resume',
  register(program: Command, context, setExitCode) {
    program
      .command('resume')
      .description("remove the page locks that 'escalectl suspend' took (locks of other clients are left in place)")
      .option('-r, --repository <section>', 'only this client section (default: every index-based section)')
      .option('-p, --page <page>', 'only this page (repeatable; default: every locked page)', collect)
      .action((options: PageLockOptions) => setExitCode(runResume(options, context())));
  },
};
