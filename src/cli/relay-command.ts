/**
 * What the `escalectl` subcommands that work on a relay share (cli-and-config §2.0): the choice of
 * one section, a logger that writes where the daemon writes, and progress lines.
 */
import type { LoadedConfig } from '../config/load.js';
import type { ClientConfig } from '../config/schema.js';
import { EscaleError } from '../core/errors.js';
import { createLogger, fileSink, terminalSink, type Logger, type LogSink } from '../core/log.js';
import type { Output } from './output.js';

/**
 * The section a command works on (§2.0): `-r NAME` (it must exist), else the only one.
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

/**
 * A logger for a maintenance command: info and above on the terminal (through `output`), and
 * everything the configuration asks for in the main log file, like the daemon (§2.0, §8.1); no file
 * for a dry run.
 */
export function commandLogger(config: LoadedConfig, output: Output, name: string, options: { dryRun?: boolean } = {}): Logger {
  const sinks: LogSink[] = [terminalSink({ level: 'info', write: (line) => output.err(line) })];
  // why: like `escale --dry-run`, a dry run leaves no trace, not even in the log file.
  if (options.dryRun) return createLogger(sinks, `escalectl.${name}`);
  try {
    sinks.push(fileSink({ path: config.global.logFile, level: config.global.logLevel, rotate: config.global.logRotate }));
  } catch (error) {
    throw new EscaleError('Config', `cannot open the log file '${config.global.logFile}': ${(error as Error).message}`, { file: config.file, key: 'log file', cause: error });
  }
  return createLogger(sinks, `escalectl.${name}`);
}

/**
 * A progress printer: `progress: n of N files` on stderr, at most about once a second (and always
 * for the last file), so that long copies show they are alive without flooding the terminal.
 */
export function progressPrinter(output: Output, now: () => number = Date.now): (done: number, total: number) => void {
  let last = -Infinity;
  return (done, total) => {
    const at = now();
    if (done < total && at - last < 1000) return;
    last = at;
    output.err(`progress: ${done} of ${total} files\n`);
  };
}
