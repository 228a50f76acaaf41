/**
 * Turns a parsed configuration file into validated GlobalConfig and ClientConfig values
 * (configuration.md C1–C9). Pure apart from the injected FileProbe: the caller (load.ts)
 * supplies home, cwd, host name and file access. Every problem of the file is collected, and all of
 * them are thrown together in one EscaleError('Config') whose message has one line per problem.
 */
import { getHashes } from 'node:crypto';
import { basename, dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { EscaleError } from '../core/errors.js';
import { parseLogLevel } from '../core/log.js';
import type { SecretRegistry } from '../core/redact.js';
import { interpolate, type ParsedConfig, type RawEntry, type RawSection } from './parse.js';
import {
  EXTRA_KEYS,
  SECRET_EXTRA_KEYS,
  isExtraKey,
  IGNORED_KEYS,
  NETWORK_PROTOCOLS,
  OPTIONS,
  PROTOCOLS,
  RCLONE_PROTOCOLS,
  RESERVED_SECTION,
  optionById,
  type ClientConfig,
  type EncryptionAlgorithm,
  type EncryptionConfig,
  type GlobalConfig,
  type IndexConfig,
  type OptionSpec,
  type Pattern,
  type SettingSource,
  type SyncMode,
} from './schema.js';
import { asBoolean, closestMatch, expandHome, readBoolean, readInteger, readList, readNumber, readPattern, readSize, type Read } from './values.js';

/** What kind of file system object a path names; `inaccessible` when it cannot be looked at (permission, I/O). */
export type PathKind = 'file' | 'dir' | 'other' | 'missing' | 'inaccessible';

/** The file access the resolver needs (synchronous; injected so that tests can fake it). */
export interface FileProbe {
  kind(path: string): PathKind;
  read(path: string): Buffer;
  /** Why `path` cannot be looked at, for a path whose kind is `inaccessible`. */
  problem?(path: string): string;
}

/** The message for a path the probe cannot look at: the probe's reason when it gives one. */
export function inaccessible(fs: FileProbe, path: string): string {
  return `cannot access '${path}': ${fs.problem?.(path) ?? 'permission denied or I/O error'}`;
}

/** Facts about the environment the resolver needs; load.ts fills them from the real process. */
export interface ResolveContext {
  /** Absolute path of the configuration file (used in messages and for default locations). */
  file: string;
  home: string;
  cwd: string;
  hostname: string;
  fs: FileProbe;
  /** Backend-specific keys accepted in addition to schema.EXTRA_KEYS. */
  extraKeys?: readonly string[];
  /** Where passwords and passphrases are registered for redaction. */
  secrets?: SecretRegistry;
}

/** The resolved configuration, with the warnings found on the way (file:line: text). */
export interface ResolvedConfig {
  global: GlobalConfig;
  clients: ClientConfig[];
  warnings: string[];
}

/** Default `refresh` in seconds (configuration.md C2). */
export const DEFAULT_REFRESH_SEC = 30;
/** Default `lock timeout` in seconds: 3 days. */
export const DEFAULT_LOCK_TIMEOUT_SEC = 259200;
/** Default `maxpagesize`: 200 MiB. */
export const DEFAULT_MAX_PAGE_SIZE_BYTES = 200 * 1024 * 1024;
/** Default `upload max wait` in seconds. */
export const DEFAULT_UPLOAD_MAX_WAIT_SEC = 600;
/** Default `poll interval` in seconds (issue 14). */
export const DEFAULT_POLL_INTERVAL_SEC = 2;
/** Default `full scan interval` in seconds: one hour. */
export const DEFAULT_FULL_SCAN_INTERVAL_SEC = 3600;
/** Default checksum algorithm. */
export const DEFAULT_CHECKSUM = 'sha512';

const SSL_VERSIONS: Record<string, string> = { sslv23: 'TLS', tls: 'TLS', tlsv1: 'TLSv1', 'tlsv1.1': 'TLSv1.1', 'tlsv1.2': 'TLSv1.2', 'tlsv1.3': 'TLSv1.3' };
const PYTHON_HASH_NAMES: Record<string, string> = { blake2b: 'blake2b512', blake2s: 'blake2s256', shake_128: 'shake128', shake_256: 'shake256' };

/** Collects problems and warnings, each once, in order. */
class Report {
  readonly problems: string[] = [];
  readonly warnings: string[] = [];
  constructor(readonly file: string) {}
  problem(line: number | undefined, text: string): void {
    const message = line === undefined || line === 0 ? `${this.file}: ${text}` : `${this.file}:${line}: ${text}`;
    if (!this.problems.includes(message)) this.problems.push(message);
  }
  warning(line: number | undefined, text: string): void {
    const message = line === undefined || line === 0 ? `${this.file}: ${text}` : `${this.file}:${line}: ${text}`;
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }
}

const label = (section: RawSection): string => (section.name === 'DEFAULT' ? '(global)' : `[${section.name}]`);
const where = (section: RawSection): string => (section.name === 'DEFAULT' ? 'the global settings' : `section [${section.name}]`);

/** A setting found for one option: its entry, the section it came from and its interpolated value. */
interface Found {
  entry: RawEntry;
  from: RawSection;
  value: string;
}

/** Reads options of one section with the global settings as fallback. */
class SectionReader {
  readonly sources: Record<string, SettingSource> = {};
  constructor(
    private readonly own: RawSection,
    private readonly globals: RawSection,
    private readonly report: Report,
  ) {}

  /** The raw (not interpolated) value of any key, section first, for `%(key)s`. */
  private lookup = (key: string): string | undefined => this.own.entries.get(key)?.value ?? this.globals.entries.get(key)?.value;

  /** Finds the first alias present (section before globals) and interpolates its value. */
  find(option: OptionSpec): Found | undefined {
    for (const from of [this.own, this.globals]) {
      const present = option.keys.filter((k) => from.entries.has(k));
      const key = present[0];
      if (key === undefined) continue;
      const entry = from.entries.get(key) as RawEntry;
      for (const other of present.slice(1)) {
        const shadowed = from.entries.get(other) as RawEntry;
        this.report.warning(shadowed.line, `${label(from)} '${shadowed.written}' is ignored: '${entry.written}' (line ${entry.line}) sets the same option and takes priority`);
      }
      const result = interpolate(entry.value, this.lookup);
      this.sources[option.id] = { file: this.report.file, line: entry.line, key: entry.written, section: from.name };
      if (!result.ok) {
        this.report.problem(entry.line, `${label(from)} ${entry.written}: ${result.message}`);
        return undefined;
      }
      return { entry, from, value: result.value };
    }
    return undefined;
  }

  /** Reports a problem about a found setting. */
  fail(found: Found, text: string): undefined {
    this.report.problem(found.entry.line, `${label(found.from)} ${found.entry.written}: ${text}`);
    return undefined;
  }

  /** Reads an option with a converter; undefined when absent or invalid (then reported). */
  read<T>(id: string, convert: (text: string, found: Found) => Read<T>): T | undefined {
    const found = this.find(optionById(id));
    if (found === undefined) return undefined;
    if (found.value === '' && !['list', 'patterns', 'int-list'].includes(optionById(id).type)) {
      return this.fail(found, `empty value; expected ${optionById(id).doc}`);
    }
    const result = convert(found.value, found);
    return result.ok ? result.value : this.fail(found, result.problem);
  }
}

const ok = <T>(value: T): Read<T> => ({ ok: true, value });
const bad = (problem: string): Read<never> => ({ ok: false, problem });

function positive(read: Read<number>, what: string, min = 1): Read<number> {
  if (!read.ok) return read;
  return read.value >= min ? read : bad(`expected ${what} of at least ${min}, got ${read.value}`);
}

/** Reads a "bool or number" value: boolean words first, as in the original (configuration.md C2). */
function boolOrNumber(text: string): Read<boolean | number> {
  const b = asBoolean(text);
  if (b !== undefined) return ok(b);
  const n = readNumber(text);
  return n.ok ? n : bad(`expected yes/no or a number, got '${text}'`);
}

/** Validates the whole parsed file against the schema; throws EscaleError('Config') listing every problem. */
export function resolveConfig(parsed: ParsedConfig, ctx: ResolveContext): ResolvedConfig {
  const report = new Report(ctx.file);
  for (const p of parsed.problems) report.problem(p.line, p.message);

  const knownKeys = new Set<string>([...OPTIONS.flatMap((o) => o.keys), ...EXTRA_KEYS, ...(ctx.extraKeys ?? []), ...IGNORED_KEYS]);
  const extraKeys = new Set<string>([...EXTRA_KEYS, ...(ctx.extraKeys ?? [])]);
  const checkKeys = (section: RawSection): void => {
    for (const entry of section.entries.values()) {
      if (knownKeys.has(entry.key) || isExtraKey(entry.key)) {
        const option = OPTIONS.find((o) => o.keys.includes(entry.key));
        if (option?.scope === 'global' && section.name !== 'DEFAULT') {
          report.warning(entry.line, `'${entry.written}' is a global setting; it is ignored in ${where(section)} (move it before the first section)`);
        }
        if (option?.noEffect) report.warning(entry.line, `'${entry.written}' has no effect (kept for compatibility)`);
        continue;
      }
      const suggestion = closestMatch(entry.key, knownKeys);
      report.problem(entry.line, `unknown key '${entry.written}' in ${where(section)}${suggestion === undefined ? '' : `; did you mean '${suggestion}'?`}`);
    }
  };
  checkKeys(parsed.globals);
  for (const section of parsed.sections) checkKeys(section);

  const global = resolveGlobal(parsed.globals, ctx, report);
  const clients: ClientConfig[] = [];
  if (parsed.sections.length === 0) {
    report.problem(undefined, "no client section: add a '[name]' section with at least 'local path' and the relay settings (or run 'escale -i')");
  }
  for (const section of parsed.sections) {
    if (section.name === RESERVED_SECTION) {
      report.problem(section.line, `section name '${RESERVED_SECTION}' is reserved; choose another name for this client`);
      continue;
    }
    const client = resolveClient(section, parsed.globals, ctx, report, extraKeys);
    if (client !== undefined) clients.push(client);
  }

  const identities = new Map<string, string>();
  for (const c of clients) {
    const id = `${c.protocol}://${c.host ?? ''}:${c.port ?? ''}/${c.directory}#${c.clientName}`;
    const other = identities.get(id);
    if (other !== undefined) {
      report.warning(0, `sections [${other}] and [${c.section}] use the same relay with the same client name '${c.clientName}'; set 'client name' in one of them`);
    } else identities.set(id, c.section);
  }

  if (report.problems.length > 0) {
    // why: file order reads best; problems without a line (whole-file ones) come last.
    const lineOf = (m: string): number => Number(/^:(\d+): /.exec(m.slice(ctx.file.length))?.[1] ?? Infinity);
    report.problems.sort((a, b) => lineOf(a) - lineOf(b));
    const first = report.problems[0] ?? '';
    const lineMatch = /^:(\d+): /.exec(first.slice(ctx.file.length));
    throw new EscaleError('Config', report.problems.join('\n'), {
      file: ctx.file,
      ...(lineMatch?.[1] === undefined ? {} : { line: Number(lineMatch[1]) }),
      hint: 'fix the lines above; `escale --check` validates the file without starting',
    });
  }
  return { global, clients, warnings: report.warnings };
}

/** The configuration folder, base name and default locations derived from the file path (configuration.md C10). */
export function configPaths(file: string, home: string): { configDir: string; baseName: string; defaultLog: string; defaultCache: string } {
  const configDir = dirname(file);
  const name = basename(file);
  const ext = extname(name);
  const baseName = ext === '' || ext === name ? name : name.slice(0, -ext.length);
  const under = (root: string): boolean => file.startsWith(root.endsWith('/') ? root : `${root}/`);
  let defaultCache = configDir;
  if (under(join(home, '.config', 'escale'))) defaultCache = join(home, '.cache', 'escale');
  else if (under(join(home, '.escale'))) defaultCache = join(home, '.escale', 'cache');
  else if (under('/etc')) defaultCache = '/var/cache/escale';
  // why: the original fell back to ./log for /etc; escale never writes into the cwd (configuration.md C10).
  const defaultLog = under('/etc') ? `/var/log/${baseName}.log` : join(configDir, `${baseName}.log`);
  return { configDir, baseName, defaultLog, defaultCache };
}

function resolveGlobal(globals: RawSection, ctx: ResolveContext, report: Report): GlobalConfig {
  const r = new SectionReader(globals, { name: 'DEFAULT', line: 0, entries: new Map() }, report);
  const paths = configPaths(ctx.file, ctx.home);
  const logFile = r.read('logFile', (t) => ok(resolve(ctx.cwd, expandHome(t, ctx.home)))) ?? paths.defaultLog;
  const logRotate = r.read('logRotate', (t) => positive(readInteger(t), 'a number of copies', 0)) ?? 3;
  const logLevel =
    r.read('logLevel', (t) => {
      const level = parseLogLevel(t);
      return level === undefined ? bad(`expected DEBUG, INFO, WARNING, ERROR or CRITICAL, got '${t}'`) : ok(level);
    }) ?? 'debug';
  const keepAlive = r.read('keepAlive', (t, found) => {
    const v = boolOrNumber(t);
    if (!v.ok) return bad(`expected yes/no or a delay in seconds, got '${t}'`);
    if (t.trim() === '1') report.warning(found.entry.line, `(global) ${found.entry.written} = 1 is read as 'yes': restart without delay`);
    if (typeof v.value === 'boolean') return ok(v.value ? 0 : null);
    return v.value >= 0 ? ok(v.value) : bad(`expected a delay of at least 0 seconds, got ${v.value}`);
  });
  return { logFile, logRotate, logLevel, keepAliveSec: keepAlive ?? null, sources: r.sources };
}

function resolveClient(section: RawSection, globals: RawSection, ctx: ResolveContext, report: Report, extraKeys: Set<string>): ClientConfig | undefined {
  const r = new SectionReader(section, globals, report);
  const sectionProblem = (text: string): void => report.problem(section.line, `[${section.name}] ${text}`);
  const before = report.problems.length;
  const paths = configPaths(ctx.file, ctx.home);
  const absolutePath = (t: string): string => resolve(ctx.cwd, expandHome(t, ctx.home));
  const existingFile = (t: string): Read<string> => {
    const p = absolutePath(t);
    const kind = ctx.fs.kind(p);
    if (kind === 'inaccessible') return bad(inaccessible(ctx.fs, p));
    return kind === 'file' ? ok(p) : bad(kind === 'missing' ? `file '${p}' does not exist` : `'${p}' is not a regular file`);
  };

  // Local repository and identity.
  const localPath = r.read('localPath', (t) => ok(absolutePath(t)));
  if (localPath === undefined && r.sources.localPath === undefined) sectionProblem("missing 'local path' (the local folder to synchronize)");
  const clientName = r.read('clientName', (t) => ok(t)) ?? (ctx.hostname && ctx.hostname !== 'localhost' ? ctx.hostname : section.name);

  // Mode (configuration.md C8).
  const pushOnly = r.read('pushOnly', readBoolean) ?? false;
  const pullOnly = r.read('pullOnly', readBoolean) ?? false;
  const modeText = r.find(optionById('mode'));
  let mode: SyncMode = 'shared';
  if (modeText !== undefined) {
    const m = modeText.value.trim().toLowerCase();
    if (m === 'upload' || m === 'download') mode = m;
    else if (m.startsWith('shar')) mode = 'shared';
    else if (['conservative', 'protective', 'preservative'].includes(m)) mode = 'conservative';
    else r.fail(modeText, `'${modeText.value}' mode not supported; expected upload, download, shared or conservative`);
  }
  if (pushOnly && pullOnly) {
    sectionProblem("both 'push only' and 'pull only' are set; cannot determine the mode (use 'mode = upload' or 'mode = download')");
  } else if (pushOnly || pullOnly) {
    const forced: SyncMode = pushOnly ? 'upload' : 'download';
    if (modeText !== undefined && mode !== forced) {
      report.warning(modeText.entry.line, `[${section.name}] '${modeText.entry.written} = ${modeText.value}' is overridden by '${pushOnly ? 'push only' : 'pull only'}': the mode is ${forced}`);
    }
    mode = forced;
  }

  // Relay (configuration.md C5).
  // why: a login written into the address (`scheme://user:password@host`) is read once: the relay
  // is resolved without it, and it counts only where the keys give none.
  const addressFound = r.find(optionById('address'));
  const urlLogin = addressFound === undefined ? undefined : addressLogin(expandHome(addressFound.value, ctx.home));
  if (urlLogin !== undefined) ctx.secrets?.add(urlLogin.password);
  const relay = resolveRelay(r, section, ctx, report, urlLogin?.rest);

  // Credentials (configuration.md C6).
  const user = r.read('user', (t) => ok(t));
  let password: string | undefined;
  let credentialFile: string | undefined;
  const passwordFound = r.find(optionById('password'));
  let resolvedUser = user ?? (urlLogin?.user === '' ? undefined : urlLogin?.user);
  if (passwordFound !== undefined && passwordFound.value !== '') {
    const explicitFile = ['secret file', 'credential'].includes(passwordFound.entry.key);
    const secret = secretValue(passwordFound.value, explicitFile, ctx, paths.configDir);
    if (!secret.ok) r.fail(passwordFound, secret.problem);
    else if (secret.value.file === undefined) password = secret.value.text.toString('utf8');
    else {
      credentialFile = secret.value.file;
      const parsedCredential = readCredentialFile(secret.value.text.toString('utf8'), user);
      if (!parsedCredential.ok) r.fail(passwordFound, `${parsedCredential.problem} in credential file '${credentialFile}'`);
      else {
        password = parsedCredential.value.password;
        resolvedUser = parsedCredential.value.user ?? user;
      }
    }
  }

  // Timing.
  const refreshSec =
    r.read('refresh', (t, found) => {
      const v = boolOrNumber(t);
      if (!v.ok) return bad(`expected a number of seconds (or yes = ${DEFAULT_REFRESH_SEC}), got '${t}'`);
      if (v.value === false) return bad('refresh cannot be disabled; give the maximum number of seconds between rounds');
      if (v.value === true) {
        if (t.trim() === '1') report.warning(found.entry.line, `${label(found.from)} ${found.entry.written} = 1 is read as 'yes', i.e. ${DEFAULT_REFRESH_SEC} seconds (as in escale 0.7); write 1.0 for one second`);
        return ok(DEFAULT_REFRESH_SEC);
      }
      return v.value > 0 ? ok(v.value) : bad(`expected a number of seconds greater than 0, got ${v.value}`);
    }) ?? DEFAULT_REFRESH_SEC;
  const lockTimeout = r.read('lockTimeout', (t, found) => {
    const v = boolOrNumber(t);
    if (!v.ok) return bad(`expected yes/no or a number of seconds, got '${t}'`);
    if (typeof v.value === 'boolean') {
      if (t.trim() === '1') report.warning(found.entry.line, `${label(found.from)} ${found.entry.written} = 1 is read as 'yes', i.e. ${DEFAULT_LOCK_TIMEOUT_SEC} seconds (3 days)`);
      return ok(v.value ? DEFAULT_LOCK_TIMEOUT_SEC : null);
    }
    return v.value > 0 ? ok(v.value) : bad(`expected a number of seconds greater than 0, got ${v.value}`);
  });
  const uploadMaxWaitSec = r.read('uploadMaxWait', (t) => positive(readNumber(t), 'a number of seconds', 0)) ?? DEFAULT_UPLOAD_MAX_WAIT_SEC;
  const watch = r.read('watch', readBoolean) ?? true;
  const pollIntervalSec = r.read('pollInterval', (t) => positive(readNumber(t), 'a number of seconds', 0.1)) ?? DEFAULT_POLL_INTERVAL_SEC;
  const fullScanIntervalSec = r.read('fullScanInterval', (t) => positive(readNumber(t), 'a number of seconds', 1)) ?? DEFAULT_FULL_SCAN_INTERVAL_SEC;

  // Change detection.
  let useMtime = true;
  let legacyTimestampFormat: string | undefined;
  const timestamp = r.find(optionById('timestamp'));
  if (timestamp !== undefined) {
    const b = asBoolean(timestamp.value);
    if (b !== undefined) useMtime = b;
    else if (timestamp.value === '') r.fail(timestamp, 'empty value; expected yes/no or a strftime format');
    else legacyTimestampFormat = timestamp.value;
  }
  const checksumAlgorithm = r.read('checksum', (t) => {
    const b = asBoolean(t);
    if (b !== undefined) return ok(b ? DEFAULT_CHECKSUM : null);
    return checksumName(t);
  });
  const checksumCache = r.read('checksumCache', (t): Read<boolean | string> => {
    const b = asBoolean(t);
    return b !== undefined ? ok(b) : ok(absolutePath(t));
  });
  const cacheDir = r.read('cacheDir', (t, found) => {
    const p = expandHome(t, ctx.home);
    return isAbsolute(p) ? ok(resolve(p)) : bad(`'${found.entry.written}' should be an absolute path, got '${t}'`);
  });

  // Filters (configuration.md C4).
  const patterns = (id: string): Pattern[] =>
    r.read(id, (t) => {
      const out: Pattern[] = [];
      for (const item of readList(t)) {
        const p = readPattern(item);
        if (!p.ok) return p;
        out.push(p.value);
      }
      return ok(out);
    }) ?? [];
  const filters = {
    extensions: r.read('extensions', (t) => ok(readList(t).map((e) => e.replace(/^\./, '')))) ?? [],
    include: patterns('include'),
    exclude: patterns('exclude'),
    includeDirs: patterns('includeDirs'),
    excludeDirs: patterns('excludeDirs'),
  };

  // Relay space and index (sync-rules.md R5.4 for maxpagesize, R11 for the quota).
  const diskQuotaBytes = r.read('diskQuota', readSize);
  const maxPageSizeBytes = r.read('maxPageSize', (t) => positive(readSize(t), 'a size', 1)) ?? DEFAULT_MAX_PAGE_SIZE_BYTES;
  const index = r.read('index', (t): Read<IndexConfig> => {
    const b = asBoolean(t);
    if (b !== undefined) return ok(b ? { enabled: true, pages: 'single' } : { enabled: false });
    const m = /^top\s*dir(?:\s*:\s*(\S+))?$/i.exec(t.trim());
    if (m === null) return bad(`wrong index value '${t}'; expected yes, no, topdir or topdir:N`);
    if (m[1] === undefined) return ok({ enabled: true, pages: 'topdir', depth: 1 });
    const depth = positive(readInteger(m[1]), 'a depth', 1);
    return depth.ok ? ok({ enabled: true, pages: 'topdir', depth: depth.value }) : depth;
  }) ?? { enabled: false };
  const pullerCount = r.read('pullerCount', (t) => positive(readInteger(t), 'a puller count', 1));
  const maxPendingTransfers = r.read('maxPendingTransfers', (t) => positive(readInteger(t), 'a number of files', 1));
  const retryOnError =
    r.read('retryOnError', (t) => {
      const out: number[] = [];
      for (const item of readList(t)) {
        const n = readInteger(item);
        if (!n.ok) return bad(`expected comma-separated error numbers, got '${item}'`);
        out.push(n.value);
      }
      return ok(out);
    }) ?? [];
  r.read('minSplitSize', readInteger);
  const priority = r.read('priority', (t): Read<'upload' | null> => {
    const p = t.trim().toLowerCase();
    if (p === 'upload' || p === 'push') return ok('upload');
    if (p === 'download' || p === 'pull') return ok(null);
    return bad(`expected 'upload' (or 'download', the default), got '${t}'`);
  });

  // Encryption (configuration.md C6).
  const encryption = resolveEncryption(r, relay?.protocol, ctx, paths.configDir, sectionProblem);
  if (encryption.algorithm === 'plain') report.warning(r.sources.encryption?.line, `[${section.name}] 'encryption = plain' encrypts nothing: files are sent in clear`);

  // TLS.
  const verifySsl = r.read('verifySsl', readBoolean);
  const sslVersion = r.read('sslVersion', (t) => {
    const v = SSL_VERSIONS[t.trim().toLowerCase()];
    if (v !== undefined) return ok(v);
    if (/^sslv[23]$/i.test(t.trim())) return bad(`'${t}' is insecure and not supported; use TLS, TLSv1.2 or TLSv1.3`);
    return bad(`expected TLS, TLSv1, TLSv1.1, TLSv1.2 or TLSv1.3, got '${t}'`);
  });
  const certificate = r.read('certificate', existingFile);
  const keyfile = r.read('keyfile', existingFile);
  // why: for sftp (native or through rclone) and rclone remotes the keyfile is the SSH private key, not a TLS client key.
  const sshKey = relay !== undefined && RCLONE_PROTOCOLS.includes(relay.protocol);
  if (keyfile !== undefined && certificate === undefined && r.sources.certificate === undefined && !sshKey) {
    report.warning(r.sources.keyfile?.line, `[${section.name}] '${r.sources.keyfile?.key ?? 'keyfile'}' is ignored without a client certificate ('certificate')`);
  }
  if (verifySsl === false && relay !== undefined) report.warning(r.sources.verifySsl?.line, `[${section.name}] server certificates are not verified ('verify ssl = no')`);

  const maintainer = r.read('maintainer', (t) => (/^[^@\s]+@[^@\s]+$/.test(t.trim()) ? ok(t.trim()) : bad(`expected an e-mail address, got '${t}'`)));
  const verbosity = r.read('verbosity', (t) => positive(readInteger(t), 'a verbosity', 0)) ?? 1;
  const pullOverwrite = r.read('pullOverwrite', readBoolean) ?? false;
  const allowPageDeletion = r.read('allowPageDeletion', readBoolean) ?? false;

  // Backend-specific keys, globals first so that the section overrides them.
  const extra: Record<string, string> = {};
  for (const from of [globals, section]) {
    for (const entry of from.entries.values()) {
      if (!extraKeys.has(entry.key) && !isExtraKey(entry.key)) continue;
      const value = interpolate(entry.value, (k) => section.entries.get(k)?.value ?? globals.entries.get(k)?.value);
      if (!value.ok) report.problem(entry.line, `${label(from)} ${entry.written}: ${value.message}`);
      else {
        extra[entry.key] = value.value;
        if (SECRET_EXTRA_KEYS.includes(entry.key)) ctx.secrets?.add(value.value);
        r.sources[entry.key] = { file: ctx.file, line: entry.line, key: entry.written, section: from.name };
      }
    }
  }
  if (password === undefined && urlLogin !== undefined) password = urlLogin.password;
  if (extra['single stream archives'] !== undefined && asBoolean(extra['single stream archives']) === undefined) {
    report.problem(r.sources['single stream archives']?.line, `${label(section)} single stream archives: expected yes or no, got '${extra['single stream archives']}'`);
  }
  if (extra['max retries'] !== undefined && !readInteger(extra['max retries']).ok) {
    report.problem(r.sources['max retries']?.line, `${label(section)} max retries: expected a whole number, got '${extra['max retries']}'`);
  }

  if (report.problems.length > before || localPath === undefined || relay === undefined) return undefined;

  ctx.secrets?.add(password);
  ctx.secrets?.add(encryption.passphrase);
  const root = cacheDir ?? paths.defaultCache;
  const client: ClientConfig = {
    section: section.name,
    clientName,
    localPath,
    protocol: relay.protocol,
    directory: relay.directory,
    mode,
    refreshSec,
    lockTimeoutSec: lockTimeout === undefined ? DEFAULT_LOCK_TIMEOUT_SEC : lockTimeout,
    useMtime,
    checksumAlgorithm: checksumAlgorithm === undefined ? DEFAULT_CHECKSUM : checksumAlgorithm,
    checksumCache: checksumCache ?? true,
    cacheDir: root,
    dataDir: join(root, paths.baseName),
    filters,
    encryption,
    index,
    maxPageSizeBytes,
    pullOverwrite,
    allowPageDeletion,
    uploadMaxWaitSec,
    watch,
    pollIntervalSec,
    fullScanIntervalSec,
    retryOnError,
    verbosity,
    extra,
    sources: r.sources,
  };
  if (relay.host !== undefined) client.host = relay.host;
  if (relay.port !== undefined) client.port = relay.port;
  if (relay.scheme !== undefined) {
    client.scheme = relay.scheme;
    const written = extra['scheme'];
    if (written !== undefined && written.trim().toLowerCase() !== relay.scheme) {
      report.problem(r.sources['scheme']?.line, `${label(section)} ${r.sources['scheme']?.key ?? 'scheme'}: '${written}' disagrees with the address, which says '${relay.scheme}://'`);
    }
  }
  if (resolvedUser !== undefined) client.user = resolvedUser;
  if (password !== undefined) client.password = password;
  if (credentialFile !== undefined) client.credentialFile = credentialFile;
  if (pullerCount !== undefined) client.pullerCount = pullerCount;
  if (legacyTimestampFormat !== undefined) client.legacyTimestampFormat = legacyTimestampFormat;
  if (diskQuotaBytes !== undefined) client.diskQuotaBytes = diskQuotaBytes;
  if (priority === 'upload') client.priority = 'upload';
  if (maxPendingTransfers !== undefined) client.maxPendingTransfers = maxPendingTransfers;
  if (verifySsl !== undefined) client.verifySsl = verifySsl;
  if (sslVersion !== undefined) client.sslVersion = sslVersion;
  if (certificate !== undefined) client.certificate = certificate;
  if (keyfile !== undefined) client.keyfile = keyfile;
  if (maintainer !== undefined) client.maintainer = maintainer;
  return client;
}

/** Maps a hash name as written (Python spellings accepted) to a node:crypto name, or explains. */
function checksumName(text: string): Read<string> {
  const lower = text.trim().toLowerCase();
  const candidates = [lower, PYTHON_HASH_NAMES[lower], lower.replace(/^sha3_/, 'sha3-')].filter((s): s is string => s !== undefined);
  const available = getHashes().map((h) => h.toLowerCase());
  const name = candidates.find((c) => available.includes(c));
  if (name !== undefined) return ok(name);
  const close = closestMatch(lower, available);
  return bad(`unsupported hash algorithm '${text}'${close === undefined ? '' : `; did you mean '${close}'?`} (use yes for sha512, or no to disable checksums)`);
}

interface Relay {
  protocol: string;
  host?: string;
  port?: number;
  directory: string;
  /** The address's URL scheme where the protocol does not say it (s3 endpoints: http or https). */
  scheme?: 'http' | 'https';
}

/**
 * What a URL scheme in the address means next to the protocol the section names: the same
 * protocol, one that the scheme refines (`webdav` with `http://` is plain HTTP, `ftp` with
 * `ftps://` is FTPS, `s3` with `http://` an HTTP endpoint), or a conflict (a message).
 */
export function reconcileScheme(protocol: string, scheme: string): { protocol: string; scheme?: 'http' | 'https' } | { conflict: string } {
  const conflict = { conflict: `the address says '${scheme}://' but the protocol is '${protocol}'; remove one of them or make them agree` };
  if (scheme === protocol) return { protocol };
  if (['webdav', 'http', 'https'].includes(protocol)) {
    // why: 0.7 reads `webdav` as https; `webdavs` is the usual spelling of WebDAV over TLS.
    const tls = scheme === 'https' || scheme === 'webdavs' || scheme === 'webdav' ? true : scheme === 'http' ? false : undefined;
    if (tls === undefined || (protocol === 'http' && tls) || (protocol === 'https' && !tls)) return conflict;
    return { protocol: tls ? (protocol === 'webdav' ? 'webdav' : 'https') : 'http' };
  }
  if (protocol === 'ftp' || protocol === 'ftps') {
    if (scheme === 'ftps') return { protocol: 'ftps' };
    return conflict;
  }
  if (protocol === 's3') return scheme === 'http' || scheme === 'https' ? { protocol, scheme } : conflict;
  if (protocol === 'sftp') return scheme === 'ssh' ? { protocol } : conflict;
  if (protocol === 'googledrive' || protocol === 'google') return scheme === 'googledrive' || scheme === 'google' ? { protocol } : conflict;
  if (RCLONE_PROTOCOLS.includes(protocol)) return RCLONE_PROTOCOLS.includes(scheme) ? { protocol } : conflict;
  return conflict;
}

/** Splits an address into its parts (configuration.md C5). */
export function parseAddress(address: string): { scheme?: string; absolute?: string; host?: string; port?: string; path?: string } {
  const m = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(address);
  const scheme = m?.[1]?.toLowerCase();
  const rest = m === null ? address : (m[2] ?? '');
  const withScheme = scheme === undefined ? {} : { scheme };
  if (rest.startsWith('/')) return { ...withScheme, absolute: rest };
  const slash = rest.indexOf('/');
  const hostPort = slash < 0 ? rest : rest.slice(0, slash);
  const path = slash < 0 ? '' : rest.slice(slash + 1);
  const colon = hostPort.lastIndexOf(':');
  const out: { scheme?: string; host?: string; port?: string; path?: string } = { ...withScheme, host: hostPort };
  if (colon >= 0) {
    out.host = hostPort.slice(0, colon);
    out.port = hostPort.slice(colon + 1);
  }
  if (path !== '') out.path = path;
  return out;
}

/** `scheme://user:password@`, the usual URL way of giving a login. */
const ADDRESS_LOGIN = /^([a-z][a-z0-9+.-]*:\/\/)([^/@:\s]*):([^/@\s]*)@/i;

/**
 * The login written into a relay address (`scheme://user:password@host/...`) and the address
 * without it; undefined when there is none (`user@host` alone stays part of the host, as 0.7 reads it).
 */
function addressLogin(address: string): { user: string; password: string; rest: string } | undefined {
  const m = ADDRESS_LOGIN.exec(address);
  if (m === null) return undefined;
  return { user: percentDecoded(m[2] ?? ''), password: percentDecoded(m[3] ?? ''), rest: `${m[1] ?? ''}${address.slice(m[0].length)}` };
}

/** `%40` → `@` and so on; text with a malformed escape is taken as written. */
function percentDecoded(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

const stripSlashes = (p: string): string => p.replace(/^\/+/, '').replace(/\/+$/, '');
const joinRelay = (a: string, b: string): string => [stripSlashes(a), stripSlashes(b)].filter((s) => s !== '').join('/');

/** The relay of a section (configuration.md C5); `addressWithoutLogin` replaces the address when it held a login. */
function resolveRelay(r: SectionReader, section: RawSection, ctx: ResolveContext, report: Report, addressWithoutLogin?: string): Relay | undefined {
  const problem = (text: string): undefined => {
    report.problem(section.line, `[${section.name}] ${text}`);
    return undefined;
  };
  const addressFound = r.find(optionById('address'));
  const directoryFound = r.find(optionById('directory'));
  const protocolFound = r.find(optionById('protocol'));
  const portFound = r.read('port', (t) => {
    const n = readInteger(t);
    return n.ok && n.value >= 1 && n.value <= 65535 ? n : bad(`expected a port number between 1 and 65535, got '${t}'`);
  });
  const address = addressWithoutLogin ?? (addressFound === undefined ? undefined : expandHome(addressFound.value, ctx.home));
  const directory = directoryFound === undefined ? '' : expandHome(directoryFound.value, ctx.home);
  const parts = address === undefined || address === '' ? {} : parseAddress(address);

  let protocol = protocolFound?.value.trim().toLowerCase();
  if (protocolFound !== undefined && (protocol === '' || protocol === undefined)) return r.fail(protocolFound, 'empty value; expected a protocol name');
  let scheme: 'http' | 'https' | undefined;
  if (protocol !== undefined && parts.scheme !== undefined && addressFound !== undefined && PROTOCOLS.includes(protocol)) {
    // why: the scheme the user wrote in the address is honoured (it was dropped: `http://` became https).
    const reconciled = reconcileScheme(protocol, parts.scheme);
    if ('conflict' in reconciled) return r.fail(addressFound, reconciled.conflict);
    protocol = reconciled.protocol;
    scheme = reconciled.scheme;
  }
  if (protocol === undefined && parts.scheme === 'webdavs') protocol = 'https';
  protocol ??= parts.scheme;
  if (protocol === undefined) {
    // why: an absolute folder with no protocol at all is a local relay in the wizard's sense.
    if (address === undefined && directory === '') return problem("no relay defined: set 'protocol' and 'host address' (or 'relay path' for a folder)");
    return problem(`no protocol defined: add 'protocol = ...' or write the address as protocol://server/path`);
  }
  if (protocol === 'ssh') return protocolFound === undefined ? problem("protocol 'ssh' was never implemented; use 'sftp'") : r.fail(protocolFound, "protocol 'ssh' was never implemented; use 'sftp'");
  if (!PROTOCOLS.includes(protocol)) {
    const close = closestMatch(protocol, PROTOCOLS);
    const text = `unknown protocol '${protocol}'${close === undefined ? '' : `; did you mean '${close}'?`} (expected one of ${PROTOCOLS.join(', ')})`;
    return protocolFound === undefined ? problem(text) : r.fail(protocolFound, text);
  }

  if (protocol === 'file') {
    // why: configuration.md U-15: `host address = localhost` plus an absolute directory must stay absolute.
    const localHost = address === undefined || address === '' || /^localhost$/i.test(address) || parts.host === 'localhost';
    if (isAbsolute(directory) && (localHost || parts.absolute === undefined)) return { protocol, directory: resolve(directory) };
    if (parts.absolute !== undefined) return { protocol, directory: resolve(parts.absolute, stripSlashes(directory)) };
    if (localHost && directory !== '') return { protocol, directory: resolve(ctx.cwd, directory) };
    if (!localHost) return problem(`protocol 'file' needs a folder path, got address '${address}'; write 'relay path = /absolute/folder'`);
    return problem("no relay folder defined: add 'relay path = /path/to/relay/folder'");
  }

  const relay: Relay = { protocol, directory: '', ...(scheme === undefined ? {} : { scheme }) };
  // why: `sftp` and `s3` also have native backends (docs/backends.md): an address that is clearly a
  // host (a dot, an `@`, localhost, an IP, a numeric port), or no address for S3 (AWS), is read as
  // host[:port]/path; a single word stays an rclone remote name, as in escale 0.7.
  const hostLike = scheme !== undefined || (parts.host !== undefined && (/[.@]/.test(parts.host) || /^localhost$/i.test(parts.host) || /^\[?[0-9a-f:]+\]?$/i.test(parts.host)));
  const numericPort = parts.port !== undefined && /^\d+$/.test(parts.port);
  const native = (protocol === 'sftp' || protocol === 's3') && (hostLike || numericPort || (protocol === 's3' && (address === undefined || address === '')));
  if (native) {
    if (parts.absolute !== undefined) return problem(`protocol '${protocol}' needs a server name, got the path '${parts.absolute}'`);
    if (parts.host !== undefined && parts.host !== '') relay.host = parts.host;
  } else if (RCLONE_PROTOCOLS.includes(protocol)) {
    // rclone: the address is the remote name, optionally `remote:path` or `proto://remote/path`.
    let remote = parts.host;
    let path = parts.path ?? '';
    if (parts.scheme === undefined && address !== undefined && address.includes(':')) {
      const colon = address.indexOf(':');
      remote = address.slice(0, colon);
      path = address.slice(colon + 1);
    } else if (parts.port !== undefined && parts.port !== '') {
      return problem(`rclone remote '${address ?? ''}' cannot have a port`);
    }
    if (remote === undefined || remote === '') {
      if (!isAbsolute(directory) && parts.absolute === undefined) return problem("no rclone remote defined: add 'host address = <remote name>' (see 'rclone listremotes')");
      // why: an absolute path is a local path for rclone (`rclone` accepts plain folders).
      return { protocol, directory: parts.absolute ?? directory };
    }
    relay.host = remote;
    relay.directory = joinRelay(directory, path);
    // why: an on-the-fly remote (`rclone type = sftp`, ...) is built from host and port, so the `port` key must reach it.
    if (portFound !== undefined) relay.port = portFound;
    return relay;
  }

  if (protocol === 'googledrive' || protocol === 'google') {
    relay.host = parts.absolute ?? (address !== undefined && address !== '' ? resolve(ctx.cwd, address) : join(ctx.home, '.config', 'escale', '.GoogleDrive'));
    relay.directory = stripSlashes(directory);
    return relay;
  }

  // Network protocols (and native sftp/s3).
  if (NETWORK_PROTOCOLS.includes(protocol) || native) {
    if (!native && (parts.host === undefined || parts.host === '')) {
      return problem(parts.absolute !== undefined ? `protocol '${protocol}' needs a server name, got the path '${parts.absolute}'` : "no address defined: add 'host address = server.example.org'");
    }
    relay.host = parts.host;
    if (parts.port !== undefined) {
      const n = readInteger(parts.port);
      if (!n.ok || n.value < 1 || n.value > 65535) return problem(`bad port '${parts.port}' in address '${address ?? ''}'`);
      if (portFound !== undefined && portFound !== n.value) return problem(`the port in the address (${n.value}) differs from '${r.sources.port?.key ?? 'port'} = ${portFound}'`);
      relay.port = n.value;
    } else if (portFound !== undefined) relay.port = portFound;
    relay.directory = joinRelay(directory, parts.path ?? '');
  }
  return relay;
}

/** A secret value: its bytes, and the file it came from if any. */
interface SecretText {
  text: Buffer;
  file?: string;
}

/**
 * Decides whether a password/passphrase value is a file or a literal (configuration.md C6; fixes U-23):
 * a value from `secret file`/`credential`, or that contains `/` or `\`, starts with `~`, or ends in
 * `.passphrase`/`.credential`, is a file path (relative to the configuration folder) and must exist.
 * Any other value is a file only if a file of that name exists in the configuration folder;
 * otherwise it is the literal secret.
 */
export function secretValue(value: string, explicitFile: boolean, ctx: ResolveContext, configDir: string): Read<SecretText> {
  const looksLikePath = explicitFile || /[/\\]/.test(value) || value.startsWith('~') || /\.(passphrase|credential)$/i.test(value);
  const path = resolve(configDir, expandHome(value, ctx.home));
  const kind = ctx.fs.kind(path);
  // why: a file that exists but cannot be looked at is neither missing nor the literal secret.
  if (kind === 'inaccessible') return bad(inaccessible(ctx.fs, path));
  if (kind === 'file') {
    // why: a regular-looking file can still fail to read (EIO from /proc/self/mem, EACCES): a config problem, not a crash.
    try {
      return ok({ text: ctx.fs.read(path), file: path });
    } catch (error) {
      return bad(`cannot read '${path}': ${(error as Error).message}`);
    }
  }
  if (looksLikePath) {
    return bad(
      kind === 'missing'
        ? `file '${path}' does not exist (a value with '/', a leading '~' or a .passphrase/.credential ending is read as a file, never as the secret itself)`
        : `'${path}' is not a regular file`,
    );
  }
  return ok({ text: Buffer.from(value, 'utf8') });
}

/** Reads a credential file (configuration.md C6): `user:password` on the first line, or the password for a known user. */
export function readCredentialFile(content: string, user: string | undefined): Read<{ user?: string; password: string }> {
  const lines = content.split(/\r?\n/);
  if (lines.length > 1 && lines[lines.length - 1] === '') lines.pop();
  if (user === undefined) {
    const first = lines[0] ?? '';
    const colon = first.indexOf(':');
    if (colon <= 0) return bad("cannot read 'user:password' from the first line");
    return ok({ user: first.slice(0, colon), password: first.slice(colon + 1) });
  }
  // why: configuration.md U-14: the line must be exactly `<user>:`, not any line that merely starts with the name.
  const line = lines.find((l) => l.startsWith(`${user}:`));
  if (line !== undefined) return ok({ password: line.slice(user.length + 1) });
  if (lines.length === 1 && (lines[0] ?? '') !== '') return ok({ password: lines[0] ?? '' });
  return bad(`cannot find a line '${user}:<password>'`);
}

const FERNET_KEY = /^[A-Za-z0-9_-]{43}=$/;

function resolveEncryption(
  r: SectionReader,
  protocol: string | undefined,
  ctx: ResolveContext,
  configDir: string,
  sectionProblem: (text: string) => void,
): EncryptionConfig {
  const algorithm = r.read('encryption', (t): Read<EncryptionAlgorithm | null> => {
    const b = asBoolean(t);
    if (b !== undefined) return ok(b ? 'fernet' : null);
    const a = t.trim().toLowerCase();
    if (['fernet', 'blowfish', 'blowfish.cryptography', 'blowfish.blowfish', 'plain'].includes(a)) return ok(a as EncryptionAlgorithm);
    if (a.startsWith('native')) {
      // why: configuration.md U-11: elsewhere than the googledrive tool, `native` silently sent plaintext.
      return protocol === 'googledrive' || protocol === 'google' ? ok('native') : bad(`'native' encryption is only available with protocol googledrive; use fernet or blowfish`);
    }
    const close = closestMatch(a, ['fernet', 'blowfish', 'blowfish.cryptography', 'blowfish.blowfish', 'plain', 'native']);
    return bad(`unsupported encryption algorithm '${t}'${close === undefined ? '' : `; did you mean '${close}'?`} (expected yes, no, fernet, blowfish, blowfish.cryptography, blowfish.blowfish)`);
  });
  const out: EncryptionConfig = { algorithm: algorithm ?? null };
  const found = r.find(optionById('passphrase'));
  if (found !== undefined && found.value !== '') {
    const secret = secretValue(found.value, false, ctx, configDir);
    if (!secret.ok) r.fail(found, secret.problem);
    else {
      // why: the key is the file's exact bytes, a final newline included, as escale 0.7 reads it
      // (relay-format.md P5.2): stripping it (configuration.md U-24) would make Blowfish relays of 0.7 clients unreadable.
      // Fernet ignores the newline anyway.
      const key = secret.value.text;
      if (secret.value.file !== undefined) out.passphraseFile = secret.value.file;
      out.passphrase = Buffer.from(key);
      if (out.algorithm === 'fernet' && !FERNET_KEY.test(key.toString('latin1').replace(/\r?\n$/, ''))) {
        r.fail(found, `a fernet key is 32 bytes in URL-safe base64 (44 characters ending in '='); this ${secret.value.file === undefined ? 'value' : `file's content`} is not one`);
      }
    }
  }
  if (out.algorithm !== null && out.algorithm !== 'plain' && out.algorithm !== 'native' && out.passphrase === undefined && found?.value !== '' && r.sources.passphrase === undefined) {
    sectionProblem(`encryption '${out.algorithm}' needs a key: add 'passphrase = <path of the key file>'`);
  } else if (out.algorithm !== null && out.algorithm !== 'plain' && out.algorithm !== 'native' && found?.value === '') {
    r.fail(found, 'empty value; expected the encryption key or the path of a file holding it');
  }
  return out;
}
