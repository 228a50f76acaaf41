/**
 * What `escalectl backup` and `restore` share (cli-and-config §2.0, §9.1, §9.2): the section named on
 * the command line, logging like the daemon (terminal and the configured log file), the relay opened
 * as clients open it, group locks taken under a name of their own, progress lines and Ctrl+C.
 */
import type { LoadedConfig } from '../../config/load.js';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { EscaleError } from '../../core/errors.js';
import { createLogger, fileSink, terminalSink, type Logger } from '../../core/log.js';
import { openRelayBackend } from '../../daemon/client.js';
import type { Backend } from '../../relay/backend.js';
import type { RelayFlavour } from '../../relay/protocol/backup-archive.js';
import { IndexRelay } from '../../relay/protocol/index-relay.js';
import { PlaceholderRelay } from '../../relay/protocol/placeholder-relay.js';
import { indexLocker, placeholderLocker, type GroupLocker } from '../../relay/protocol/relay-groups.js';
import type { CommandContext } from '../command-module.js';
import type { Output } from '../output.js';

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

/** Clock of a job (injected by tests). */
export interface JobClock {
  readonly now: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

function sectionOf(config: LoadedConfig, name: string): ClientConfig {
  const client = config.clients.find((c) => c.section === name);
  if (client === undefined) {
    throw new EscaleError('Usage', `no section [${name}] in ${config.file}; sections: ${config.clients.map((c) => `[${c.section}]`).join(', ') || '(none)'}`);
  }
  return client;
}

/**
 * Loads the configuration (every check of §3 applies), sets up logging as the daemon does (the log
 * file is appended to, never rotated, since a running daemon owns its rotation) and connects to the
 * relay of `section`.
 */
export async function openRelayJob(job: 'backup' | 'restore', section: string, context: CommandContext, clock: JobClock): Promise<RelayJob> {
  const config = await loadConfig(context.configFile);
  const client = sectionOf(config, section);
  let file;
  try {
    file = fileSink({ path: config.global.logFile, level: config.global.logLevel, rotate: 0 });
  } catch (error) {
    throw new EscaleError('Config', `cannot open the log file '${config.global.logFile}': ${(error as Error).message}`, { file: config.file, key: 'log file', cause: error });
  }
  const logger = createLogger([terminalSink({ level: 'info', write: (line) => context.output.err(line) }), file], 'escalectl').child(section);
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
      const options = { client: owner, lockTimeoutSec: client.lockTimeoutSec, now: clock.now, logger, ...(clock.sleep === undefined ? {} : { sleep: clock.sleep }) };
      return flavour === 'index' ? indexLocker(new IndexRelay(backend, options), mode) : placeholderLocker(new PlaceholderRelay(backend, options), backend, mode, clock);
    },
    async close() {
      process.removeListener('SIGINT', interrupt);
      await backend.close();
    },
  };
}

/** How often a long job prints `progress: n of N files`. */
export const PROGRESS_EVERY_MS = 5000;

/**
 * A progress callback that prints `progress: n of N files` (or `progress: n files checked` when the
 * total is not known yet) on stderr, at most every PROGRESS_EVERY_MS (short jobs print nothing).
 */
export function progressPrinter(output: Output, now: () => number): (done: number, total?: number) => void {
  let last = now();
  return (done, total) => {
    if (now() - last < PROGRESS_EVERY_MS) return;
    last = now();
    output.err(total === undefined ? `progress: ${done} files checked\n` : `progress: ${done} of ${total} files\n`);
  };
}

/** Prints a list of files that could not be copied as the original does (§9.1 step 6) and in the log. */
export function reportFailures(logger: Logger, failures: ReadonlyArray<{ path: string; reason: string }>): void {
  logger.error('here follows a list of possibly missing files:');
  for (const failure of failures) logger.error(`  '${failure.path}': ${failure.reason}`);
}
