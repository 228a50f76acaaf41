/**
 * Every configuration option as data (name, aliases in priority order, type, default, secret?), and the
 * typed result of reading a configuration file. The reading itself lives in parse.ts (text),
 * resolve.ts (values and validation) and load.ts (files, environment).
 */
import type { LogLevel } from '../core/log.js';

/** How the text of an option is read (see values.ts for each rule). */
export type OptionType =
  | 'string'
  | 'path'
  | 'bool'
  | 'int'
  | 'number'
  | 'size'
  | 'list'
  | 'int-list'
  | 'patterns'
  | 'bool-or-number'
  | 'bool-or-string'
  | 'bool-or-path'
  | 'secret';

/** Where an option may be written. */
export type OptionScope = 'global' | 'client';

/** One option of the configuration file. */
export interface OptionSpec {
  /** Stable identifier used in ClientConfig.sources and in messages. */
  readonly id: string;
  /** Accepted keys, lower-case, in priority order: when several are present, the first one listed wins. */
  readonly keys: readonly string[];
  readonly type: OptionType;
  /** `global`: read only before the first section; `client`: per section, inherited from the globals. */
  readonly scope: OptionScope;
  /** Default as a human-readable text (for `--check` and docs); the typed default is applied in resolve.ts. */
  readonly default?: string;
  /** Never printed, always redacted. */
  readonly secret?: boolean;
  /** What the option does, one sentence (also what `--check` and error messages say is expected). */
  readonly doc: string;
  /** Set when the original parses the option but nothing uses it; a warning is emitted when it is set. */
  readonly noEffect?: boolean;
}

/** The options of the configuration file (configuration.md C1, C2, C9). */
export const OPTIONS: readonly OptionSpec[] = [
  // Global-only keys (configuration.md C1).
  { id: 'logFile', keys: ['log file'], type: 'path', scope: 'global', default: '<config dir>/<config base name>.log', doc: 'path of the main log file' },
  { id: 'logRotate', keys: ['log rotate'], type: 'int', scope: 'global', default: '3', doc: 'number of rotated log copies kept (rotation at 1 MiB)' },
  { id: 'logLevel', keys: ['log level'], type: 'string', scope: 'global', default: 'DEBUG', doc: 'level of the log file: DEBUG, INFO, WARNING, ERROR or CRITICAL' },
  { id: 'keepAlive', keys: ['keep alive'], type: 'bool-or-number', scope: 'global', default: 'no', doc: 'restart crashed clients: yes (no delay), no, or a delay in seconds' },
  // Per-client keys (configuration.md C2).
  { id: 'localPath', keys: ['local path', 'path'], type: 'path', scope: 'client', doc: 'folder to synchronize (required)' },
  { id: 'protocol', keys: ['protocol'], type: 'string', scope: 'client', doc: 'relay protocol (file, ftp, ftps, webdav, http, https, sftp, s3, rclone, ...)' },
  { id: 'address', keys: ['host address', 'relay address', 'remote address', 'address'], type: 'string', scope: 'client', doc: 'relay host, URL protocol://server[:port][/path], absolute folder or rclone remote' },
  {
    id: 'directory',
    keys: ['host directory', 'relay directory', 'remote directory', 'directory', 'relay dir', 'remote dir', 'host dir', 'dir', 'host path', 'relay path', 'remote path'],
    type: 'string',
    scope: 'client',
    default: '(relay root)',
    doc: 'repository folder on the relay',
  },
  { id: 'port', keys: ['port', 'host port', 'relay port', 'remote port'], type: 'int', scope: 'client', default: '(protocol default)', doc: 'relay port number' },
  // why: `username` is documented by the original but was never read there (configuration.md U-9); it comes last so
  // that files written for the original keep their meaning.
  { id: 'user', keys: ['user', 'auth user', 'host user', 'relay user', 'remote user', 'username'], type: 'string', scope: 'client', doc: 'user name on the relay' },
  { id: 'password', keys: ['password', 'secret', 'secret file', 'credential'], type: 'secret', scope: 'client', secret: true, doc: 'password, or credential file holding the password or user:password' },
  { id: 'refresh', keys: ['refresh'], type: 'bool-or-number', scope: 'client', default: '30', doc: 'maximum seconds between rounds (yes = 30; note that 1 means yes)' },
  { id: 'timestamp', keys: ['modification time', 'timestamp', 'mtime'], type: 'bool-or-string', scope: 'client', default: 'yes', doc: 'use modification times (a string is a legacy strftime format)' },
  { id: 'clientName', keys: ['client name', 'client'], type: 'string', scope: 'client', default: '(host name, or the section name on localhost)', doc: 'identity of this client on the relay' },
  { id: 'encryption', keys: ['encryption'], type: 'bool-or-string', scope: 'client', default: 'no', doc: 'yes (= fernet), no, fernet, blowfish, blowfish.cryptography, blowfish.blowfish, native or plain' },
  { id: 'passphrase', keys: ['passphrase', 'key'], type: 'secret', scope: 'client', secret: true, doc: 'encryption key, or path of a file holding it' },
  { id: 'pushOnly', keys: ['push only', 'read only'], type: 'bool', scope: 'client', default: 'no', doc: 'same as mode = upload' },
  { id: 'pullOnly', keys: ['pull only', 'write only'], type: 'bool', scope: 'client', default: 'no', doc: 'same as mode = download' },
  { id: 'mode', keys: ['mode', 'synchronization mode'], type: 'string', scope: 'client', default: 'shared', doc: 'upload, download, shared or conservative' },
  { id: 'sslVersion', keys: ['ssl version'], type: 'string', scope: 'client', default: '(TLS)', doc: 'SSLv23, TLS, TLSv1, TLSv1.1, TLSv1.2 (or TLSv1.3)' },
  { id: 'verifySsl', keys: ['verify ssl'], type: 'bool', scope: 'client', default: 'yes', doc: 'check the server certificate' },
  { id: 'certificate', keys: ['certfile', 'cert file', 'certificate'], type: 'path', scope: 'client', doc: 'PEM client certificate' },
  { id: 'keyfile', keys: ['keyfile', 'key file', 'private key'], type: 'path', scope: 'client', doc: 'PEM client private key' },
  { id: 'extensions', keys: ['file extension', 'file type'], type: 'list', scope: 'client', default: '(all)', doc: 'comma-separated file extensions to keep' },
  { id: 'include', keys: ['include', 'include files', 'pattern', 'filter'], type: 'patterns', scope: 'client', default: '(all)', doc: 'comma-separated name patterns of the files to keep' },
  { id: 'exclude', keys: ['exclude', 'exclude files'], type: 'patterns', scope: 'client', doc: 'comma-separated name patterns of the files to drop' },
  { id: 'includeDirs', keys: ['include directory', 'include directories'], type: 'patterns', scope: 'client', default: '(all)', doc: 'comma-separated relative-path patterns of the folders to keep' },
  { id: 'excludeDirs', keys: ['exclude directory', 'exclude directories'], type: 'patterns', scope: 'client', doc: 'comma-separated relative-path patterns of the folders to drop' },
  { id: 'diskQuota', keys: ['disk quota', 'quota'], type: 'size', scope: 'client', default: '(none)', doc: 'maximum space used on the relay, e.g. 2GB (no unit = MB)' },
  { id: 'maintainer', keys: ['maintainer', 'email'], type: 'string', scope: 'client', doc: 'e-mail address notified when the client aborts' },
  { id: 'lockTimeout', keys: ['lock timeout'], type: 'bool-or-number', scope: 'client', default: '259200 (3 days)', doc: "seconds after which owner-less locks are cleared, by the relay's clock (yes = 3 days, no = never)" },
  { id: 'pullerCount', keys: ['puller count', 'pullers'], type: 'int', scope: 'client', default: '(unset)', doc: 'number of downloading clients' },
  { id: 'checksum', keys: ['checksum', 'hash algorithm'], type: 'bool-or-string', scope: 'client', default: 'sha512', doc: 'yes (= sha512), no, or a hash algorithm name' },
  { id: 'checksumCache', keys: ['checksum cache'], type: 'bool-or-path', scope: 'client', default: 'yes', doc: 'keep local checksums on disk (yes, no, or a file path)' },
  { id: 'index', keys: ['index', 'compact'], type: 'bool-or-string', scope: 'client', default: 'no', doc: 'index-based relay: yes, no, or topdir[:N]' },
  { id: 'maxPageSize', keys: ['maxpagesize', 'maxarchivesize'], type: 'size', scope: 'client', default: '200 MB', doc: 'size at which an update archive is closed, e.g. 200MB (no unit = MB)' },
  { id: 'minSplitSize', keys: ['min split size', 'split size', 'split'], type: 'int', scope: 'client', noEffect: true, doc: 'unused (kept for compatibility)' },
  { id: 'maxPendingTransfers', keys: ['max pending transfers'], type: 'int', scope: 'client', doc: 'skip uploading while this many files wait on the relay' },
  { id: 'retryOnError', keys: ['retryonerror', 'retry on error'], type: 'int-list', scope: 'client', doc: 'extra error numbers after which the client waits and retries' },
  { id: 'pullOverwrite', keys: ['pull overwrite'], type: 'bool', scope: 'client', default: 'no', doc: 'index mode: trust incoming updates without comparing with local files' },
  { id: 'verbosity', keys: ['verbosity', 'verbosity level'], type: 'int', scope: 'client', default: '1', doc: '0 silences some debug lines; more than 1 logs every file' },
  { id: 'allowPageDeletion', keys: ['allow page deletion', 'page deletion'], type: 'bool', scope: 'client', default: 'no', doc: 'index mode: allow deleting an index page whose files are all gone' },
  { id: 'priority', keys: ['priority'], type: 'string', scope: 'client', default: '(download first)', doc: 'upload (or push) lets uploads take priority' },
  { id: 'cacheDir', keys: ['cache', 'cache dir'], type: 'path', scope: 'client', default: '(see documentation)', doc: 'absolute folder for persistent data' },
  // Keys read by one component (configuration.md C9) that are typed here rather than passed through.
  { id: 'uploadMaxWait', keys: ['upload max wait'], type: 'number', scope: 'client', default: '600', doc: 'seconds an upload phase keeps waiting for postponed pages' },
  // Idle cost and latency (issue 14).
  { id: 'watch', keys: ['watch'], type: 'bool', scope: 'client', default: 'yes', doc: 'follow local changes through file-system events (no: scan the folder at every round)' },
  { id: 'pollInterval', keys: ['poll interval'], type: 'number', scope: 'client', default: '2', doc: "seconds between two looks at the relay's change marker while idle" },
  { id: 'fullScanInterval', keys: ['full scan interval'], type: 'number', scope: 'client', default: '3600', doc: 'seconds between two full scans of the local folder while file-system events are followed' },
];

/**
 * Backend-specific keys (configuration.md C9) passed through in ClientConfig.extra without interpretation here.
 * The relay registry may accept more through LoadOptions.extraKeys.
 */
export const EXTRA_KEYS: readonly string[] = [
  'rclone binary', 'drive binary', 'max retries', 'ca file', 'max connections', 'timeout',
  // native sftp (docs/backends.md)
  'known hosts', 'host key', 'fingerprint', 'key passphrase', 'ssh agent',
  // native s3
  'endpoint', 'scheme', 'region', 'bucket', 'profile', 'path style', 'conditional writes', 'part size', 's3 quirks',
  // rclone: remote choice and on-the-fly remotes (any `rclone <parameter>` key is accepted too)
  'rclone remote', 'rclone type', 'rclone config',
  // index relays (docs/index-relays.md)
  'single stream archives',
];

/** Extra keys whose values are secrets (registered for redaction, shown as ***). */
export const SECRET_EXTRA_KEYS: readonly string[] = ['key passphrase', 'rclone pass', 'rclone password', 'rclone secret_access_key', 'rclone key'];

/** Whether `key` is a backend-specific key: a listed one, or `rclone <parameter>` for on-the-fly rclone remotes. */
export function isExtraKey(key: string): boolean {
  return EXTRA_KEYS.includes(key) || /^rclone [a-z0-9_]+$/.test(key);
}

/** Keys written by the original's wizard but never read at run time: accepted silently (configuration.md C9). */
export const IGNORED_KEYS: readonly string[] = ['client count', 'homogeneous clients', 'upload count'];

/** The section name the original reserves (configuration.md C1). */
export const RESERVED_SECTION = 'error';

/** Protocols handled through rclone (the address is the rclone remote name). */
export const RCLONE_PROTOCOLS: readonly string[] = ['rclone', 'amazoncloud', 'b2', 'dropbox', 'googlecloud', 'hubic', 'onedrive', 'sftp', 'swift', 's3'];

/** Protocols that need a host name. */
export const NETWORK_PROTOCOLS: readonly string[] = ['ftp', 'ftps', 'webdav', 'http', 'https'];

/** Every accepted protocol name (lower case). `ssh` is rejected with a hint (never implemented). */
export const PROTOCOLS: readonly string[] = ['file', ...NETWORK_PROTOCOLS, 'googledrive', 'google', ...RCLONE_PROTOCOLS];

/** The four synchronization modes (configuration.md C8). */
export type SyncMode = 'upload' | 'download' | 'shared' | 'conservative';

/** Encryption algorithms (configuration.md C6); null means no encryption. */
export type EncryptionAlgorithm = 'fernet' | 'blowfish' | 'blowfish.cryptography' | 'blowfish.blowfish' | 'native' | 'plain';

/**
 * A file or folder name pattern (configuration.md C4). `regex` matches at the start of the name only (like Python's
 * `re.match`, not a full match): `*.txt` also keeps `a.txt.bak` and `doc` keeps `documents`.
 * Wildcard form: `.` is literal, `*` is any sequence, every other character keeps its regex meaning.
 * Regex form: text starting with `/` (one trailing `/` optional). File patterns are tested against the
 * base name, folder patterns against the path relative to the repository root with `/` separators.
 */
export interface Pattern {
  /** The pattern as written in the file. */
  readonly source: string;
  readonly kind: 'wildcard' | 'regex';
  readonly regex: RegExp;
}

/** File and folder filters of a client (configuration.md C4, sync-rules.md R2.2, R2.3). */
export interface Filters {
  /** Extensions to keep, without leading dot, case-sensitive; empty = all. */
  extensions: string[];
  include: Pattern[];
  exclude: Pattern[];
  includeDirs: Pattern[];
  excludeDirs: Pattern[];
}

/** Encryption settings; `passphrase` holds the raw key material and is a secret. */
export interface EncryptionConfig {
  algorithm: EncryptionAlgorithm | null;
  /** Key bytes: the content of the passphrase file (one trailing newline removed) or the literal value. */
  passphrase?: Buffer;
  /** Absolute path of the passphrase file when the key came from a file. */
  passphraseFile?: string;
}

/** Index-based relay settings (relay-format.md P4.1). */
export type IndexConfig = { enabled: false } | { enabled: true; pages: 'single' } | { enabled: true; pages: 'topdir'; depth: number };

/** Where a resolved setting came from, so that later errors can point at the line. */
export interface SettingSource {
  file: string;
  line: number;
  /** The key as written in the file (original case). */
  key: string;
  /** The section it was read from (`DEFAULT` for the global part). */
  section: string;
}

/** One client (one `[section]`), fully resolved and validated. */
export interface ClientConfig {
  section: string;
  clientName: string;
  /** Absolute path of the local repository (need not exist yet). */
  localPath: string;
  /** Canonical lower-case protocol name, as written. */
  protocol: string;
  /** Relay server name, or the rclone remote name for rclone protocols. */
  host?: string;
  port?: number;
  /** The URL scheme of the address where the protocol does not tell it (s3 endpoints: http or https). */
  scheme?: 'http' | 'https';
  /**
   * Relay directory. `file`: absolute folder of the relay. Others: path relative to the login or
   * remote root, without leading `/` ('' = root).
   */
  directory: string;
  user?: string;
  /** Secret. */
  password?: string;
  /** Absolute path of the credential file the password came from, if any. */
  credentialFile?: string;
  mode: SyncMode;
  pullerCount?: number;
  refreshSec: number;
  /** Age in seconds after which owner-less locks are cleared; null when disabled. */
  lockTimeoutSec: number | null;
  useMtime: boolean;
  /** strftime format given as `timestamp = <format>`, only used to read legacy placeholders. */
  legacyTimestampFormat?: string;
  /** Hash algorithm name for node:crypto, or null when checksums are disabled. */
  checksumAlgorithm: string | null;
  /** true: persistent cache at the default place; false: in memory only; string: absolute file path. */
  checksumCache: boolean | string;
  /** Absolute root of persistent data (configuration.md C10). */
  cacheDir: string;
  /** Absolute folder of this configuration's persistent data: `<cacheDir>/<config base name>`. */
  dataDir: string;
  filters: Filters;
  diskQuotaBytes?: number;
  encryption: EncryptionConfig;
  index: IndexConfig;
  maxPageSizeBytes: number;
  priority?: 'upload';
  pullOverwrite: boolean;
  allowPageDeletion: boolean;
  uploadMaxWaitSec: number;
  /** Follow local changes through file-system events (`watch`, default true). */
  watch: boolean;
  /** Seconds between two polls of the relay's change marker while idle (`poll interval`). */
  pollIntervalSec: number;
  /** Seconds between two full scans of the local folder while events are followed (`full scan interval`). */
  fullScanIntervalSec: number;
  maxPendingTransfers?: number;
  /** Extra error numbers that make the client wait and retry (sync-rules.md R10). */
  retryOnError: number[];
  /** undefined means verify (the default); false only when `verify ssl = no` is written. */
  verifySsl?: boolean;
  sslVersion?: string;
  /** Absolute path of the PEM client certificate. */
  certificate?: string;
  /** Absolute path of the PEM client key. */
  keyfile?: string;
  maintainer?: string;
  verbosity: number;
  /** Backend-specific keys (lower-case key -> raw value), e.g. `rclone binary`, `max retries`. */
  extra: Record<string, string>;
  /** Origin of every setting that was written in the file, by option id (or extra key). */
  sources: Record<string, SettingSource>;
}

/** Settings that apply to the whole process (configuration.md C1). */
export interface GlobalConfig {
  /** Absolute path of the main log file. */
  logFile: string;
  logRotate: number;
  /** Level of the log file. */
  logLevel: LogLevel;
  /** Delay before restarting a crashed client, in seconds; null: no restart. */
  keepAliveSec: number | null;
  sources: Record<string, SettingSource>;
}

/** Finds the option that accepts `key` (lower-case), if any. */
export function optionForKey(key: string): OptionSpec | undefined {
  return OPTIONS.find((o) => o.keys.includes(key));
}

/** Finds an option by id; throws on an unknown id (a bug). */
export function optionById(id: string): OptionSpec {
  const option = OPTIONS.find((o) => o.id === id);
  if (option === undefined) throw new Error(`unknown option id ${id}`);
  return option;
}
