/**
 * `escalectl rebase [-r SECTION] EXTRA_PATH`: makes the whole content of an index relay appear
 * under the folder EXTRA_PATH (relay-format.md P7.2, configuration.md C13), rewriting every page index and the pending
 * update (its archive repacked) under a write page lock, without the original's defect (configuration.md U-12).
 */
import { mkdir } from 'node:fs/promises';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import { EscaleError } from '../../core/errors.js';
import { relPath, relPathProblem } from '../../core/relpath.js';
import { openRelayBackend } from '../../daemon/client.js';
import { cipherFor } from '../../daemon/run.js';
import { rebaseIndexRelay } from '../../relay/maintenance/index-rebase.js';
import { resourceProblem } from '../../relay/protocol/layout.js';
import { updateByteLimit } from '../../sync/index-engine.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT } from '../output.js';
import { commandLogger, DEFAULT_LOCK_WAIT_SEC, lockWaitSeconds, onlySection } from './maintenance.js';

/** Options of `escalectl rebase`. */
export interface RebaseCommandOptions {
  repository?: string;
  lockWait?: string;
  json?: boolean;
}

/** Pause between two looks at a page lock another client holds. */
const LOCK_POLL_MS = 2000;

/** Runs `escalectl rebase`; returns the exit code (0 done, 1 some pages left untouched). */
export async function runRebase(extraPath: string, options: RebaseCommandOptions, context: CommandContext): Promise<number> {
  const { output } = context;
  const lockWaitSec = lockWaitSeconds(options.lockWait);
  const text = extraPath.replaceAll('\\', '/').replace(/^(\.?\/)+/, '').replace(/\/+$/, '');
  const problem = text === '' ? undefined : (relPathProblem(text) ?? resourceProblem(relPath(text)));
  if (problem !== undefined) throw new EscaleError('Usage', `'${extraPath}' cannot be a folder of the repository: it ${problem}`);
  const config = await loadConfig(context.configFile);
  const client = onlySection(config, options.repository);
  if (text === '') {
    // why: configuration.md C13: an empty EXTRA_PATH does nothing.
    output.out('nothing to do: EXTRA_PATH is empty\n');
    return EXIT.ok;
  }
  if (!client.index.enabled) throw new EscaleError('Usage', `rebase works on index-based relays only; [${client.section}] uses placeholders ('index' is off)`);
  if (client.index.pages === 'topdir') {
    throw new EscaleError('Unsupported', `rebase is not supported for directory-paged indices ('index = topdir' in [${client.section}]): the pages would have to be renamed`);
  }
  const logger = commandLogger(config, output, 'rebase');
  const cipher = await cipherFor(client, { logger });
  await mkdir(client.dataDir, { recursive: true, mode: 0o700 });
  const backend = await openRelayBackend(client, { logger });
  try {
    const report = await rebaseIndexRelay(backend, relPath(text), {
      // why: a name of its own, so that a daemon of this section running meanwhile never takes the lock for its own.
      client: `${client.clientName}-rebase`,
      lockTimeoutSec: client.lockTimeoutSec,
      lockWaitMs: lockWaitSec * 1000,
      pollMs: Math.min(LOCK_POLL_MS, Math.max(50, lockWaitSec * 100)),
      cipher,
      scratchDir: client.dataDir,
      maxUpdateBytes: await updateByteLimit(client.dataDir, client.maxPageSizeBytes),
      logger,
    });
    for (const failure of report.failed) logger.error(`page '${failure.page}' not rebased: ${failure.reason}`);
    if (options.json) output.out(`${JSON.stringify({ section: client.section, extraPath: text, ...report })}\n`);
    if (report.failed.length === 0) logger.info(`[${client.section}] the files of the relay now appear under '${text}/'`);
    return report.failed.length > 0 ? EXIT.failure : EXIT.ok;
  } finally {
    await backend.close();
  }
}

/** The `rebase` subcommand. */
export const rebaseCommand: CommandModule = {
  name: 'rebase',
  register(program: Command, context: () => CommandContext, setExitCode: (code: Promise<number>) => void): void {
    program
      .command('rebase')
      .description('move every file of an index-based relay under the folder EXTRA_PATH (index = 1 only)')
      .argument('<extra_path>', 'folder (relative to the repository root) the current content moves into; empty: nothing to do')
      .option('-r, --repository <section>', 'the section (default: the only one)')
      .option('--lock-wait <seconds>', `how long to wait for a page another client keeps locked (default ${DEFAULT_LOCK_WAIT_SEC})`)
      .option('--json', 'print the outcome as JSON')
      .action((extraPath: string, options: RebaseCommandOptions) => {
        setExitCode(runRebase(extraPath, options, context()));
      });
  },
};
