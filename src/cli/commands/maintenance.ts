/**
 * What the maintenance subcommands of `escalectl` share (configuration.md C11): choosing sections
 * with `-r/--repository`, refusing to touch the local stores while the background escale holds
 * them, logging to the daemon's log file, and progress lines.
 */
import type { LoadedConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { EscaleError } from '../../core/errors.js';
import { createLogger, terminalSink, type Logger, type LogLevel, type LogSink } from '../../core/log.js';
import { fileSink } from '../../local/log-file.js';
import { isEscaleProcess, pidFilePath, readPidFile } from '../../daemon/pidfile.js';
import { pageNameProblem } from '../../relay/protocol/pages.js';
import type { Output } from '../output.js';

/** The sections a subcommand works on: the one named by `-r/--repository`, else every client section in file order. */
export function selectSections(config: LoadedConfig, name: string | undefined): ClientConfig[] {
  if (name === undefined) return config.clients;
  const found = config.clients.filter((c) => c.section === name);
  if (found.length === 0) {
    throw new EscaleError('Usage', `no section [${name}] in ${config.file}; sections: ${config.clients.map((c) => `[${c.section}]`).join(', ') || '(none)'}`);
  }
  return found;
}

/**
 * Throws a Usage error when the background escale of this configuration is running: it holds the
 * sections' stores (access modifiers, checksum cache) open, and one process at a time may write them.
 */
export async function refuseWhileRunning(config: LoadedConfig, what: string): Promise<void> {
  const daemon = await readPidFile(pidFilePath(config.configDir, config.baseName));
  if (daemon !== undefined && isEscaleProcess(daemon)) {
    throw new EscaleError('Usage', `escale is running with this configuration (pid ${daemon}); stop it first ('escalectl stop'), ${what}, then start it again`);
  }
}

/** How a maintenance command logs besides the configuration's log file. */
export interface CommandLoggerOptions {
  /** Lowest level also shown on the terminal (stderr); default 'info'. */
  terminalLevel?: LogLevel;
  /** A dry run leaves no trace, not even in the log file (like `escale --dry-run`). */
  dryRun?: boolean;
}

/**
 * A logger like the daemon's (configuration.md C10): every record at the configured level goes to the main
 * log file, so that what a maintenance command did is in the log, and the terminal shows records
 * from `terminalLevel` up.
 */
export function commandLogger(config: LoadedConfig, output: Output, command: string, options: CommandLoggerOptions = {}): Logger {
  const sinks: LogSink[] = [terminalSink({ level: options.terminalLevel ?? 'info', write: (line) => output.err(line) })];
  if (!options.dryRun) {
    try {
      // why: appended to, never rotated: a running daemon owns the rotation of its log file.
      sinks.push(fileSink({ path: config.global.logFile, level: config.global.logLevel, rotate: 0 }));
    } catch (error) {
      throw new EscaleError('Config', `cannot open the log file '${config.global.logFile}': ${(error as Error).message}`, { file: config.file, key: 'log file', cause: error });
    }
  }
  return createLogger(sinks, `escalectl.${command}`);
}

/**
 * The one section a command works on (configuration.md C11): `-r NAME` (it must exist), else the only one.
 * Messages are those of escale 0.7.
 */
export function onlySection(config: LoadedConfig, name: string | undefined): ClientConfig {
  if (name !== undefined) {
    const found = config.clients.find((c) => c.section === name);
    if (found === undefined) throw new EscaleError('Usage', `cannot find repository: ${name}`, { hint: `sections of ${config.file}: ${config.clients.map((c) => c.section).join(', ')}` });
    return found;
  }
  const [only, ...others] = config.clients;
  if (only === undefined) throw new EscaleError('Config', `no client section in ${config.file}`);
  if (others.length > 0) throw new EscaleError('Usage', "several repositories defined; please specify with '--repository'");
  return only;
}

/** Default of `--lock-wait`: how long a maintenance job waits for what other clients keep locked, in seconds. */
export const DEFAULT_LOCK_WAIT_SEC = 600;

/** `--lock-wait` in seconds (the default when not given); a Usage error when it is not a number of seconds. */
export function lockWaitSeconds(text: string | undefined): number {
  if (text === undefined) return DEFAULT_LOCK_WAIT_SEC;
  if (!/^\d+(\.\d+)?$/.test(text)) throw new EscaleError('Usage', `--lock-wait expects a number of seconds, got '${text}'`);
  return Number(text);
}

/** Shortest time between two progress lines of a long maintenance job. */
export const PROGRESS_EVERY_MS = 5000;

/**
 * A progress callback for long jobs: `progress: n of N files` (or `progress: n files checked` while
 * the total is unknown) on stderr, at most every `everyMs` and always when the last file is done,
 * so that long work shows it is alive without flooding the terminal (short jobs print one line).
 */
export function progressPrinter(output: Output, now: () => number = Date.now, everyMs = PROGRESS_EVERY_MS): (done: number, total?: number) => void {
  let last = now();
  return (done, total) => {
    const at = now();
    const finished = total !== undefined && done >= total;
    if (!finished && at - last < everyMs) return;
    last = at;
    output.err(total === undefined ? `progress: ${done} files checked\n` : `progress: ${done} of ${total} files\n`);
  };
}

/** A section left out by a subcommand, and why (printed as `skipping repository: <section> (<why>)`). */
export interface Skipped {
  readonly section: string;
  readonly why: string;
}

/**
 * Splits the selected sections into those `why` accepts (it returns undefined) and the skipped ones;
 * throws a Usage error when none is left, naming the reasons.
 */
export function eligibleSections(config: LoadedConfig, selected: ClientConfig[], command: string, why: (client: ClientConfig) => string | undefined): { eligible: ClientConfig[]; skipped: Skipped[] } {
  const eligible: ClientConfig[] = [];
  const skipped: Skipped[] = [];
  for (const client of selected) {
    const reason = why(client);
    if (reason === undefined) eligible.push(client);
    else skipped.push({ section: client.section, why: reason });
  }
  if (eligible.length === 0) {
    const reasons = skipped.map((s) => `[${s.section}] ${s.why}`).join('; ');
    throw new EscaleError('Usage', `${command}: no section of ${config.file} to work on${reasons === '' ? '' : ` (${reasons})`}`);
  }
  return { eligible, skipped };
}

/** The message of a skipped section (configuration.md C11), with the reason added. */
export function skippedLine(skipped: Skipped): string {
  return `skipping repository: ${skipped.section} (${skipped.why})\n`;
}

/** Why a section cannot use page commands: undefined when its relay is index-based. */
export function notIndexBased(client: ClientConfig): string | undefined {
  return client.index.enabled ? undefined : 'not index-based: set index = 1 or topdir';
}

/** Checks the `-p/--page` names (Usage error for a name that cannot be a page); undefined when none was given. */
export function checkedPages(pages: readonly string[] | undefined): string[] | undefined {
  if (pages === undefined || pages.length === 0) return undefined;
  for (const page of pages) {
    const problem = pageNameProblem(page);
    if (problem !== undefined) throw new EscaleError('Usage', `invalid page name ${JSON.stringify(page)}: it ${problem}`);
  }
  return [...new Set(pages)];
}

/** Commander's collector for a repeatable option (`-p A -p B`). */
export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}
