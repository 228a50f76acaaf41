/**
 * What `escalectl backup` and `restore` share (configuration.md C11, C13; relay-format.md P7.4, P7.5): the section named on
 * the command line, logging like the daemon (terminal and the configured log file), the relay opened
 * as clients open it, group locks taken under a name of their own, progress lines and Ctrl+C.
 */
import { loadConfig, type LoadedConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { EscaleError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { openRelayBackend } from '../../daemon/client.js';
import type { Backend } from '../../relay/backend.js';
import type { RelayFlavour } from '../../relay/protocol/backup-archive.js';
import { openGroupLocker, type GroupLocker, type LockerClock } from '../../relay/protocol/relay-groups.js';
import type { CommandContext } from '../command-module.js';
import { commandLogger, selectSections } from './maintenance.js';

/** A maintenance job on the relay of one section. */
export interface RelayJob {
  readonly config: LoadedConfig;
  readonly client: ClientConfig;
  readonly logger: Logger;
  readonly backend: Backend;
  readonly flavour: RelayFlavour;
  /** Ends the job early (Ctrl+C): transfers stop, locks are released, temporary files removed. */
  readonly signal: AbortSignal;
  /** Group locks written as `<client name>-<job>` with `mode`. */
  locker(mode: 'r' | 'w'): GroupLocker;
  close(): Promise<void>;
}

/**
 * Loads the configuration (every check of configuration.md C1–C9 applies), sets up logging as the daemon does (the log
 * file is appended to, never rotated, since a running daemon owns its rotation) and connects to the
 * relay of `section`.
 */
export async function openRelayJob(job: 'backup' | 'restore', section: string, context: CommandContext, clock: LockerClock): Promise<RelayJob> {
  const config = await loadConfig(context.configFile);
  const [client] = selectSections(config, section);
  if (client === undefined) throw new EscaleError('Internal', `no section [${section}]`);
  const logger = commandLogger(config, context.output, job).child(section);
  for (const warning of config.warnings) logger.warning(warning);
  const controller = new AbortController();
  const interrupt = (): void => controller.abort();
  process.once('SIGINT', interrupt);
  let backend: Backend;
  try {
    backend = await openRelayBackend(client, { logger, signal: controller.signal });
  } catch (error) {
    process.removeListener('SIGINT', interrupt);
    throw error;
  }
  const flavour: RelayFlavour = client.index.enabled ? 'index' : 'placeholder';
  const owner = `${client.clientName}-${job}`;
  return {
    config,
    client,
    logger,
    backend,
    flavour,
    signal: controller.signal,
    locker(mode) {
      return openGroupLocker(backend, flavour, mode, { owner, lockTimeoutSec: client.lockTimeoutSec, now: clock.now, logger });
    },
    async close() {
      process.removeListener('SIGINT', interrupt);
      await backend.close();
    },
  };
}

/** Prints a list of files that could not be copied as the original does (configuration.md C13) and in the log. */
export function reportFailures(logger: Logger, failures: ReadonlyArray<{ path: string; reason: string }>): void {
  logger.error('here follows a list of possibly missing files:');
  for (const failure of failures) logger.error(`  '${failure.path}': ${failure.reason}`);
}
