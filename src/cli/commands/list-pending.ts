/**
 * `escalectl list-pending [-r SECTION] [-p PAGE]... [-d] [--json]` (configuration.md C13): the local
 * files of an index-based section that its pages' persistent indices do not list yet, i.e. what
 * the next uploads will send. Files are chosen and grouped by page exactly as the upload phase
 * does (filters, `r-` modifiers, page scheme); only presence is compared, not modification.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { RefusedNames } from '../../core/refused-names.js';
import type { RelPath } from '../../core/relpath.js';
import type { Logger } from '../../core/log.js';
import { indexRelayFor, openRelayBackend, ownFilesOf, pageSchemeFor, persistentFile } from '../../daemon/client.js';
import { AccessStore } from '../../local/access.js';
import { FileFilter } from '../../local/filter.js';
import { ownFileMatcher, ownFilesInside, type OwnFile } from '../../local/own-files.js';
import { scanLocal, type ScannedFile } from '../../local/scanner.js';
import { indexResourceProblem } from '../../relay/protocol/pages.js';
import { filesByPage } from '../../sync/index-planner.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT } from '../output.js';
import { checkedPages, collect, eligibleSections, commandLogger, notIndexBased, selectSections, skippedLine, type Skipped } from './maintenance.js';

/** Options of `list-pending`. */
export interface ListPendingOptions {
  repository?: string;
  page?: string[];
  directories?: boolean;
  json?: boolean;
}

/** The pending files (or folders, with -d) of one page. */
interface PendingPage {
  readonly page: string;
  readonly pending: string[];
}

/** Why a section has nothing to list: not index-based, or it never uploads. */
function cannotList(client: ClientConfig): string | undefined {
  return notIndexBased(client) ?? (client.mode === 'download' ? 'download mode: nothing is uploaded' : undefined);
}

/** The folder of a relative path, `.` for the root. */
function folderOf(path: RelPath): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '.' : path.slice(0, slash);
}

/** The local files of a section as the upload phase takes them (escale's own files left out, as the daemon does), grouped by page. */
async function localFilesByPage(client: ClientConfig, ownFiles: readonly OwnFile[], logger: Logger): Promise<Map<string, ScannedFile[]>> {
  // why: read-only: the access store is opened only when it exists (never created), and the checksum
  // cache is not opened at all, so the command may run beside the daemon.
  const accessFile = persistentFile(client, 'am');
  const access = existsSync(accessFile) ? await AccessStore.open(accessFile) : undefined;
  try {
    const files: ScannedFile[] = [];
    const onError = (path: string, error: Error): void => logger.warning(`cannot read '${path}': ${error.message}`);
    const refused = new RefusedNames(logger);
    const onRefused = (path: string, problem: string): void => refused.refuse('local', path, problem);
    const scheme = pageSchemeFor(client);
    const skip = ownFileMatcher(ownFilesInside(client.localPath, ownFiles).map((file) => file.path));
    for await (const file of scanLocal(client.localPath, new FileFilter(client.filters), { onError, onRefused, ...(skip === undefined ? {} : { skip }) })) {
      // why: a name the index cannot carry is never sent, so it is not pending either.
      const problem = indexResourceProblem(file.path, scheme);
      if (problem === undefined) files.push(file);
      else onRefused(file.diskPath ?? file.path, problem);
    }
    return filesByPage(files, scheme, (path) => access?.get(path) ?? {});
  } finally {
    await access?.close();
  }
}

/** The pending files of each page of one section, pages and files sorted; pages with an empty or missing index are left out (configuration.md C13). */
async function pendingOf(client: ClientConfig, ownFiles: readonly OwnFile[], named: string[] | undefined, directories: boolean, logger: Logger): Promise<PendingPage[]> {
  const byPage = await localFilesByPage(client, ownFiles, logger);
  const backend = await openRelayBackend(client, { logger, readOnly: true });
  try {
    const relay = indexRelayFor(client, backend, logger);
    const out: PendingPage[] = [];
    for (const page of [...byPage.keys()].sort()) {
      if (named !== undefined && !named.includes(page)) continue;
      const { entries } = await relay.readPersistentIndex(page);
      if (entries.size === 0) {
        logger.debug(`page '${page}' has no index yet; skipped`);
        continue;
      }
      const missing = (byPage.get(page) ?? []).filter((file) => !entries.has(file.path)).map((file) => file.path);
      const pending = directories ? [...new Set(missing.map(folderOf))] : missing;
      if (pending.length > 0) out.push({ page, pending: pending.sort() });
    }
    return out;
  } finally {
    await backend.close().catch(() => undefined);
  }
}

/** Runs `escalectl list-pending`; returns the exit code. */
export async function runListPending(options: ListPendingOptions, context: CommandContext): Promise<number> {
  const { output } = context;
  const named = checkedPages(options.page);
  const config = await loadConfig(context.configFile);
  const { eligible, skipped } = eligibleSections(config, selectSections(config, options.repository), 'list-pending', cannotList);
  const logger = commandLogger(config, output, 'list-pending', { terminalLevel: 'warning' });
  const results: { section: string; pages: PendingPage[] }[] = [];
  for (const client of eligible) {
    results.push({ section: client.section, pages: await pendingOf(client, ownFilesOf(config), named, options.directories === true, logger.child(client.section)) });
  }
  if (options.json) {
    const skippedJson = skipped.map((s: Skipped) => ({ section: s.section, skipped: s.why }));
    output.out(`${JSON.stringify([...results, ...skippedJson])}\n`);
    return EXIT.ok;
  }
  for (const s of skipped) output.out(skippedLine(s));
  for (const { section, pages } of results) {
    // why: 0.7 prints pages only; with several sections, say which section the pages belong to.
    if (results.length > 1) output.out(`[${section}]\n`);
    for (const { page, pending } of pages) {
      output.out(`in page '${page}':\n`);
      for (const path of pending) output.out(`  ${path}\n`);
    }
  }
  return EXIT.ok;
}

/** `escalectl list-pending`. */
export const listPendingCommand: CommandModule = {
  name: 'list-pending',
  register(program: Command, context, setExitCode) {
    program
      .command('list-pending')
      .description('list the local files that the relay index does not list yet (what the next uploads will send)')
      .option('-r, --repository <section>', 'only this client section (default: every index-based section)')
      .option('-p, --page <page>', 'only this page (repeatable)', collect)
      .option('-d, --directories', 'print the folders that hold pending files instead of the files')
      .option('--json', 'print [{"section", "pages": [{"page", "pending": [...]}]}, {"section", "skipped"}] as JSON')
      .addHelpText('after', '\nOnly names are compared: a file listed in the index but modified since is not shown. Pages whose\nindex is empty or missing on the relay are left out.\n')
      .action((options: ListPendingOptions) => setExitCode(runListPending(options, context())));
  },
};
