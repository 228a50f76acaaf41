import { setTimeout as sleepFor } from 'node:timers/promises';
import type { LoadedConfig } from '../config/load.js';
import type { ClientConfig } from '../config/schema.js';
import { EscaleError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { createCipher } from '../crypto/cipher.js';
import { loadKeyFile } from '../crypto/key-file.js';
import type { Action } from '../sync/model.js';
import type { RelayStats } from '../relay/wrap/stats.js';
import type { CipherPort } from '../sync/engine.js';
import { AdaptiveClock } from './adaptive-clock.js';
import { openClient, ownFilesOf } from './client.js';
import { acquirePidFile } from './pidfile.js';
import { runClientLoop } from './client-loop.js';

/** What `escale` asks the daemon to run. */
export interface RunRequest {
  config: LoadedConfig;
  once: boolean;
  dryRun: boolean;
  logger: Logger;
  /** Only these sections (default: every client section). */
  sections?: string[];
  /** Ends every client (default: SIGINT and SIGTERM). */
  signal?: AbortSignal;
  /** The PID file to hold while running (not for --once or --dry-run). */
  pidFile?: string;
  /** Receives each planned action of a dry run. */
  onPlan?: (section: string, action: Action) => void;
  /** Counts relay calls per section (ESCALE_STATS_FILE); off when undefined. */
  stats?: RelayStats;
}

/** What building a cipher may use besides the section's configuration. */
export interface CipherForOptions {
  /** Current time, Unix milliseconds (default Date.now). */
  now?: () => number;
  /** Receives the warning about a key file that others can read. */
  logger?: Logger;
}

/**
 * Builds the cipher a section asks for (null when it does not encrypt), and warns when its key file
 * can be read by group or others.
 */
export async function cipherFor(config: ClientConfig, options: CipherForOptions = {}): Promise<CipherPort | null> {
  const { algorithm, passphrase, passphraseFile } = config.encryption;
  if (algorithm === null) return null;
  const cipher = createCipher({ algorithm, key: passphrase ?? null }, { now: options.now ?? Date.now });
  if (!cipher || !cipher.encrypts) return null;
  // why: the permission check lives here, where the daemon starts a client, and not in the
  // configuration loader, which reads the key file but does no other I/O (and `--check` stays pure).
  if (passphraseFile !== undefined && options.logger) {
    // why: the key was read when the configuration loaded; a file unreadable now only hides its permissions.
    const loaded = await loadKeyFile(passphraseFile).catch((error: unknown) => {
      options.logger?.warning(`cannot check the permissions of the key file '${passphraseFile}': ${(error as Error).message}`);
      return undefined;
    });
    if (loaded?.insecurePermissions) {
      options.logger.warning(`the key file '${passphraseFile}' can be read by other users; anyone who can read it can decrypt the relay: run 'chmod 600 ${passphraseFile}'`);
    }
  }
  return cipher;
}

/** Runs every selected client until a signal (or one round each with `once`); returns the exit code (0 ok, 1 a client failed). */
export async function runEscale(request: RunRequest): Promise<number> {
  const { config } = request;
  const clients = request.sections?.length ? config.clients.filter((c) => request.sections?.includes(c.section)) : config.clients;
  const unknown = (request.sections ?? []).filter((name) => !config.clients.some((c) => c.section === name));
  if (unknown.length > 0) {
    throw new EscaleError('Usage', `no section ${unknown.map((n) => `[${n}]`).join(', ')} in ${config.file}; sections: ${config.clients.map((c) => c.section).join(', ')}`);
  }
  const held = request.pidFile === undefined ? undefined : await acquirePidFile(request.pidFile);
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  request.signal?.addEventListener('abort', stop, { once: true });
  const signals: NodeJS.Signals[] = request.signal ? [] : ['SIGINT', 'SIGTERM'];
  for (const name of signals) process.once(name, stop);
  try {
    const outcomes = await Promise.all(clients.map((client) => runOneClient(client, request, controller.signal)));
    return outcomes.every((ok) => ok) ? 0 : 1;
  } finally {
    await held?.release();
    for (const name of signals) process.removeListener(name, stop);
    request.signal?.removeEventListener('abort', stop);
  }
}

/**
 * Runs one client until the signal; with `keep alive` (or `-r`), a client that gave up (or could
 * not start) is started again after the configured delay.
 */
async function runOneClient(config: ClientConfig, request: RunRequest, signal: AbortSignal): Promise<boolean> {
  const logger = request.logger.child(config.section);
  const keepAliveSec = request.once || request.dryRun ? null : request.config.global.keepAliveSec;
  for (;;) {
    const ok = await runClientOnce(config, request, signal, logger);
    if (ok || signal.aborted || keepAliveSec === null) return ok;
    logger.info(`restarting escale for '${config.section}' in ${keepAliveSec} seconds`);
    await sleepFor(keepAliveSec * 1000, undefined, { signal }).catch(() => undefined);
    if (signal.aborted) return ok;
  }
}

async function runClientOnce(config: ClientConfig, request: RunRequest, signal: AbortSignal, logger: Logger): Promise<boolean> {
  let opened;
  try {
    opened = await openClient(config, {
      logger,
      dryRun: request.dryRun,
      once: request.once,
      cipher: (c) => cipherFor(c, { logger }),
      signal,
      // why: a section's local root may hold the log, the PID file or another section's stores.
      ownFiles: ownFilesOf(request.config),
      ...(request.stats ? { relayCounters: request.stats.section(config.section) } : {}),
      ...(request.onPlan ? { onPlan: (action: Action) => request.onPlan?.(config.section, action) } : {}),
    });
  } catch (error) {
    const message = error instanceof EscaleError ? error.message : String(error);
    logger.critical(`failed to start client [${config.section}]: ${message}`);
    return false;
  }
  try {
    const result = await runClientLoop({
      runner: opened.runner,
      clock: new AdaptiveClock(config.refreshSec),
      logger,
      once: request.once || request.dryRun,
      signal,
    });
    return !result.failed || (!request.once && !request.dryRun && result.fatal === undefined);
  } finally {
    await opened.close();
  }
}
