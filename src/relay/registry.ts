import { EscaleError } from '../core/errors.js';
import type { Backend } from './backend.js';
import { BUILT_BACKENDS } from './backends/all.js';
import type { BackendDescriptor, OpenContext, RelayTarget } from './backends/descriptor.js';
import { prefersRclone } from './backends/rclone/rclone-remote.js';

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
  const built = new Set(BUILT_BACKENDS.map((d) => d.name));
  return [...BUILT_BACKENDS, ...PLANNED.filter((d) => !built.has(d.name))];
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
  const descriptor = findBackend(target.protocol);
  // why: sftp and s3 each choose at open time: an rclone remote name goes through rclone (escale 0.7), a host is native.
  if (descriptor.rcloneRemoteAddress === true && await prefersRclone(target)) return findBackend('rclone').open(target, context);
  return descriptor.open(target, context);
}

/** Names of the protocols this build can open. */
export function availableProtocols(): string[] {
  return BUILT_BACKENDS.filter((d) => d.available).map((d) => d.name);
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
