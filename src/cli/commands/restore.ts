/**
 * `escalectl restore SECTION ARCHIVE [-f] [--purge]`: writes the files of a backup archive into the
 * section's relay (configuration.md C13, relay-format.md P7.5, with escale's changes: the archive is checked whole
 * before anything is written, hostile members are refused, `--purge` empties the relay first).
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pipeline } from 'node:stream';
import type { Command } from 'commander';
import { EscaleError, fromSystemError } from '../../core/errors.js';
import { decompressorFor, detectCompression, type Compression } from '../../relay/protocol/backup-archive.js';
import type { LockerClock } from '../../relay/protocol/relay-groups.js';
import { checkArchive, restoreArchive, type OpenTar } from '../../relay/protocol/relay-restore.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT } from '../output.js';
import { progressPrinter } from './maintenance.js';
import { openRelayJob, reportFailures } from './relay-job.js';

/** Options of `escalectl restore`. */
export interface RestoreCommandOptions {
  fast?: boolean;
  purge?: boolean;
  json?: boolean;
}

/** The archive file and its compression (judged by content); a name without extension may mean NAME.tar.bz2, as backup writes it. */
async function archiveOf(name: string): Promise<{ file: string; compression: Compression }> {
  const candidates = extname(name) === '' ? [name, `${name}.tar.bz2`] : [name];
  for (const candidate of candidates) {
    const file = resolve(candidate);
    let handle;
    try {
      handle = await open(file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw fromSystemError(error, file);
    }
    try {
      if (!(await handle.stat()).isFile()) throw new EscaleError('Usage', `'${name}' is not a regular file`);
      const head = Buffer.alloc(4);
      const { bytesRead } = await handle.read(head, 0, head.length, 0);
      return { file, compression: detectCompression(head.subarray(0, bytesRead)) };
    } finally {
      await handle.close();
    }
  }
  throw new EscaleError('NotFound', `cannot find archive '${name}'`);
}

/** Runs `escalectl restore`; returns the exit code (1 when some files could not be written). */
export async function runRestore(section: string, archive: string, options: RestoreCommandOptions, context: CommandContext, clock: LockerClock = { now: Date.now }): Promise<number> {
  const { file, compression } = await archiveOf(archive);
  const job = await openRelayJob('restore', section, context, clock);
  const { logger, signal } = job;
  try {
    const openTar: OpenTar = () => {
      const tar = decompressorFor(compression, signal);
      pipeline(createReadStream(file), tar, () => undefined);
      return tar;
    };
    logger.info(`checking the archive '${file}'`);
    const checking = progressPrinter(context.output, clock.now);
    const checked = await checkArchive(openTar, signal, (count) => checking(count));
    const { manifest } = checked;
    if (manifest === undefined) logger.warning(`'${file}' has no manifest (written by escale 0.7 or by hand); restoring its files as they are`);
    else {
      if (manifest.relay !== job.flavour) {
        const what = (flavour: string): string => (flavour === 'index' ? 'an index-based relay' : 'a placeholder relay');
        throw new EscaleError('Usage', `the archive holds ${what(manifest.relay)} but [${section}] uses ${what(job.flavour)}; nothing was restored`, { hint: "check the section's 'index' setting" });
      }
      if (manifest.section !== section) logger.info(`the archive was taken from section [${manifest.section}] (${manifest.protocol}) on ${manifest.date}`);
    }
    logger.info(`restoring ${checked.files.length - (manifest === undefined ? 0 : 1)} file(s) into the relay of [${section}] (${job.backend.id})${options.fast ? ' without locking' : ''}${options.purge ? ', emptying it first' : ''}`);
    const report = await restoreArchive({
      backend: job.backend,
      flavour: job.flavour,
      openTar,
      checked,
      ...(options.fast ? {} : { locker: job.locker('w') }),
      purge: options.purge === true,
      logger,
      onProgress: progressPrinter(context.output, clock.now),
      signal,
    });
    logger.info(`restored ${report.files} file(s), ${report.bytes} byte(s) into the relay of [${section}]${options.purge ? ` (${report.purged} file(s) deleted first)` : ''}`);
    if (options.json) {
      const summary = { section, archive: file, relay: job.flavour, files: report.files, bytes: report.bytes, purged: report.purged, failed: report.failed };
      context.output.out(`${JSON.stringify(summary)}\n`);
    }
    if (report.failed.length === 0) return EXIT.ok;
    reportFailures(logger, report.failed);
    return EXIT.failure;
  } finally {
    await job.close();
  }
}

/** The `restore` subcommand. */
export const restoreCommand: CommandModule = {
  name: 'restore',
  register(program: Command, context: () => CommandContext, setExitCode: (code: Promise<number>) => void): void {
    program
      .command('restore')
      .description("write the files of a backup archive into a section's relay (the relay must be idle)")
      .argument('<section>', 'client section whose relay receives the files')
      .argument('<archive>', 'archive written by backup (.tar, .tar.gz or .tar.bz2, recognised by content)')
      .option('-f, --fast', 'lock nothing (only when no client uses the relay)')
      .option('--purge', 'delete every file of the relay first (once the whole archive has been checked)')
      .option('--json', 'print a JSON summary')
      .action((section: string, archive: string, options: RestoreCommandOptions) => {
        setExitCode(runRestore(section, archive, options, context()));
      });
  },
};
