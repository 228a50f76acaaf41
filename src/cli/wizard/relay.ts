/**
 * Relay questions of the wizard: the services of the simplified menu, reading an address
 * typed in advanced mode, and the rclone helper (configuration.md C12, C5). Every answer is checked by
 * the configuration reader itself (WizardState.problemOf), so the wizard cannot write a relay the
 * reader would refuse.
 */
import { isAbsolute } from 'node:path';
import { parseAddress } from '../../config/resolve.js';
import { PROTOCOLS, RCLONE_PROTOCOLS } from '../../config/schema.js';
import { findBackend } from '../../relay/registry.js';
import { normaliseFingerprint } from '../../relay/backends/sftp/sftp-host-key.js';
import { askText, askYesNo } from './ask.js';
import { keysOf, type WizardState } from './state.js';

/** How a relay is reached, which decides the questions asked about it. */
export type RelayKind = 'file' | 'ftp' | 'ftps' | 'webdav' | 'sftp' | 's3' | 'rclone';

/** One entry of the simplified menu. */
export interface Service {
  readonly label: string;
  /** Section name used when none was given (configuration.md C12). */
  readonly name: string;
  readonly kind: RelayKind;
}

/** The simplified menu (configuration.md C12): native backends, plus common rclone services. */
export const SERVICES: readonly Service[] = [
  { label: 'Amazon S3, or S3-compatible storage', name: 's3', kind: 's3' },
  { label: 'Backblaze B2 (requires rclone)', name: 'b2', kind: 'rclone' },
  { label: 'Dropbox (requires rclone)', name: 'dropbox', kind: 'rclone' },
  { label: 'FTP server', name: 'ftp', kind: 'ftp' },
  { label: 'FTPS server (FTP over TLS)', name: 'ftps', kind: 'ftps' },
  { label: 'Google Cloud Storage (requires rclone)', name: 'googlecloud', kind: 'rclone' },
  { label: 'Google Drive (requires rclone)', name: 'googledrive', kind: 'rclone' },
  { label: 'Local disk, or a mounted folder', name: 'file', kind: 'file' },
  { label: 'Microsoft OneDrive (requires rclone)', name: 'onedrive', kind: 'rclone' },
  { label: 'OpenStack Swift (requires rclone)', name: 'swift', kind: 'rclone' },
  { label: 'RClone, any remote (requires rclone)', name: 'rclone', kind: 'rclone' },
  { label: 'SSH/SFTP server', name: 'sftp', kind: 'sftp' },
  { label: 'WebDAV service', name: 'https', kind: 'webdav' },
  { label: 'Yandex.Disk (requires rclone)', name: 'yandex', kind: 'rclone' },
];

/** The relay folder offered by default on remote relays (configuration.md C12). */
export const DEFAULT_RELAY_FOLDER = 'Escale Repository';

/** Protocols that get `index = 1` from the wizard: all but ftp, ftps and file (configuration.md C12). */
export function wantsIndex(protocol: string): boolean {
  return !['ftp', 'ftps', 'file'].includes(protocol);
}

/** Why the wizard cannot configure `protocol`, or undefined when it can. */
export function protocolProblem(protocol: string): string | undefined {
  if (protocol === 'ssh') return "protocol 'ssh' was never implemented; use 'sftp'";
  if (!PROTOCOLS.includes(protocol)) return `unknown protocol '${protocol}'; expected one of ${PROTOCOLS.filter((p) => findBackend(p).available).join(', ')}`;
  if (!findBackend(protocol).available) return `this version cannot use protocol '${protocol}'; for Google Drive, use an rclone remote (protocol rclone)`;
  return undefined;
}

/** A relay read from an answer: the settings to write. */
export interface RelayAnswer {
  protocol: string;
  host?: string;
  port?: string;
  directory?: string;
}

/**
 * Reads an address typed in advanced mode (configuration.md C5): `protocol://server[:port][/path]`, a folder for
 * `file`, `remote[:path]` or `protocol://remote/path` for rclone remotes (the remote is the
 * address and the path the relay folder, not both: configuration.md U-17). `protocol` is the answer to the
 * protocol question when the address has no scheme.
 */
export function readAddress(text: string, protocol?: string): RelayAnswer | string {
  const parts = parseAddress(text);
  const chosen = parts.scheme ?? protocol;
  if (chosen === undefined) return 'no protocol';
  const problem = protocolProblem(chosen);
  if (problem !== undefined) return problem;
  if (chosen === 'file') {
    const folder = parts.absolute ?? (parts.scheme === undefined ? text : undefined);
    return folder !== undefined && isAbsolute(folder) ? { protocol: chosen, directory: folder } : "a 'file' relay is an absolute folder path, like /mnt/relay";
  }
  if (parts.absolute !== undefined) return `protocol '${chosen}' needs a server${RCLONE_PROTOCOLS.includes(chosen) ? ' or an rclone remote' : ''} name, not the path '${parts.absolute}'`;
  const out: RelayAnswer = { protocol: chosen };
  if (parts.scheme === undefined && RCLONE_PROTOCOLS.includes(chosen) && /^[^/:]+:/.test(text) && !/^[^/:]+:\d+(\/|$)/.test(text)) {
    // why: rclone's own `remote:path` spelling.
    const colon = text.indexOf(':');
    out.host = text.slice(0, colon);
    if (text.slice(colon + 1) !== '') out.directory = text.slice(colon + 1).replace(/^\/+/, '');
    return out;
  }
  if (parts.host !== undefined && parts.host !== '') out.host = parts.host;
  if (parts.port !== undefined) out.port = parts.port;
  if (parts.path !== undefined) out.directory = parts.path;
  return out;
}

/** The full address of a section for display: `protocol://address[:port]/folder`, or the folder of a `file` relay. */
export function displayAddress(protocol: string, address: string | undefined, port: string | undefined, directory: string | undefined): string {
  if (protocol === 'file') return directory ?? address ?? '';
  const folder = directory === undefined || directory === '' ? '' : `/${directory.replace(/^\/+/, '')}`;
  if (address !== undefined && /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\//.test(address)) return `${address}${folder}`;
  return `${protocol}://${address ?? ''}${port === undefined ? '' : `:${port}`}${folder}`;
}

/** The full address of a section as written so far. */
export function sectionAddress(state: WizardState, section: string): string {
  return displayAddress(state.get(section, 'protocol') ?? '', state.get(section, 'address'), state.get(section, 'port'), state.get(section, 'directory'));
}

/** Whether an sftp or s3 section goes to the native backend rather than rclone (docs/backends.md). */
export function isNative(state: WizardState, section: string): boolean {
  const protocol = state.get(section, 'protocol');
  if (protocol !== 'sftp' && protocol !== 's3') return false;
  const forced = state.get(section, 'rclone remote');
  if (forced !== undefined) return /^(no|false|off|0)$/i.test(forced.trim());
  const host = parseAddress(state.get(section, 'address') ?? '').host ?? '';
  return host === '' ? protocol === 's3' : /[.:/@]/.test(host) || host.toLowerCase() === 'localhost';
}

/** Whether a section's relay goes through rclone (and so needs the rclone helper, not credentials). */
export function usesRclone(state: WizardState, section: string): boolean {
  const protocol = state.get(section, 'protocol') ?? '';
  return RCLONE_PROTOCOLS.includes(protocol) && !isNative(state, section);
}

/** Asks for a folder on this machine that will be created if missing; returns its absolute path. */
export async function askFolder(state: WizardState, text: string, current: string | undefined, avoid?: string): Promise<string> {
  const answer = await askText(state.prompter, {
    text,
    required: true,
    ...(current === undefined ? {} : { default: current }),
    check: (a) => {
      const path = state.absolute(a);
      const kind = state.fs.kind(path);
      if (kind === 'file' || kind === 'other') return `'${path}' exists and is not a folder`;
      if (avoid !== undefined && path === avoid) return 'the relay folder cannot be the local repository itself';
      return undefined;
    },
  });
  const path = state.absolute(answer);
  state.planFolder(path);
  return path;
}

/**
 * Asks `host[:port][/path]` (or a URL of the same family) for ftp/ftps/webdav/sftp; returns the
 * protocol, `host[:port]` and the path, which goes in front of the relay folder.
 */
async function askHost(state: WizardState, section: string, text: string, protocol: string, schemes: readonly string[]): Promise<{ protocol: string; address: string; path: string }> {
  const read = (a: string): { protocol: string; address: string; path: string } => {
    const parts = parseAddress(a);
    return { protocol: parts.scheme ?? protocol, address: `${parts.host ?? ''}${parts.port === undefined ? '' : `:${parts.port}`}`, path: parts.path ?? '' };
  };
  const answer = await askText(state.prompter, {
    text,
    required: true,
    check: (a) => {
      const parts = parseAddress(a);
      if (parts.scheme !== undefined && !schemes.includes(parts.scheme)) return `expected a ${schemes.join(' or ')} address, got a ${parts.scheme} one`;
      if (parts.absolute !== undefined || parts.host === undefined || parts.host === '' || /\s/.test(a)) return 'expected a server name such as example.org or example.org:2121';
      if (parts.host.includes('@')) return 'give the server name only; the user name is asked next';
      const relay = read(a);
      const scratch = state.scratch();
      scratch.set(section, keysOf('protocol'), relay.protocol);
      scratch.set(section, keysOf('address'), relay.address);
      return state.problemOf(section, scratch);
    },
  });
  return read(answer);
}

/** Asks the relay folder, below `prefix` (the path part of the server address). */
async function askRelayFolder(state: WizardState, section: string, prefix: string): Promise<void> {
  const folder = await askText(state.prompter, { text: 'Path to relay repository', default: DEFAULT_RELAY_FOLDER });
  const directory = [prefix, folder].map((p) => p.replace(/^\/+|\/+$/g, '')).filter((p) => p !== '').join('/');
  // why: an empty value is the relay root; the key is left out rather than written empty (configuration.md U-7).
  if (directory !== '') state.set(section, 'directory', directory);
}

/** Asks a user name and a hidden password (configuration.md C12). */
async function askLogin(state: WizardState, address: string, passwordText: (user: string) => string, passwordRequired: boolean): Promise<{ user: string; password: string }> {
  const user = await askText(state.prompter, { text: `Username for '${address}'`, required: true, check: (a) => (a.includes(':') ? "a user name cannot contain ':'" : undefined) });
  const password = await askText(state.prompter, { text: passwordText(user), required: passwordRequired, secret: true });
  return { user, password };
}

/**
 * Asks the relay questions of one simplified-menu service and writes protocol, address, relay
 * folder and credentials into the (freshly emptied) section.
 */
export async function askServiceRelay(state: WizardState, section: string, service: Service, localPath: string): Promise<void> {
  const { kind } = service;
  if (kind === 'file') {
    const folder = await askFolder(state, 'Path to local relay repository', undefined, localPath);
    // why: configuration.md U-15: an absolute relay path and no `host address = localhost`, which made it relative.
    state.set(section, 'protocol', 'file');
    state.set(section, 'directory', folder);
    return;
  }
  if (kind === 'rclone') {
    state.set(section, 'protocol', 'rclone');
    await rcloneHelper(state, section, service.name === 'rclone' ? 'remote' : section);
    await askRelayFolder(state, section, '');
    return;
  }
  if (kind === 's3') {
    await askS3(state, section);
    return;
  }
  const family: Record<string, readonly string[]> = { ftp: ['ftp'], ftps: ['ftps'], webdav: ['https', 'http', 'webdav'], sftp: ['sftp'] };
  const text = kind === 'sftp' ? 'SSH server address' : 'Relay host address';
  const { protocol, address, path } = await askHost(state, section, text, kind === 'webdav' ? 'https' : kind, family[kind] ?? [kind]);
  state.set(section, 'protocol', protocol);
  state.set(section, 'address', address);
  // why: a one-word server name could be taken for an rclone remote (docs/backends.md); say which it is.
  if (kind === 'sftp' && !/[.:@]/.test(address) && address.toLowerCase() !== 'localhost') state.set(section, 'rclone remote', 'no');
  await askRelayFolder(state, section, path);
  if (kind === 'sftp') {
    await askSshLogin(state, section, address);
    return;
  }
  const login = await askLogin(state, address, (user) => `Password for '${user}@${address}'`, true);
  state.doc.set(section, ['secret file'], state.planCredential(section, login.user, login.password));
}

/** SFTP login (native backend): password, else a private key or the SSH agent; then the host key. */
async function askSshLogin(state: WizardState, section: string, address: string): Promise<void> {
  const login = await askLogin(state, address, (user) => `Password for '${user}@${address}' (leave empty to log in with an SSH key or the SSH agent)`, false);
  if (login.password !== '') state.doc.set(section, ['secret file'], state.planCredential(section, login.user, login.password));
  else state.set(section, 'user', login.user);
  await askSshKeyAndHost(state, section, address, login.password === '');
}

/** The private key (when no password is set) and the host key fingerprint of a native SFTP relay. */
export async function askSshKeyAndHost(state: WizardState, section: string, address: string, askKey: boolean): Promise<void> {
  if (askKey) {
    const existing = state.get(section, 'keyfile');
    const candidates = ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((n) => state.absolute(`~/.ssh/${n}`)).filter((p) => state.fs.kind(p) === 'file');
    const fallback = existing ?? candidates[0];
    const keyfile = await askText(state.prompter, {
      text: 'Private key file (leave empty to use the SSH agent)',
      ...(fallback === undefined ? {} : { default: fallback }),
      check: (a) => (state.fs.kind(state.absolute(a)) === 'file' ? undefined : `'${state.absolute(a)}' is not an existing file`),
    });
    if (keyfile !== '') state.set(section, 'keyfile', state.absolute(keyfile));
  }
  const existing = state.get(section, 'host key') ?? state.get(section, 'fingerprint');
  const fingerprint = await askText(state.prompter, {
    text: `Host key fingerprint of '${address}' (leave empty to check ~/.ssh/known_hosts)`,
    ...(existing === undefined ? {} : { default: existing }),
    help: "The SHA256:... text printed by 'ssh-keygen -lf' for the server's public host key. escale never trusts an unknown server: without a fingerprint, the server must already be in ~/.ssh/known_hosts (connect once with 'ssh').",
    check: (a) => {
      try {
        normaliseFingerprint(a);
        return undefined;
      } catch (error) {
        return (error as Error).message;
      }
    },
  });
  if (fingerprint !== '') state.doc.set(section, ['host key', 'fingerprint'], normaliseFingerprint(fingerprint));
}

const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** S3 (native backend): endpoint or AWS region, bucket, folder, access keys. */
async function askS3(state: WizardState, section: string): Promise<void> {
  state.set(section, 'protocol', 's3');
  const endpoint = await askText(state.prompter, {
    text: 'S3 endpoint URL (leave empty for Amazon Web Services)',
    check: (a) => (/^https?:\/\/[^\s/]+\/?$/.test(a) ? undefined : 'expected a URL such as https://s3.example.org or http://localhost:9000'),
  });
  if (endpoint !== '') state.set(section, 'endpoint', endpoint.replace(/\/$/, ''));
  else state.set(section, 'region', await askText(state.prompter, { text: 'Region', default: 'us-east-1', check: (a) => (/^[a-z0-9-]+$/.test(a) ? undefined : `'${a}' is not a region name such as eu-west-3`) }));
  const bucket = await askText(state.prompter, { text: 'Bucket', required: true, check: (a) => (BUCKET.test(a) ? undefined : 'a bucket name has 3 to 63 lower-case letters, digits, dots and hyphens') });
  const folder = await askText(state.prompter, { text: 'Folder in the bucket', default: 'escale' });
  state.set(section, 'directory', [bucket, folder.replace(/^\/+|\/+$/g, '')].filter((s) => s !== '').join('/'));
  const key = await askText(state.prompter, { text: 'Access key id (leave empty to use the AWS environment or profile)', check: (a) => (a.includes(':') ? "an access key id cannot contain ':'" : undefined) });
  if (key === '') return;
  const secret = await askText(state.prompter, { text: 'Secret access key', required: true, secret: true });
  state.doc.set(section, ['secret file'], state.planCredential(section, key, secret));
}

/**
 * The rclone helper (configuration.md C12): finds rclone, checks the remote and writes `host address = <remote>`.
 * It never installs anything (configuration.md U-17) and runs `rclone config` only when the user says yes.
 */
export async function rcloneHelper(state: WizardState, section: string, defaultRemote: string): Promise<void> {
  const { prompter, env } = state;
  let binary = state.get(section, 'rclone binary') ?? env.findExecutable('rclone');
  if (binary === undefined) {
    state.say("cannot find rclone; if you don't have it installed, leave the following field empty:");
    const answer = await askText(prompter, { text: 'Rclone binary', check: (a) => (state.fs.kind(state.absolute(a)) === 'file' ? undefined : `'${state.absolute(a)}' is not an existing file`) });
    if (answer !== '') {
      binary = state.absolute(answer);
      state.set(section, 'rclone binary', binary);
    }
  }
  let remote = state.get(section, 'address') ?? defaultRemote;
  if (binary === undefined) {
    state.say('This relay needs rclone: install it (https://rclone.org/install/), then create the remote with \'rclone config\'.');
    remote = await askText(prompter, { text: 'Rclone "remote"\'s name', default: remote, check: remoteNameProblem });
  } else {
    let remotes = await env.rcloneRemotes(binary);
    if (!remotes.includes(remote)) {
      if (remotes.length > 0) state.say(`rclone remotes: ${remotes.join(', ')}`);
      remote = await askText(prompter, { text: 'Rclone "remote"\'s name', default: remote, check: remoteNameProblem });
    }
    if (!remotes.includes(remote)) {
      state.say(`rclone has no remote '${remote}' yet (see https://rclone.org/docs/ for each storage system).`);
      if (env.runRcloneConfig !== undefined && (await askYesNo(prompter, "Run 'rclone config' now to create it?", false))) {
        state.say("Running 'rclone config'");
        const before = remotes;
        await env.runRcloneConfig(binary);
        remotes = await env.rcloneRemotes(binary);
        state.say('Back to escale.');
        const added = remotes.find((r) => !before.includes(r));
        if (!remotes.includes(remote) && added !== undefined) remote = added;
      }
      if (!remotes.includes(remote)) state.say(`Create the remote '${remote}' with 'rclone config' before running escale.`);
    }
  }
  state.set(section, 'address', remote);
}

function remoteNameProblem(answer: string): string | undefined {
  return /^[\w.@+-][\w.@ +-]*$/.test(answer) ? undefined : `'${answer}' is not an rclone remote name (letters, digits, '_', '-', '.', '+', '@', spaces)`;
}
