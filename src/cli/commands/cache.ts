/**
 * `escalectl make-cache [-r SECTION]` and `escalectl clear-cache [-r SECTION]` (configuration.md
 * C13, with U-18 fixed): build the persistent checksum cache of a section by hashing every
 * local file the daemon would see, or delete the cache file. The cache is opened exactly as the
 * daemon opens it (`openLocal`), so the next round reuses every checksum instead of hashing again.
 */
import { rm, stat } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { hasCode } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { checksumCacheFile, openLocal, ownFilesOf } from '../../daemon/client.js';
import type { OwnFile } from '../../local/own-files.js';
import type { ScannedLocal } from '../../sync/engine.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT, type Output } from '../output.js';
import { commandLogger, eligibleSections, progressPrinter, refuseWhileRunning, selectSections, skippedLine } from './maintenance.js';

/** Options of `make-cache` and `clear-cache`. */
export interface CacheOptions {
  repository?: string;
}

/** Why a section has no persistent checksum cache (undefined when it has one). */
function noPersistentCache(client: ClientConfig): string | undefined {
  if (client.checksumAlgorithm === null) return 'checksums are off (checksum = no)';
  if (client.checksumCache === false) return 'checksum cache = no: checksums are kept in memory only';
  return undefined;
}

/** Hashes every local file of one section into its checksum cache; returns [files, newly hashed]. */
async function buildCache(client: ClientConfig, logger: Logger, output: Output, now: () => number, ownFiles: readonly OwnFile[]): Promise<{ files: number; hashed: number }> {
  const opened = await openLocal(client, logger, ownFiles);
  try {
    const { local } = opened;
    const files: ScannedLocal[] = [];
    for await (const file of local.scan()) files.push(file);
    const total = files.length;
    let done = 0;
    let hashed = 0;
    const progress = progressPrinter(output, now);
    for (const file of files) {
      if (local.cachedChecksum(file) === undefined) {
        try {
          await local.checksum(file);
          hashed += 1;
        } catch (error) {
          // why: a file removed or changed while we walk is the daemon's business at its next round.
          if (!hasCode(error, 'NotFound')) throw error;
          logger.warning(`file '${file.path}' vanished while escale was reading it`);
        }
      }
      done += 1;
      progress(done, total);
    }
    if (total === 0) progress(0, 0);
    return { files: total, hashed };
  } finally {
    await opened.close();
  }
}

/** Runs `escalectl make-cache`; returns the exit code. */
export async function runMakeCache(options: CacheOptions, context: CommandContext, now: () => number = Date.now): Promise<number> {
  const { output } = context;
  const config = await loadConfig(context.configFile);
  const { eligible, skipped } = eligibleSections(config, selectSections(config, options.repository), 'make-cache', noPersistentCache);
  // why: the daemon holds the cache file open and is its only writer while it runs.
  await refuseWhileRunning(config, 'build the checksum cache');
  const logger = commandLogger(config, output, 'make-cache', { terminalLevel: 'warning' });
  for (const s of skipped) output.out(skippedLine(s));
  for (const client of eligible) {
    const log = logger.child(client.section);
    log.info(`building the checksum cache of '${client.localPath}'`);
    const { files, hashed } = await buildCache(client, log, output, now, ownFilesOf(config));
    const line = `[${client.section}] checksum cache ready: ${files} file(s), ${hashed} hashed, ${files - hashed} already cached ('${checksumCacheFile(client)}')`;
    log.info(line);
    output.out(`${line}\n`);
  }
  return EXIT.ok;
}

/** Runs `escalectl clear-cache`; returns the exit code. */
export async function runClearCache(options: CacheOptions, context: CommandContext): Promise<number> {
  const { output } = context;
  const config = await loadConfig(context.configFile);
  const { eligible, skipped } = eligibleSections(config, selectSections(config, options.repository), 'clear-cache', (client) =>
    client.checksumCache === false ? 'checksum cache = no: checksums are kept in memory only' : undefined,
  );
  // why: the running daemon would keep its checksums in memory and write them back later.
  await refuseWhileRunning(config, 'clear the checksum cache');
  const logger = commandLogger(config, output, 'clear-cache', { terminalLevel: 'warning' });
  for (const s of skipped) output.out(skippedLine(s));
  for (const client of eligible) {
    const file = checksumCacheFile(client);
    if (file === null) continue;
    const exists = await stat(file).then(
      () => true,
      () => false,
    );
    if (!exists) {
      output.out(`[${client.section}] no checksum cache to remove ('${file}')\n`);
      continue;
    }
    // why: the cache holds nothing that cannot be computed again from the local files.
    await rm(file, { force: true });
    logger.child(client.section).info(`removed the checksum cache '${file}'`);
    output.out(`[${client.section}] checksum cache removed ('${file}')\n`);
  }
  return EXIT.ok;
}

/** A subcommand with only `-r/--repository`. */
function cacheCommand(name: string, description: string, help: string, run: (options: CacheOptions, context: CommandContext) => Promise<number>): CommandModule {
  return {
    name,
    register(program: Command, context, setExitCode) {
      program
        .command(name)
        .description(description)
        .option('-r, --repository <section>', 'only this client section (default: every section)')
        .addHelpText('after', help)
        .action((options: CacheOptions) => setExitCode(run(options, context())));
    },
  };
}

/** `escalectl make-cache`. */
export const makeCacheCommand = cacheCommand(
  'make-cache',
  'compute the checksums of every local file into the checksum cache, so that escale does not hash them on its next start',
  '\nShows "progress: n of N files" on stderr. Files already cached with their current modification\ntime are not read again. Refused while escale runs on this configuration.\n',
  runMakeCache,
);

/** `escalectl clear-cache`. */
export const clearCacheCommand = cacheCommand(
  'clear-cache',
  'delete the checksum cache file of each section; escale hashes the files again when it needs their checksums',
  '\nRefused while escale runs on this configuration.\n',
  runClearCache,
);
