import { EscaleError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { Backend } from './backend.js';
import { fileDescriptor } from './backends/file/file-descriptor.js';
import { ftpDescriptor } from './backends/ftp/ftp-descriptor.js';
import { memoryDescriptor } from './backends/memory/memory-descriptor.js';
import { rcloneDescriptor } from './backends/rclone/rclone-descriptor.js';
import { s3Descriptor } from './backends/s3/s3-descriptor.js';
import { sftpDescriptor } from './backends/sftp/sftp-descriptor.js';
import { webdavDescriptor } from './backends/webdav/webdav-descriptor.js';

/**
 * Where a relay is, in backend terms. The daemon maps a configuration section to this; backends
 * never see the configuration types. `protocol` is the name the user wrote (an alias included).
 */
export interface RelayTarget {
  readonly protocol: string;
  readonly host?: string;
  readonly port?: number;
  /** The URL scheme written in the address where the protocol does not tell it (s3: http or https). */
  readonly scheme?: 'http' | 'https';
  /** Folder on the relay (`host directory`); '' when unset. */
  readonly directory: string;
  readonly user?: string;
  readonly password?: string;
  readonly verifySsl?: boolean;
  readonly sslVersion?: string;
  readonly certificate?: string;
  readonly keyfile?: string;
  /** Backend-specific options (for example `rclone binary`), by configuration key. */
  readonly options: Readonly<Record<string, string>>;
}

/** What a backend may use while opening: cancellation and a logger. */
export interface OpenContext {
  readonly signal?: AbortSignal;
  readonly logger?: Logger;
  /** The caller promises to write nothing on the relay (`--dry-run`, `list-pending`): opening creates nothing either. */
  readonly readOnly?: boolean;
}

/** One kind of backend, by name and aliases, and how to open it. */
export interface BackendDescriptor {
  /** Canonical protocol name. */
  readonly name: string;
  /** Other protocol names that select this backend (escale 0.7 names included). */
  readonly aliases: readonly string[];
  /** One line for help texts and the wizard. */
  readonly describe: string;
  /** Whether this build can open it. */
  readonly available: boolean;
  /** Opens a backend on the target; throws an EscaleError (Config, NotFound, Unsupported, ...). */
  open(target: RelayTarget, context: OpenContext): Promise<Backend>;
}

// why: one import plus one line here is all a new backend needs; it replaces the planned entry of
// the same name below (an available descriptor always wins over a planned one).
const BUILT: readonly BackendDescriptor[] = [
  fileDescriptor,
  memoryDescriptor,
  ftpDescriptor,
  webdavDescriptor,
  // why: sftp and s3 each choose at open time: an rclone remote name goes through rclone (escale 0.7), a host is native.
  sftpDescriptor,
  s3Descriptor,
  rcloneDescriptor,
];

/** Protocols of escale 0.7 that this build does not open yet, with the backend that will serve them. */
const PLANNED: readonly BackendDescriptor[] = [
  planned('ftp', ['ftps'], 'FTP, or FTPS with explicit TLS'),
  planned('webdav', ['http', 'https'], 'WebDAV over HTTPS (webdav, https) or HTTP (http)'),
  // why: in escale 0.7 all these names load the same rclone class; host address is an rclone remote (configuration.md C5).
  planned('rclone', ['dropbox', 'googlecloud', 'onedrive', 'b2', 'hubic', 'swift', 'amazoncloud', 's3', 'sftp'], 'any rclone remote; host address names the remote'),
  planned('googledrive', ['google'], 'Google Drive through the drive command'),
  planned('ssh', [], 'SSH (not implemented in escale 0.7 either; use sftp)'),
];

/** Every descriptor this build knows, available ones first. */
export function backendDescriptors(): readonly BackendDescriptor[] {
  const built = new Set(BUILT.map((d) => d.name));
  return [...BUILT, ...PLANNED.filter((d) => !built.has(d.name))];
}

/** The descriptor a protocol name or alias selects (case-insensitive); throws Unsupported when none does. */
export function findBackend(protocol: string): BackendDescriptor {
  const wanted = protocol.trim().toLowerCase();
  const all = backendDescriptors();
  // why: a name beats an alias, so a native backend can claim a name an rclone alias also lists.
  const match = all.find((d) => d.available && d.name === wanted)
    ?? all.find((d) => d.available && d.aliases.includes(wanted))
    ?? all.find((d) => d.name === wanted || d.aliases.includes(wanted));
  if (match === undefined) {
    const known = all.flatMap((d) => [d.name, ...d.aliases]).sort().join(', ');
    throw new EscaleError('Unsupported', `unknown protocol '${protocol}'; known: ${known}`);
  }
  return match;
}

/** Opens the backend a target's protocol selects; throws Unsupported when this build lacks it. */
export async function openBackend(target: RelayTarget, context: OpenContext = {}): Promise<Backend> {
  return findBackend(target.protocol).open(target, context);
}

/** Names of the protocols this build can open. */
export function availableProtocols(): string[] {
  return BUILT.filter((d) => d.available).map((d) => d.name);
}

function planned(name: string, aliases: string[], describe: string): BackendDescriptor {
  return {
    name,
    aliases,
    describe,
    available: false,
    async open(target: RelayTarget): Promise<Backend> {
      throw new EscaleError('Unsupported', `protocol '${target.protocol}' is not available in this build; available: ${availableProtocols().join(', ')}`);
    },
  };
}
