/**
 * What `escale --check` prints: every client's resolved settings with where they came from, in a
 * human-readable table or as JSON. Secrets are always shown as `***`.
 */
import { SECRET_EXTRA_KEYS } from '../config/schema.js';
import type { LoadedConfig } from '../config/load.js';
import type { ClientConfig, GlobalConfig, Pattern, SettingSource } from '../config/schema.js';
import { REDACTED } from '../core/redact.js';

const MIB = 1024 * 1024;

/** Formats a byte count the way the configuration writes it (MB = MiB). */
export function formatSize(bytes: number): string {
  if (bytes >= 1024 * MIB && bytes % (1024 * MIB) === 0) return `${bytes / (1024 * MIB)} GB`;
  if (bytes % MIB === 0) return `${bytes / MIB} MB`;
  return `${bytes} B`;
}

const patterns = (list: Pattern[]): string => list.map((p) => p.source).join(', ');

/** The rows shown for one client: label, value, and the id of its source (if written in the file). */
function clientRows(c: ClientConfig): Array<[string, string, string?]> {
  const rows: Array<[string, string, string?]> = [
    ['client name', c.clientName, 'clientName'],
    ['local path', c.localPath, 'localPath'],
    ['mode', c.mode, 'mode'],
    ['protocol', c.protocol, 'protocol'],
  ];
  if (c.host !== undefined) rows.push(['host', c.host, 'address']);
  if (c.port !== undefined) rows.push(['port', String(c.port), 'port']);
  rows.push(['relay directory', c.directory === '' ? '(root)' : c.directory, 'directory']);
  if (c.user !== undefined) rows.push(['user', c.user, 'user']);
  if (c.password !== undefined) rows.push(['password', c.credentialFile === undefined ? REDACTED : `${REDACTED} (from ${c.credentialFile})`, 'password']);
  rows.push(['refresh', `${c.refreshSec} s`, 'refresh']);
  rows.push(['modification times', c.useMtime ? (c.legacyTimestampFormat === undefined ? 'yes' : `yes (legacy format ${c.legacyTimestampFormat})`) : 'no', 'timestamp']);
  rows.push(['checksum', c.checksumAlgorithm ?? 'no', 'checksum']);
  rows.push(['checksum cache', typeof c.checksumCache === 'string' ? c.checksumCache : c.checksumCache ? 'yes' : 'no (memory only)', 'checksumCache']);
  rows.push(['encryption', c.encryption.algorithm ?? 'no', 'encryption']);
  if (c.encryption.passphrase !== undefined) {
    rows.push(['passphrase', c.encryption.passphraseFile === undefined ? REDACTED : `${REDACTED} (from ${c.encryption.passphraseFile})`, 'passphrase']);
  }
  rows.push(['index', c.index.enabled ? (c.index.pages === 'single' ? 'yes (one page)' : `topdir:${c.index.depth}`) : 'no', 'index']);
  if (c.index.enabled) rows.push(['max page size', formatSize(c.maxPageSizeBytes), 'maxPageSize']);
  if (c.pullerCount !== undefined) rows.push(['puller count', String(c.pullerCount), 'pullerCount']);
  if (c.diskQuotaBytes !== undefined) rows.push(['disk quota', formatSize(c.diskQuotaBytes), 'diskQuota']);
  rows.push(['lock timeout', c.lockTimeoutSec === null ? 'never' : `${c.lockTimeoutSec} s`, 'lockTimeout']);
  const f = c.filters;
  if (f.extensions.length > 0) rows.push(['file extensions', f.extensions.join(', '), 'extensions']);
  if (f.include.length > 0) rows.push(['include', patterns(f.include), 'include']);
  if (f.exclude.length > 0) rows.push(['exclude', patterns(f.exclude), 'exclude']);
  if (f.includeDirs.length > 0) rows.push(['include directories', patterns(f.includeDirs), 'includeDirs']);
  if (f.excludeDirs.length > 0) rows.push(['exclude directories', patterns(f.excludeDirs), 'excludeDirs']);
  if (c.priority !== undefined) rows.push(['priority', c.priority, 'priority']);
  if (c.pullOverwrite) rows.push(['pull overwrite', 'yes', 'pullOverwrite']);
  if (c.allowPageDeletion) rows.push(['allow page deletion', 'yes', 'allowPageDeletion']);
  if (c.verifySsl !== undefined) rows.push(['verify ssl', c.verifySsl ? 'yes' : 'NO', 'verifySsl']);
  if (c.sslVersion !== undefined) rows.push(['ssl version', c.sslVersion, 'sslVersion']);
  if (c.certificate !== undefined) rows.push(['certificate', c.certificate, 'certificate']);
  if (c.keyfile !== undefined) rows.push(['private key', c.keyfile, 'keyfile']);
  if (c.maintainer !== undefined) rows.push(['maintainer', c.maintainer, 'maintainer']);
  if (c.maxPendingTransfers !== undefined) rows.push(['max pending transfers', String(c.maxPendingTransfers), 'maxPendingTransfers']);
  if (c.retryOnError.length > 0) rows.push(['retry on error', c.retryOnError.join(', '), 'retryOnError']);
  if (c.sources.uploadMaxWait !== undefined) rows.push(['upload max wait', `${c.uploadMaxWaitSec} s`, 'uploadMaxWait']);
  if (c.sources.verbosity !== undefined) rows.push(['verbosity', String(c.verbosity), 'verbosity']);
  rows.push(['data folder', c.dataDir, 'cacheDir']);
  for (const [key, value] of Object.entries(c.extra)) rows.push([key, SECRET_EXTRA_KEYS.includes(key) ? '***' : value, key]);
  return rows;
}

function origin(source: SettingSource | undefined): string {
  if (source === undefined) return '(default)';
  return `(line ${source.line}${source.section === 'DEFAULT' ? ', global' : ''})`;
}

function table(rows: Array<[string, string, SettingSource | undefined]>): string[] {
  const width = Math.max(...rows.map(([label]) => label.length));
  return rows.map(([label, value, source]) => `  ${label.padEnd(width)}  ${value}  ${origin(source)}`);
}

/** The human-readable report of `escale --check`. */
export function describeConfig(config: LoadedConfig): string {
  const g: GlobalConfig = config.global;
  const lines = [`configuration file: ${config.file}`, ''];
  lines.push(
    ...table([
      ['log file', g.logFile, g.sources.logFile],
      ['log level', g.logLevel.toUpperCase(), g.sources.logLevel],
      ['log rotate', String(g.logRotate), g.sources.logRotate],
      ['keep alive', g.keepAliveSec === null ? 'no' : `restart after ${g.keepAliveSec} s`, g.sources.keepAlive],
    ]),
  );
  for (const c of config.clients) {
    lines.push('', `[${c.section}]`);
    lines.push(...table(clientRows(c).map(([label, value, id]) => [label, value, id === undefined ? undefined : c.sources[id]])));
  }
  lines.push('', `${config.clients.length} client${config.clients.length === 1 ? '' : 's'}; configuration OK`);
  return `${lines.join('\n')}\n`;
}

/** A JSON-safe copy of one client with secrets replaced by `***` and patterns by their source text. */
export function clientToJson(c: ClientConfig): Record<string, unknown> {
  const { password, encryption, filters, extra, ...rest } = c;
  return {
    ...rest,
    extra: Object.fromEntries(Object.entries(extra).map(([key, value]) => [key, SECRET_EXTRA_KEYS.includes(key) ? REDACTED : value])),
    ...(password === undefined ? {} : { password: REDACTED }),
    encryption: {
      algorithm: encryption.algorithm,
      ...(encryption.passphrase === undefined ? {} : { passphrase: REDACTED }),
      ...(encryption.passphraseFile === undefined ? {} : { passphraseFile: encryption.passphraseFile }),
    },
    filters: {
      extensions: filters.extensions,
      include: filters.include.map((p) => p.source),
      exclude: filters.exclude.map((p) => p.source),
      includeDirs: filters.includeDirs.map((p) => p.source),
      excludeDirs: filters.excludeDirs.map((p) => p.source),
    },
  };
}

/** The JSON report of `escale --check --json`. */
export function configToJson(config: LoadedConfig): string {
  const doc = {
    file: config.file,
    configDir: config.configDir,
    baseName: config.baseName,
    global: config.global,
    clients: config.clients.map(clientToJson),
    warnings: config.warnings,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
