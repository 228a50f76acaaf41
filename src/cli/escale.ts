#!/usr/bin/env node
/**
 * The `escale` command: read the configuration, then synchronize every client section (or only
 * validate the file with `--check`). Flags follow escale 0.7 (configuration.md C11) plus `--check`,
 * `--json`, `--once`, `--dry-run`, `--section`, `--verbose`, `--debug` and `--version`.
 */
import { spawn } from 'node:child_process';
import { appendFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { environmentFlags, loadConfig, type LoadedConfig } from '../config/load.js';
import { EscaleError } from '../core/errors.js';
import { createLogger, terminalSink, type LogLevel, type LogSink } from '../core/log.js';
import { fileSink } from '../local/log-file.js';
import { isEscaleProcess, pidFilePath, readPidFile } from '../daemon/pidfile.js';
import { runEscale } from '../daemon/run.js';
import { RelayStats } from '../relay/wrap/stats.js';
import type { Action } from '../sync/model.js';
import { configToJson, describeConfig } from './config-report.js';
import { importDestination, runImport } from './wizard/import.js';
import { runWizard } from './wizard/run.js';
import { EXIT, configureCommander, isMainModule, packageVersion, processOutput, runMain, type Output } from './output.js';

/** Parsed `escale` options. */
export interface EscaleOptions {
  config?: string;
  configFile?: string;
  i?: string | boolean;
  interactive?: boolean;
  import?: string;
  daemon?: boolean;
  autoRestart?: string | boolean;
  quiet?: boolean;
  verbose?: boolean;
  acceptLicense?: boolean;
  check?: boolean;
  json?: boolean;
  once?: boolean;
  dryRun?: boolean;
  section?: string[];
  debug?: boolean;
}

/** Default delay of `-r` without a value, in seconds (configuration.md C11). */
export const DEFAULT_RESTART_DELAY_SEC = 60;

/** Builds the commander program of `escale` (no side effects until parsed). */
export function escaleProgram(output: Output = processOutput): Command {
  const program = new Command('escale')
    .description('Synchronize folders between clients through passive relay storage (FTP, WebDAV, folders, rclone remotes...).')
    .version(packageVersion(), '-V, --version', 'print the version and exit')
    .helpOption('-h, --help', 'print this help and exit')
    .option('-c, --config <file>', 'configuration file (default: ~/.config/escale/escale.conf, ~/.escale/escale.conf, /etc/escale.conf)')
    .addOption(new Option('--config-file <file>', 'same as --config').hideHelp())
    .option('-s, --section <name>', 'run (or check) only this client section; repeatable', (value: string, previous: string[] = []) => [...previous, value])
    .option('--check', 'validate the configuration, print the resolved settings of each client (secrets as ***) and exit')
    .option('--json', 'with --check: print the resolved settings as JSON; with --dry-run: print the plan as JSON lines')
    .option('--once', 'run one synchronization round per client, then exit')
    .option('--dry-run', 'print what would be transferred, change nothing')
    .option('-v, --verbose', 'print debug messages on the terminal')
    .option('-q, --quiet', 'print only critical messages on the terminal')
    .option('-r, --auto-restart [seconds]', `restart crashed clients after SECONDS (default ${DEFAULT_RESTART_DELAY_SEC})`)
    .option('-d, --daemon', 'run in the background (logs go to the log file; stop it with escalectl stop)')
    .option('--interactive', 'run the configuration wizard on the configuration file (created if missing), then exit')
    .option('--import <file>', 'add the sections of FILE to the configuration file (-c, else the default one), then exit')
    .addOption(new Option('-i [file]', 'bare: same as --interactive; with FILE: same as --import FILE'))
    .option('-y, --accept-license', 'accept the license without asking (kept for compatibility; nothing is asked)')
    .option('--debug', 'print stack traces of errors (also ESCALE_DEBUG=1)')
    .allowExcessArguments(false);
  return configureCommander(program, 'escale', output);
}

/**
 * `escale -d`: starts the same run detached from the terminal (new session, no standard streams;
 * logs go to the log file) and returns once the daemon has written its PID file, or has failed.
 */
async function daemonize(options: EscaleOptions, config: LoadedConfig, output: Output): Promise<number> {
  const pidFile = pidFilePath(config.configDir, config.baseName);
  const other = await readPidFile(pidFile);
  if (other !== undefined && isEscaleProcess(other)) {
    throw new EscaleError('Usage', `escale is already running with this configuration (pid ${other}); stop it with 'escalectl stop'`);
  }
  const args = [fileURLToPath(import.meta.url), '-c', config.file, ...(options.section ?? []).flatMap((s) => ['-s', s])];
  if (options.verbose) args.push('-v');
  if (options.autoRestart !== undefined && options.autoRestart !== false) args.push(options.autoRestart === true ? '-r' : `-r${options.autoRestart}`);
  const child = spawn(process.execPath, args, { detached: true, stdio: 'ignore' });
  let exitCode: number | null | undefined;
  child.on('exit', (code) => (exitCode = code ?? EXIT.failure));
  child.unref();
  const end = Date.now() + 15_000;
  while (Date.now() < end && exitCode === undefined) {
    if ((await readPidFile(pidFile)) === child.pid) {
      output.out(`escale is running in the background (pid ${child.pid}); log: ${config.global.logFile}\n`);
      return EXIT.ok;
    }
    await sleep(50);
  }
  throw new EscaleError('Unavailable', exitCode === undefined ? `the background escale did not start within 15 s; see ${config.global.logFile}` : `the background escale stopped at once (status ${exitCode}); see ${config.global.logFile}`);
}

function terminalLevel(options: EscaleOptions): LogLevel {
  if (options.quiet) return 'critical';
  return options.verbose ? 'debug' : 'info';
}

function selectSections(config: LoadedConfig, names: string[] | undefined): LoadedConfig {
  if (names === undefined || names.length === 0) return config;
  const known = config.clients.map((c) => c.section);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) {
    throw new EscaleError('Usage', `no section ${unknown.map((n) => `[${n}]`).join(', ')} in ${config.file}; sections: ${known.map((n) => `[${n}]`).join(', ')}`);
  }
  return { ...config, clients: config.clients.filter((c) => names.includes(c.section)) };
}

function restartDelay(value: string | boolean | undefined): number | undefined {
  if (value === undefined || value === false) return undefined;
  if (value === true) return DEFAULT_RESTART_DELAY_SEC;
  if (!/^\d+(\.\d+)?$/.test(value)) throw new EscaleError('Usage', `--auto-restart expects a number of seconds, got '${value}'`);
  return Number(value);
}

/** Runs `escale` with the given arguments (without node and script); returns the exit code. */
export async function escaleMain(argv: string[], output: Output = processOutput): Promise<number> {
  const program = escaleProgram(output);
  program.parse(argv, { from: 'user' });
  const options = program.opts<EscaleOptions>();

  const configFile = options.config ?? options.configFile;
  const wizard = options.interactive === true || options.i === true;
  const importFile = options.import ?? (typeof options.i === 'string' ? options.i : undefined);
  if (wizard || importFile !== undefined) {
    if (options.i !== undefined && (options.interactive || options.import !== undefined)) {
      throw new EscaleError('Usage', `'-i' and '${options.interactive ? '--interactive' : '--import'}' conflict: '-i' alone is --interactive, '-i FILE' is --import FILE`);
    }
    if (wizard && importFile !== undefined) throw new EscaleError('Usage', '--interactive and --import cannot be used together');
    const other = (['daemon', 'check', 'once', 'dryRun', 'json', 'section', 'autoRestart'] as const).find((o) => options[o] !== undefined);
    if (other !== undefined) throw new EscaleError('Usage', `${wizard ? 'the wizard (-i, --interactive)' : '--import'} cannot be combined with --${other.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
    if (options.config !== undefined && options.configFile !== undefined && options.config !== options.configFile) {
      throw new EscaleError('Usage', '--config and --config-file name different files');
    }
    return importFile === undefined ? runWizard(configFile, output) : runImport(importFile, importDestination(configFile), output);
  }
  if (options.daemon && (options.once || options.dryRun || options.check)) throw new EscaleError('Usage', '-d/--daemon cannot be combined with --once, --dry-run or --check');
  if (options.json && !options.check && !options.dryRun) throw new EscaleError('Usage', '--json is only meaningful with --check or --dry-run');
  if (options.quiet && options.verbose) throw new EscaleError('Usage', '--quiet and --verbose cannot be used together');
  if (options.config !== undefined && options.configFile !== undefined && options.config !== options.configFile) {
    throw new EscaleError('Usage', '--config and --config-file name different files');
  }
  const autoRestart = restartDelay(options.autoRestart);

  const config = selectSections(await loadConfig(options.config ?? options.configFile), options.section);

  if (options.check) {
    for (const warning of config.warnings) output.err(`escale: warning: ${warning}\n`);
    output.out(options.json ? configToJson(config) : describeConfig(config));
    return EXIT.ok;
  }
  if (options.daemon) return daemonize(options, config, output);

  const sinks: LogSink[] = [terminalSink({ level: terminalLevel(options), write: (line) => output.err(line) })];
  if (!options.dryRun) {
    try {
      sinks.push(fileSink({ path: config.global.logFile, level: config.global.logLevel, rotate: config.global.logRotate }));
    } catch (error) {
      throw new EscaleError('Config', `cannot open the log file '${config.global.logFile}': ${(error as Error).message}`, { file: config.file, key: 'log file', cause: error });
    }
  }
  const logger = createLogger(sinks, 'escale');
  logger.info(`running version ${packageVersion()}`);
  for (const warning of config.warnings) logger.warning(warning);
  const global = autoRestart === undefined ? config.global : { ...config.global, keepAliveSec: autoRestart };
  const { statsFile } = environmentFlags();
  const stats = statsFile === undefined ? undefined : new RelayStats();
  try {
    return await runEscale({
      config: { ...config, global },
      ...(options.once || options.dryRun ? {} : { pidFile: pidFilePath(config.configDir, config.baseName) }),
      once: options.once === true,
      dryRun: options.dryRun === true,
      logger,
      ...(options.section === undefined ? {} : { sections: options.section }),
      ...(stats ? { stats } : {}),
      ...(options.dryRun ? { onPlan: (section: string, action: Action) => output.out(describePlanned(section, action, options.json === true)) } : {}),
    });
  } finally {
    if (statsFile !== undefined && stats) writeStatsLine(statsFile, stats);
  }
}

/** Appends one JSON line to `file`: pid, relay counters per section, and this process's CPU time and peak RSS. */
function writeStatsLine(file: string, stats: RelayStats): void {
  const usage = process.resourceUsage();
  const line = { pid: process.pid, sections: stats.toJSON(), cpuUserMs: Math.round(usage.userCPUTime / 1000), cpuSystemMs: Math.round(usage.systemCPUTime / 1000), maxRssKiB: usage.maxRSS };
  appendFileSync(file, `${JSON.stringify(line)}\n`);
}

/** One line of a dry run's plan: `[section] download 'a/b.txt' (new)`, or a JSON object with --json. */
export function describePlanned(section: string, action: Action, json: boolean): string {
  if (json) return `${JSON.stringify({ section, ...action })}\n`;
  const detail = action.kind === 'note' ? `${action.level}: ${action.message}` : action.kind === 'set-access' ? action.modifiers : action.reason;
  return `[${section}] ${action.kind} '${action.path}' (${detail})\n`;
}

// why: run only when executed as a program, not when imported by tests.
if (isMainModule(import.meta.url)) {
  const argv = process.argv.slice(2);
  void runMain('escale', () => escaleMain(argv), () => argv.includes('--debug') || environmentFlags().debug);
}
