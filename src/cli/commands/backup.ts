/**
 * `escalectl backup SECTION ARCHIVE [-f]`: copies every file of the section's relay into a tar archive
 * (configuration.md C13, relay-format.md P7.4, with escale's changes: index-based relays too, a manifest, streaming).
 */
import { stat } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { pipeline } from 'node:stream';
import type { Command } from 'commander';
import { EscaleError } from '../../core/errors.js';
import { relPath } from '../../core/relpath.js';
import { writeFileAtomically, type ExpectedPrior } from '../../local/local-writer.js';
import { BACKUP_FORMAT_VERSION, backupArchiveOf, compressorFor } from '../../relay/protocol/backup-archive.js';
import { backupTar } from '../../relay/protocol/relay-backup.js';
import type { LockerClock } from '../../relay/protocol/relay-groups.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT } from '../output.js';
import { DEFAULT_LOCK_WAIT_SEC, lockWaitSeconds, progressPrinter } from './maintenance.js';
import { openRelayJob, reportFailures } from './relay-job.js';

/** Options of `escalectl backup`. */
export interface BackupCommandOptions {
  fast?: boolean;
  json?: boolean;
  lockWait?: string;
}

async function priorOf(path: string): Promise<ExpectedPrior> {
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new EscaleError('Usage', `'${path}' exists and is not a regular file`);
    return { size: info.size, mtimeMs: info.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** Runs `escalectl backup`; returns the exit code (1 when some files could not be copied). */
export async function runBackup(section: string, archive: string, options: BackupCommandOptions, context: CommandContext, clock: LockerClock = { now: Date.now }): Promise<number> {
  const target = backupArchiveOf(archive);
  const maxWaitMs = lockWaitSeconds(options.lockWait) * 1000;
  const file = resolve(target.path);
  const job = await openRelayJob('backup', section, context, clock);
  const { logger, signal } = job;
  try {
    logger.info(`backing up the relay of [${section}] (${job.backend.id}) into '${file}'${options.fast ? ' without locking' : ''}`);
    const backup = backupTar({
      backend: job.backend,
      flavour: job.flavour,
      manifest: { format: BACKUP_FORMAT_VERSION, section, protocol: job.client.protocol, relay: job.flavour, date: new Date(clock.now()).toISOString() },
      ...(options.fast ? {} : { locker: job.locker('r') }),
      maxWaitMs,
      logger,
      clock,
      onProgress: progressPrinter(context.output, clock.now),
      signal,
    });
    const compressed = compressorFor(target.compression, signal);
    // why: pipeline hands a failure of the tar (a relay read, a lock) to the compressor, so the write below fails with it.
    pipeline(backup.tar, compressed, () => undefined);
    try {
      // why: the archive appears only when complete (temporary name, then rename); an older one stays until then.
      await writeFileAtomically({ root: dirname(file), path: relPath(basename(file)), source: compressed, expectedPrior: await priorOf(file), signal });
    } finally {
      await backup.releaseLocks();
    }
    const { report } = backup;
    logger.info(`backup of [${section}] written to '${file}': ${report.files} file(s), ${report.bytes} byte(s)`);
    if (options.json) {
      const summary = { section, archive: file, relay: job.flavour, compression: target.compression, files: report.files, bytes: report.bytes, missing: report.missing };
      context.output.out(`${JSON.stringify(summary)}\n`);
    }
    if (report.missing.length === 0) return EXIT.ok;
    reportFailures(logger, report.missing);
    return EXIT.failure;
  } finally {
    await job.close();
  }
}

/** The `backup` subcommand. */
export const backupCommand: CommandModule = {
  name: 'backup',
  register(program: Command, context: () => CommandContext, setExitCode: (code: Promise<number>) => void): void {
    program
      .command('backup')
      .description('copy every file of a section\'s relay into a tar archive (as stored: encrypted stays encrypted)')
      .argument('<section>', 'client section whose relay is backed up')
      .argument('<archive>', 'archive to write: NAME.tar, NAME.tar.gz or NAME.tar.bz2 (no extension: .tar.bz2 is appended)')
      .option('-f, --fast', 'lock nothing (only when no client uses the relay)')
      .option('--lock-wait <seconds>', `how long to wait for files other clients have locked (default ${DEFAULT_LOCK_WAIT_SEC})`)
      .option('--json', 'print a JSON summary')
      .action((section: string, archive: string, options: BackupCommandOptions) => {
        setExitCode(runBackup(section, archive, options, context()));
      });
  },
};
