/**
 * `escalectl fix [-r SECTION] [-u] [-f] [-p PAGE ...] [--json] [--dry-run]`: recovery of a lost
 * relay repository (configuration.md C13, relay-format.md P7.1). Rebuilds the relay's metadata (placeholders, or
 * index pages) from each selected section's local files, as if they had been fully synchronized,
 * so that up-to-date clients transfer nothing afterwards. The records and their meaning are
 * explained in `src/sync/recovery.ts`.
 */
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { EscaleError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { indexRelayFor, openLocal, openRelayBackend, ownFilesOf, pageSchemeFor, placeholderRelayFor } from '../../daemon/client.js';
import type { OwnFile } from '../../local/own-files.js';
import type { Backend } from '../../relay/backend.js';
import { pageNameProblem } from '../../relay/protocol/pages.js';
import { recoverIndex, recoverPlaceholders, type PageLockWait, type RecoveryOptions, type RecoveryReport } from '../../sync/recovery.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT, packageVersion } from '../output.js';
import { commandLogger, refuseWhileRunning, selectSections } from './maintenance.js';

/** Options of `escalectl fix`. */
export interface FixOptions {
  repository?: string;
  update?: boolean;
  fast?: boolean;
  page?: string[];
  json?: boolean;
  dryRun?: boolean;
}

/** What tests may change besides the options. */
export interface FixEnvironment {
  /** Wait for a page lock held by another client (default: look every 5 s for up to 60 s). */
  readonly lockWait?: PageLockWait;
  readonly now?: () => number;
}

/** The outcome of one section, as printed. */
interface SectionResult {
  readonly section: string;
  readonly report?: RecoveryReport;
  readonly error?: string;
}

const DEFAULT_LOCK_WAIT: PageLockWait = { pollMs: 5000, maxWaitMs: 60_000 };

/** Recovers one section; errors are thrown to the caller, which reports them and goes on. */
async function fixSection(client: ClientConfig, options: FixOptions, context: CommandContext, logger: Logger, env: FixEnvironment, ownFiles: readonly OwnFile[]): Promise<RecoveryReport> {
  const pages = options.page ?? [];
  if (!client.index.enabled && pages.length > 0) {
    throw new EscaleError('Usage', `-p/--page applies to index relays only; [${client.section}] uses placeholders`);
  }
  if (client.index.enabled && options.update) logger.info('-u/--update has no effect on index relays: every page index is replaced');
  const opened = await openLocal(client, logger, ownFiles);
  let backend: Backend;
  try {
    backend = await openRelayBackend(client, { logger, readOnly: options.dryRun === true });
  } catch (error) {
    await opened.close();
    throw error;
  }
  try {
    const recovery: RecoveryOptions = {
      client: client.clientName,
      mode: client.mode,
      fast: options.fast === true,
      update: options.update === true,
      dryRun: options.dryRun === true,
      logger,
      progress: (line) => context.output.err(`[${client.section}] ${line}\n`),
      now: env.now ?? Date.now,
    };
    if (client.mode === 'download') logger.info('download mode: this client pushes nothing, so it has nothing to recover');
    if (client.index.enabled) {
      const relay = indexRelayFor(client, backend, logger, recovery.now);
      return await recoverIndex(relay, opened.local, pageSchemeFor(client), pages, env.lockWait ?? DEFAULT_LOCK_WAIT, recovery);
    }
    // why: the relay reads the wall clock only to compare it with the relay's (skew warning); `recovery.now` times the progress lines.
    return await recoverPlaceholders(placeholderRelayFor(client, backend, logger), opened.local, recovery);
  } finally {
    await Promise.allSettled([backend.close(), opened.close()]);
  }
}

/** One human-readable summary line of a section. */
function describe(result: SectionResult, dryRun: boolean): string {
  const { section, report } = result;
  if (report === undefined) return `[${section}] failed: ${result.error ?? 'unknown error'}\n`;
  const head = `[${section}] ${report.files} local file(s)`;
  if (report.flavour === 'placeholder') {
    const counts = Object.entries(report.placeholders).map(([outcome, n]) => `${n} ${outcome}`);
    return `${head}; placeholders${dryRun ? ' (dry run)' : ''}: ${counts.join(', ') || 'none'}\n`;
  }
  const pages = report.pages.map((p) => `'${p.page}' ${p.outcome} (${p.entries} entr${p.entries === 1 ? 'y' : 'ies'})`);
  return `${head}; index pages${dryRun ? ' (dry run)' : ''}: ${pages.join(', ') || 'none'}\n`;
}

/** Runs `escalectl fix`; returns 0 when every section was recovered completely, 1 otherwise. */
export async function runFix(options: FixOptions, context: CommandContext, env: FixEnvironment = {}): Promise<number> {
  for (const page of options.page ?? []) {
    const problem = pageNameProblem(page);
    if (problem !== undefined) throw new EscaleError('Usage', `invalid page name '${page}': it ${problem}`);
  }
  const config = await loadConfig(context.configFile);
  const clients = selectSections(config, options.repository);
  // why: a running escale on an empty relay re-sends everything (what fix avoids), and it holds the checksum cache open.
  if (!options.dryRun) await refuseWhileRunning(config, "run 'escalectl fix'");
  const logger = commandLogger(config, context.output, 'fix', { dryRun: options.dryRun === true });
  logger.info(`running version ${packageVersion()}: fix${options.dryRun ? ' (dry run)' : ''}`);
  const results: SectionResult[] = [];
  for (const client of clients) {
    const sectionLogger = logger.child(client.section);
    try {
      results.push({ section: client.section, report: await fixSection(client, options, context, sectionLogger, env, ownFilesOf(config)) });
    } catch (error) {
      // why: configuration.md C13: one section's failure is reported and the next section is processed.
      const message = error instanceof Error ? error.message : String(error);
      sectionLogger.error(`cannot recover [${client.section}]: ${message}`);
      results.push({ section: client.section, error: message });
    }
  }
  const complete = results.every((r) => r.report !== undefined && r.report.locked.length === 0);
  if (options.json) {
    const sections = results.map((r) => ({ section: r.section, ...(r.report ?? {}), error: r.error ?? null }));
    context.output.out(`${JSON.stringify({ dryRun: options.dryRun === true, complete, sections })}\n`);
  } else {
    for (const result of results) context.output.out(describe(result, options.dryRun === true));
    if (results.some((r) => (r.report?.locked.length ?? 0) > 0)) {
      context.output.out('some files or pages were locked by other clients; run escalectl fix again (with -u on placeholder relays) when they are idle\n');
    }
  }
  return complete ? EXIT.ok : EXIT.failure;
}

/** The `fix` subcommand. */
export const fixCommand: CommandModule = {
  name: 'fix',
  register(program: Command, context: () => CommandContext, setExitCode: (code: Promise<number>) => void): void {
    program
      .command('fix')
      .description('recover a lost relay repository: rebuild its placeholders or index pages from the local files, as if all were synchronized (every client must be up to date)')
      .option('-r, --repository <section>', 'only this client section (default: every section)')
      .option('-u, --update', 'placeholder relays: keep the placeholders that exist (default: replace them)')
      .option('-f, --fast', 'take no locks (only when no client runs); placeholder relays: only write placeholders of files the relay does not know')
      .option('-p, --page <pages...>', 'index relays: only these pages')
      .option('--json', 'print a JSON summary')
      .option('--dry-run', 'show what would be written, change nothing on the relay')
      .action((options: FixOptions) => {
        setExitCode(runFix(options, context()));
      });
  },
};
