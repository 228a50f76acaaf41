/**
 * `escalectl migrate [-f] [-r SECTION] [--dry-run] DESTINATION`: copies a section's whole relay
 * repository to another relay, then points the configuration at it (configuration.md C13,
 * relay-format.md P7.3, with U-20 fixed). DESTINATION is a configuration file holding the same section(s) with the new
 * relay, the name of another section of the same file (copy only), or a relay address with its
 * protocol (the section's relay settings are then rewritten in place, a `.bak` copy kept).
 */
import { chmod, copyFile, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig, loadConfigText, type LoadedConfig } from '../../config/load.js';
import { parseAddress } from '../../config/resolve.js';
import { rewriteSection, type SettingChange } from '../../config/rewrite.js';
import type { ClientConfig } from '../../config/schema.js';
import { EscaleError } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { openRelayBackend } from '../../daemon/client.js';
import { isEscaleProcess, pidFilePath, readPidFile } from '../../daemon/pidfile.js';
import type { Backend } from '../../relay/backend.js';
import { copyRelay, type CopyReport } from '../../relay/protocol/relay-copy.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT } from '../output.js';
import { commandLogger, DEFAULT_LOCK_WAIT_SEC, lockWaitSeconds, onlySection, progressPrinter } from './maintenance.js';

/** Options of `escalectl migrate`. */
export interface MigrateOptions {
  repository?: string;
  fast?: boolean;
  dryRun?: boolean;
  /** Seconds to wait for files or pages another client holds locked on the source (default 600). */
  lockWait?: string;
  json?: boolean;
}

/** Where a relay is: the settings that a migration changes. */
interface RelayFields {
  readonly protocol: string;
  readonly address?: string;
  readonly port?: number;
  readonly directory?: string;
}

/** One section to migrate: from its relay to `target`'s, and how the configuration changes (if it does). */
interface MigrationPlan {
  readonly source: ClientConfig;
  readonly target: ClientConfig;
  /** The whole new configuration text, when the configuration file is rewritten. */
  readonly newText?: string;
  readonly described: string[];
}

/** `protocol://host:port/directory` of a section, for messages and comparisons (never a secret). */
function relayLabel(config: Pick<ClientConfig, 'protocol' | 'host' | 'port' | 'directory'>): string {
  if (config.protocol === 'file') return `file://${config.directory}`;
  return `${config.protocol}://${config.host ?? ''}${config.port === undefined ? '' : `:${config.port}`}/${config.directory}`;
}

/** The relay settings of a destination address (configuration.md C5); it must name its protocol. */
function fieldsOfAddress(destination: string): RelayFields {
  const parts = parseAddress(destination);
  if (parts.scheme === undefined) {
    throw new EscaleError('Usage', 'relay host address should include protocol', { hint: `e.g. ftp://server/path, or file:///folder for a local folder, or the name of another section` });
  }
  if (parts.absolute !== undefined) return { protocol: parts.scheme, directory: parts.scheme === 'file' ? resolve(parts.absolute) : parts.absolute };
  if (parts.host?.includes('@')) {
    // why: a migration changes where the relay is, not who logs in; and the address would be echoed.
    throw new EscaleError('Usage', 'the destination address holds a user name or password: give the address without them', {
      hint: "keep the login in the section ('user', 'secret file'), or give a configuration file with the new relay settings as DESTINATION",
    });
  }
  if (parts.scheme === 'file') throw new EscaleError('Usage', `a file relay needs an absolute folder: write file:///path/to/relay (got '${destination}')`);
  let port: number | undefined;
  if (parts.port !== undefined) {
    port = Number(parts.port);
    if (!/^\d+$/.test(parts.port) || port < 1 || port > 65535) throw new EscaleError('Usage', `bad port '${parts.port}' in '${destination}'`);
  }
  return { protocol: parts.scheme, ...(parts.host ? { address: parts.host } : {}), ...(port === undefined ? {} : { port }), ...(parts.path ? { directory: parts.path } : {}) };
}

/** The relay settings of a resolved section. */
function fieldsOfClient(config: ClientConfig): RelayFields {
  return {
    protocol: config.protocol,
    ...(config.protocol === 'file' || config.host === undefined ? {} : { address: config.host }),
    ...(config.port === undefined ? {} : { port: config.port }),
    ...(config.directory === '' ? {} : { directory: config.directory }),
  };
}

/** What the resolver makes of `fields` (for the check after the rewrite). */
function expectedLabel(fields: RelayFields): string {
  const directory = fields.protocol === 'file' ? (fields.directory ?? '') : (fields.directory ?? '').replace(/^\/+/, '').replace(/\/+$/, '');
  return relayLabel({ protocol: fields.protocol, directory, ...(fields.address === undefined ? {} : { host: fields.address }), ...(fields.port === undefined ? {} : { port: fields.port }) });
}

/**
 * Rewrites `section` of `text` so that it names the relay of `fields` (protocol, address, port,
 * directory under the key names already used; missing ones added, ones that no longer apply
 * removed), then reads the result back and checks that it resolves to that relay.
 */
function planRewrite(config: LoadedConfig, text: string, source: ClientConfig, fields: RelayFields): { newText: string; target: ClientConfig; described: string[] } {
  const changes: SettingChange[] = [
    { option: 'protocol', value: fields.protocol },
    { option: 'address', value: fields.address },
    { option: 'port', value: fields.port === undefined ? undefined : String(fields.port) },
    { option: 'directory', value: fields.directory },
  ];
  const { text: newText, described } = rewriteSection(text, source.section, changes);
  let target: ClientConfig | undefined;
  try {
    target = loadConfigText(newText, config.file).clients.find((c) => c.section === source.section);
  } catch (error) {
    throw new EscaleError('Config', `the rewritten configuration would not be valid:\n${(error as Error).message}`, { cause: error });
  }
  const expected = expectedLabel(fields);
  if (target === undefined || relayLabel(target) !== expected) {
    throw new EscaleError('Config', `cannot point [${source.section}] at ${expected} by changing its relay settings (it would read ${target === undefined ? 'nothing' : relayLabel(target)}); a global setting probably applies`, {
      hint: 'move the relay settings of the global part into the sections, or edit the configuration by hand',
    });
  }
  return { newText, target, described };
}

/** Warns about settings a destination configuration file cannot change (configuration.md C13). */
function warnUnchangeable(source: ClientConfig, target: ClientConfig, logger: Logger): void {
  const differs: [string, boolean][] = [
    ['client name', source.clientName !== target.clientName],
    ['encryption', source.encryption.algorithm !== target.encryption.algorithm],
    ['passphrase', !(source.encryption.passphrase ?? Buffer.alloc(0)).equals(target.encryption.passphrase ?? Buffer.alloc(0))],
  ];
  for (const [field, different] of differs) if (different) logger.warning(`cannot modify ${field} at migration time; ignoring the new value`);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Works out what to copy where, and the configuration change (configuration.md C13), without touching any relay. */
async function planMigration(destination: string, options: MigrateOptions, config: LoadedConfig, text: string, logger: Logger): Promise<MigrationPlan[]> {
  if (isFile(destination)) {
    const other = await loadConfig(resolve(destination));
    const sources = options.repository === undefined ? config.clients : [onlySection(config, options.repository)];
    let newText = text;
    const plans: MigrationPlan[] = [];
    for (const source of sources) {
      const target = other.clients.find((c) => c.section === source.section);
      if (target === undefined) throw new EscaleError('Config', `cannot change repository name: ${destination} has no section [${source.section}]`);
      warnUnchangeable(source, target, logger);
      const rewritten = planRewrite(config, newText, source, fieldsOfClient(target));
      newText = rewritten.newText;
      if (source.user !== target.user || source.password !== target.password) {
        logger.warning(`[${source.section}] the user name or password of ${destination} is used for the copy but not written into ${config.file}; update them there by hand`);
      }
      // why: the copy writes with this configuration's identity, key and flavour; only the relay (and how to log in) comes from the file.
      plans.push({ source, target: { ...source, ...locationOf(target) }, described: rewritten.described });
    }
    return plans.map((plan) => ({ ...plan, newText }));
  }
  const source = onlySection(config, options.repository);
  const other = config.clients.find((c) => c.section === destination && c !== source);
  if (other !== undefined) {
    // why: cross-section migration (0.7.8): the configuration stays as it is.
    if (other.index.enabled !== source.index.enabled) {
      throw new EscaleError('Usage', `[${source.section}] and [${other.section}] do not use the same relay flavour ('index' differs); a relay cannot be copied into the other flavour`);
    }
    return [{ source, target: other, described: [] }];
  }
  const rewritten = planRewrite(config, text, source, fieldsOfAddress(destination));
  return [{ source, target: rewritten.target, newText: rewritten.newText, described: rewritten.described }];
}

/** The relay location settings of a section (what a migration changes). */
function locationOf(config: ClientConfig): Pick<ClientConfig, 'protocol' | 'host' | 'port' | 'directory' | 'user' | 'password' | 'extra'> {
  return {
    protocol: config.protocol,
    directory: config.directory,
    extra: config.extra,
    ...(config.host === undefined ? {} : { host: config.host }),
    ...(config.port === undefined ? {} : { port: config.port }),
    ...(config.user === undefined ? {} : { user: config.user }),
    ...(config.password === undefined ? {} : { password: config.password }),
  };
}

/** Copies one section's relay to its target, with the flavour's copy. */
async function copySection(plan: MigrationPlan, lockWaitSec: number, fast: boolean, logger: Logger, onProgress: (done: number, total: number) => void): Promise<CopyReport> {
  const { source, target } = plan;
  const backends: Backend[] = [];
  try {
    const from = await openRelayBackend(source, { logger });
    backends.push(from);
    const to = await openRelayBackend(target, { logger });
    backends.push(to);
    logger.info(`copying [${source.section}] from ${relayLabel(source)} to ${relayLabel(target)}${fast ? ' (fast: no locks)' : ''}`);
    return await copyRelay(from, to, {
      flavour: source.index.enabled ? 'index' : 'placeholder',
      owner: `${source.clientName}-migrate`,
      fast,
      lockWaitMs: lockWaitSec * 1000,
      lockTimeoutSec: source.lockTimeoutSec,
      logger,
      onProgress,
    });
  } finally {
    await Promise.allSettled(backends.map((b) => b.close()));
  }
}

/** Writes the new configuration: the old one is kept as `<file>.bak`, the new one replaces it atomically with the same permissions. */
async function writeConfig(file: string, newText: string): Promise<string> {
  const { mode } = await stat(file);
  const backup = `${file}.bak`;
  await copyFile(file, backup);
  // why: the configuration may hold passwords; the backup must not be more readable than the original.
  await chmod(backup, mode & 0o7777);
  const temporary = `${file}.escale-${process.pid}.tmp`;
  try {
    await writeFile(temporary, newText, { mode: mode & 0o7777, flag: 'wx' });
    await chmod(temporary, mode & 0o7777);
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
  return backup;
}

/** Runs `escalectl migrate`; returns the exit code (0 done, 1 some files not copied). */
export async function runMigrate(destination: string, options: MigrateOptions, context: CommandContext): Promise<number> {
  const { output } = context;
  const lockWaitSec = lockWaitSeconds(options.lockWait);
  const config = await loadConfig(context.configFile);
  const text = await readFile(config.file, 'utf8');
  const logger = commandLogger(config, output, 'migrate', { dryRun: options.dryRun === true });
  const plans = await planMigration(destination, options, config, text, logger);
  for (const plan of plans) {
    if (relayLabel(plan.source) === relayLabel(plan.target)) throw new EscaleError('Usage', `[${plan.source.section}] already uses ${relayLabel(plan.target)}; nothing to migrate`);
  }
  const newText = plans.find((p) => p.newText !== undefined)?.newText;

  if (options.dryRun) {
    const lines: string[] = [];
    for (const plan of plans) lines.push(`[${plan.source.section}] would copy ${relayLabel(plan.source)} to ${relayLabel(plan.target)} (${plan.source.index.enabled ? 'index' : 'placeholder'} relay${options.fast ? ', no locks' : ''})`);
    if (newText === undefined) lines.push(`the configuration file ${config.file} would not change`);
    else {
      lines.push(`the configuration file ${config.file} would change (the old one kept as ${config.file}.bak):`);
      for (const plan of plans) for (const line of plan.described) lines.push(`  ${line}`);
    }
    if (options.json) output.out(`${JSON.stringify({ dryRun: true, sections: plans.map((p) => ({ section: p.source.section, from: relayLabel(p.source), to: relayLabel(p.target), changes: p.described })) })}\n`);
    else output.out(`${lines.join('\n')}\n`);
    return EXIT.ok;
  }

  const progress = progressPrinter(output);
  const failed: { section: string; path: string; reason: string }[] = [];
  const results: { section: string; copied: number; failed: number }[] = [];
  for (const plan of plans) {
    const report = await copySection(plan, lockWaitSec, options.fast === true, logger, options.json ? () => undefined : progress);
    for (const f of report.failed) failed.push({ section: plan.source.section, ...f });
    results.push({ section: plan.source.section, copied: report.copied.length, failed: report.failed.length });
  }
  let backup: string | undefined;
  if (failed.length > 0) {
    logger.info(['the following files could not be transfered:', ...failed.map((f) => `  [${f.section}] ${f.path}: ${f.reason}`)].join('\n'));
    // why: pointing clients at a relay that misses files would make them push or pull again; the copy can simply be run again.
    if (newText !== undefined) logger.error(`the configuration file was not changed; run the migration again once the files above can be copied`);
  } else if (newText !== undefined) {
    backup = await writeConfig(config.file, newText);
    for (const plan of plans) for (const line of plan.described) logger.info(`configuration updated: ${line}`);
    logger.info(`the previous configuration is kept as ${backup}`);
    const daemon = await readPidFile(pidFilePath(config.configDir, config.baseName));
    if (daemon !== undefined && isEscaleProcess(daemon)) logger.warning(`escale is running (pid ${daemon}) and still uses the old relay; restart it ('escalectl restart')`);
  }
  if (options.json) output.out(`${JSON.stringify({ sections: results, failed, configurationChanged: backup !== undefined, ...(backup === undefined ? {} : { backup }) })}\n`);
  return failed.length > 0 ? EXIT.failure : EXIT.ok;
}

/** The `migrate` subcommand. */
export const migrateCommand: CommandModule = {
  name: 'migrate',
  register(program: Command, context: () => CommandContext, setExitCode: (code: Promise<number>) => void): void {
    program
      .command('migrate')
      .description('copy the relay repository of a section to another relay, then point the configuration at it')
      .argument('<destination>', 'relay address with its protocol (ftp://server/path, file:///folder...), the name of another section (copy only), or a configuration file with the same section(s)')
      .option('-r, --repository <section>', 'the section to migrate (default: the only one)')
      .option('-f, --fast', 'take no lock (only safe when every client is stopped)')
      .option('--dry-run', 'print what would be copied and the planned configuration change; copy and change nothing')
      .option('--lock-wait <seconds>', `how long to wait for files or pages another client keeps locked on the source (default ${DEFAULT_LOCK_WAIT_SEC})`)
      .option('--json', 'print the outcome as JSON')
      .action((destination: string, options: MigrateOptions) => {
        setExitCode(runMigrate(destination, options, context()));
      });
  },
};
