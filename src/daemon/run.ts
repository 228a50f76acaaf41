import { setTimeout as sleepFor } from 'node:timers/promises';
import type { LoadedConfig } from '../config/load.js';
import type { ClientConfig } from '../config/schema.js';
import { EscaleError, isRetryable } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { ReportOnce } from '../core/report-once.js';
import { createCipher } from '../crypto/cipher.js';
import { loadKeyFile } from '../local/key-file.js';
import type { Action } from '../sync/model.js';
import type { RelayStats } from '../relay/wrap/stats.js';
import type { CipherPort } from '../sync/engine.js';
import { AdaptiveClock } from './adaptive-clock.js';
import { Backoff } from './backoff.js';
import { openClient, ownFilesOf, persistentFile, type OpenedClient } from './client.js';
import { formatSeconds, runClientLoop } from './client-loop.js';
import { controlSocketPath, openControlSocket, type ControlServer } from './control-socket.js';
import { LocalRootGuard } from './local-root.js';
import { acquirePidFile } from './pidfile.js';
import { DaemonStatus, type ClientStatus } from './status-model.js';

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
  const status = new DaemonStatus();
  const statuses = clients.map((client) => status.add(client.section, client.clientName));
  const control = held === undefined ? undefined : await openControl(held.path, status, request.logger);
  const controller = new AbortController();
  const stop = (): void => controller.abort();
  request.signal?.addEventListener('abort', stop, { once: true });
  const signals: NodeJS.Signals[] = request.signal ? [] : ['SIGINT', 'SIGTERM'];
  for (const name of signals) process.once(name, stop);
  try {
    const outcomes = await Promise.all(clients.map((client, i) => runOneClient(client, request, controller.signal, statuses[i] as ClientStatus)));
    return outcomes.every((ok) => ok) ? 0 : 1;
  } finally {
    await control?.close();
    await held?.release();
    for (const name of signals) process.removeListener(name, stop);
    request.signal?.removeEventListener('abort', stop);
  }
}

/** Opens the control socket beside the PID file; a failure only costs `escalectl status` its details (logged). */
async function openControl(pidFile: string, status: DaemonStatus, logger: Logger): Promise<ControlServer | undefined> {
  const path = controlSocketPath(pidFile);
  try {
    return await openControlSocket(path, { status: () => status.toJSON(pidFile) }, logger);
  } catch (error) {
    logger.warning(`no control socket (${error instanceof EscaleError ? error.message : String(error)}); 'escalectl status' will show only whether escale runs`);
    return undefined;
  }
}

/**
 * Runs one client until the signal. A client never ends because of failures: its start and its
 * rounds are retried with back-off. It ends on a crash (an unexpected exception) or a configuration
 * it cannot use; with `keep alive` (or `-r`) it is then started again after the configured delay.
 */
async function runOneClient(config: ClientConfig, request: RunRequest, signal: AbortSignal, status: ClientStatus): Promise<boolean> {
  const logger = request.logger.child(config.section);
  const keepAliveSec = request.once || request.dryRun ? null : request.config.global.keepAliveSec;
  try {
    for (;;) {
      const outcome = await runClientOnce(config, request, signal, logger, status);
      if (outcome !== 'ended' || signal.aborted || keepAliveSec === null) return outcome === 'ok' || (outcome === 'ended' && signal.aborted);
      logger.info(`restarting escale for '${config.section}' in ${keepAliveSec} seconds`);
      status.setState('stopped', `restarting in ${keepAliveSec} seconds`);
      status.setNextRound(Date.now() + keepAliveSec * 1000);
      await sleepFor(keepAliveSec * 1000, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) return true;
    }
  } finally {
    status.setNextRound(null);
    if (signal.aborted) status.setState('stopped', 'escale is stopping');
  }
}

/** Configuration problems that no retry can heal while this process runs (the configuration is read once). */
const PERMANENT_START_ERRORS = ['Config', 'Usage', 'Unsupported'] as const;

/**
 * Starts the client (retrying with back-off while its relay cannot be reached) and runs its loop:
 * 'ok', 'failed' (a `--once` run that failed) or 'ended' (a crash, or a start that cannot succeed).
 */
async function runClientOnce(config: ClientConfig, request: RunRequest, signal: AbortSignal, logger: Logger, status: ClientStatus): Promise<'ok' | 'failed' | 'ended'> {
  const opened = await startClient(config, request, signal, logger, status);
  if (opened === 'failed' || opened === 'ended') return opened;
  if (opened === undefined) return 'ok';
  status.attach(opened.failures, opened.relayId);
  if (opened.localWatch !== undefined) status.watchLocal(opened.localWatch);
  try {
    const result = await runClientLoop({
      pollIntervalSec: config.pollIntervalSec,
      ...(opened.wakeup === undefined ? {} : { wakeup: opened.wakeup }),
      runner: opened.runner,
      clock: new AdaptiveClock(config.refreshSec),
      backoff: Backoff.forRefresh(config.refreshSec),
      guard: new LocalRootGuard({ root: config.localPath, recordFile: persistentFile(config, 'lr'), section: config.section, writable: !request.dryRun }),
      logger,
      status,
      once: request.once || request.dryRun,
      signal,
    });
    if (result.fatal !== undefined) {
      status.setState('stopped', `crashed: ${String((result.fatal as Error)?.message ?? result.fatal)}`);
      return 'ended';
    }
    return result.failed && (request.once || request.dryRun) ? 'failed' : 'ok';
  } finally {
    await opened.close();
  }
}

/**
 * Opens the client; while that fails for a reason that may heal (the relay unreachable, a login
 * refused, a key file unreadable), tries again with back-off, logging each change. Undefined when
 * the signal fired meanwhile; 'failed' for a `--once` or dry run that could not start; 'ended' for
 * a configuration that cannot work or an unexpected exception.
 */
async function startClient(config: ClientConfig, request: RunRequest, signal: AbortSignal, logger: Logger, status: ClientStatus): Promise<OpenedClient | 'failed' | 'ended' | undefined> {
  const backoff = Backoff.forRefresh(config.refreshSec);
  const reported = new ReportOnce();
  status.setState('starting');
  while (!signal.aborted) {
    try {
      const opened = await openClient(config, {
        logger,
        dryRun: request.dryRun,
        once: request.once,
        watch: !request.once && !request.dryRun,
        cipher: (c) => cipherFor(c, { logger }),
        signal,
        onFailure: (event) => status.addFailure(event),
        onPhase: (phase) => status.setState(phase),
        // why: a section's local root may hold the log, the PID file or another section's stores.
        ownFiles: ownFilesOf(request.config),
        ...(request.stats ? { relayCounters: request.stats.section(config.section) } : {}),
        ...(request.onPlan ? { onPlan: (action: Action) => request.onPlan?.(config.section, action) } : {}),
      });
      if (backoff.failures > 0) logger.info(`client [${config.section}] started after ${backoff.failures} failed attempt(s)`);
      status.setBackoff(null);
      return opened;
    } catch (error) {
      if (signal.aborted) return undefined;
      const message = error instanceof EscaleError ? `${error.code}: ${error.message}` : String(error);
      status.addError({ code: error instanceof EscaleError ? error.code : 'Internal', message: error instanceof EscaleError ? error.message : String(error) });
      const permanent = !(error instanceof EscaleError) || (PERMANENT_START_ERRORS as readonly string[]).includes(error.code);
      if (request.once || request.dryRun || permanent) {
        logger.critical(`failed to start client [${config.section}]: ${message}`);
        status.setState('stopped', message);
        return request.once || request.dryRun ? 'failed' : 'ended';
      }
      const delay = backoff.next();
      if (reported.isNew('start', `${error.code}|${delay}`)) {
        const line = `failed to start client [${config.section}]: ${message}; next attempt in ${formatSeconds(delay)}`;
        if (isRetryable(error)) logger.warning(line);
        else logger.error(line);
      }
      status.setBackoff({ failures: backoff.failures, delaySec: delay });
      status.setState('backing off', message);
      status.setNextRound(Date.now() + delay * 1000);
      await sleepFor(delay * 1000, undefined, { signal }).catch(() => undefined);
    }
  }
  return undefined;
}
