import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EscaleError } from '../../../core/errors.js';
import type { RelayTarget } from '../descriptor.js';
import type { RcloneBackendOptions } from './rclone-backend.js';

/** Option keys of the rclone backend itself; every other `rclone <name>` option is a parameter of an on-the-fly remote. */
const OWN_KEYS = new Set(['rclone binary', 'rclone remote', 'rclone config', 'rclone type']);

/** rclone parameters that hold secrets, by remote type; `obscure` ones must be passed through `rclone obscure`. */
const SECRET_PARAMETERS: Readonly<Record<string, Readonly<Record<string, 'obscure' | 'plain'>>>> = {
  sftp: { pass: 'obscure', key_file_pass: 'obscure', key_pem: 'plain' },
  ftp: { pass: 'obscure' },
  webdav: { pass: 'obscure', bearer_token: 'plain' },
  s3: { secret_access_key: 'plain', session_token: 'plain' },
  swift: { key: 'plain' },
  b2: { key: 'plain' },
};

/** The rclone executable a target asks for (`rclone binary`, default `rclone` on PATH). */
export function rcloneBinary(target: RelayTarget): string {
  return target.options['rclone binary'] ?? 'rclone';
}

/** Runs rclone with arguments (and stdin) and returns stdout; rejects with the exit error, whose message ends with rclone's stderr. */
function rcloneOutput(binary: string, args: string[], stdin = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(binary, args, { timeout: 30_000 }, (error, stdout, stderr) => {
      if (error === null) resolve(stdout);
      else reject(Object.assign(error, { stderr: String(stderr).trim() }));
    });
    // why: rclone may exit before reading its input; the EPIPE must not crash the process (its exit status reports it).
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(stdin);
  });
}

/**
 * Names of the remotes in the user's rclone configuration (`rclone listremotes`); empty when rclone
 * is not installed (a single word is then a host name). A failing rclone (a broken configuration
 * file, one it cannot read) is a Config error with rclone's own message, never an empty list.
 */
export async function rcloneRemotes(binary: string, configFile?: string): Promise<string[]> {
  let out: string;
  try {
    out = await rcloneOutput(binary, ['listremotes', ...(configFile !== undefined ? ['--config', configFile] : [])]);
  } catch (error) {
    const failure = error as NodeJS.ErrnoException & { stderr?: string };
    if (failure.code === 'ENOENT') return [];
    const detail = failure.stderr !== undefined && failure.stderr !== '' ? failure.stderr.split('\n').slice(-3).join(' ') : failure.message;
    throw new EscaleError('Config', `cannot list the rclone remotes ('${binary} listremotes' failed: ${detail}); fix the rclone configuration, or set 'rclone remote = no' to use the address as a host name`, {
      key: 'rclone remote',
      cause: error,
    });
  }
  return out.split('\n').map((l) => l.trim().replace(/:$/, '')).filter((l) => l !== '');
}

function yes(text: string | undefined): boolean | undefined {
  if (text === undefined) return undefined;
  const t = text.trim().toLowerCase();
  if (['yes', 'true', 'on', '1'].includes(t)) return true;
  if (['no', 'false', 'off', '0'].includes(t)) return false;
  throw new EscaleError('Config', `'rclone remote' must be yes or no, not '${text}'`, { key: 'rclone remote' });
}

/**
 * Whether `protocol = sftp` or `s3` goes through rclone (escale 0.7 behaviour, configuration.md
 * C5, docs/backends.md) rather than the native backend: `rclone remote = yes/no` decides when given; otherwise
 * an address that could be a remote name (no dot, colon, slash or `@`, not `localhost`) and
 * that `rclone listremotes` lists. A host name, an IP address or a URL is native.
 */
export async function prefersRclone(target: RelayTarget): Promise<boolean> {
  const forced = yes(target.options['rclone remote']);
  if (forced !== undefined) return forced;
  if (target.options['rclone type'] !== undefined) return true;
  const host = target.host?.trim();
  if (host === undefined || host === '' || /[.:/@]/.test(host) || host.toLowerCase() === 'localhost') return false;
  return (await rcloneRemotes(rcloneBinary(target), target.options['rclone config'])).includes(host);
}

function quote(value: string): string {
  // why: rclone connection strings quote a value with "..." and double any embedded quote.
  return `"${value.replace(/"/g, '""')}"`;
}

/**
 * rclone backend options for a target: a named remote (`host address` = remote name from the
 * user's rclone config), or, with `rclone type`, an on-the-fly remote `:type,key="value",...`
 * built from host, port, user, password, keyfile and every `rclone <parameter>` option. Secrets
 * never go into argv (process titles are world-readable): they are passed as RCLONE_<TYPE>_<KEY>
 * environment variables, obscured with `rclone obscure` where rclone expects that.
 */
export async function rcloneOptionsFrom(target: RelayTarget): Promise<RcloneBackendOptions> {
  const binary = rcloneBinary(target);
  const configFile = target.options['rclone config'];
  const maxText = target.options['max connections'];
  const maxConnections = maxText === undefined ? undefined : Number(maxText);
  const common = {
    binary,
    directory: target.directory.replace(/^\/+/, ''),
    ...(configFile !== undefined ? { configFile } : {}),
    ...(maxConnections !== undefined && Number.isFinite(maxConnections) && maxConnections > 0 ? { maxConnections } : {}),
  };
  const type = target.options['rclone type']?.trim().toLowerCase();
  if (type === undefined) {
    const remote = target.host?.trim() ?? '';
    if (remote === '' || /[:/\\]/.test(remote)) {
      throw new EscaleError('Config', `${target.protocol} relay: the host address must name an rclone remote (see 'rclone listremotes'), not '${remote}'`, {
        key: 'host address', hint: "or set 'rclone type' (for example sftp) to build the remote from host, user and password",
      });
    }
    return { ...common, remote };
  }
  if (!/^[a-z0-9]+$/.test(type)) throw new EscaleError('Config', `'rclone type' must be an rclone backend name, not '${type}'`, { key: 'rclone type' });
  const params: Record<string, string> = {};
  const host = target.host?.trim();
  const port = target.port === undefined ? undefined : String(target.port);
  // why: the scheme of the address, or the protocol `http`, is honoured by the remotes built from a URL.
  const httpScheme = target.scheme ?? (target.protocol.toLowerCase() === 'http' ? 'http' : 'https');
  switch (type) {
    case 'sftp': {
      if (host !== undefined) params.host = host;
      if (port !== undefined) params.port = port;
      if (target.user !== undefined) params.user = target.user;
      if (target.password !== undefined) params.pass = target.password;
      if (target.keyfile !== undefined) params.key_file = target.keyfile;
      const passphrase = target.options['key passphrase'];
      if (passphrase !== undefined) params.key_file_pass = passphrase;
      // why: rclone's sftp backend checks host keys only when given a known_hosts file.
      const known = target.options['known hosts'] ?? join(homedir(), '.ssh', 'known_hosts');
      if (existsSync(known)) params.known_hosts_file = known;
      break;
    }
    case 'ftp':
      if (host !== undefined) params.host = host;
      if (port !== undefined) params.port = port;
      if (target.user !== undefined) params.user = target.user;
      if (target.password !== undefined) params.pass = target.password;
      if (target.protocol.toLowerCase() === 'ftps') params.explicit_tls = 'true';
      break;
    case 'webdav':
      if (host !== undefined) params.url = /:\/\//.test(host) ? host : `${httpScheme}://${host}${port === undefined ? '' : `:${port}`}/`;
      if (target.user !== undefined) params.user = target.user;
      if (target.password !== undefined) params.pass = target.password;
      params.vendor = 'other';
      break;
    case 's3':
      params.provider = 'Other';
      if (host !== undefined) params.endpoint = /:\/\//.test(host) ? host : `${httpScheme}://${host}${port === undefined ? '' : `:${port}`}`;
      if (target.user !== undefined) params.access_key_id = target.user;
      if (target.password !== undefined) params.secret_access_key = target.password;
      break;
    default:
      break;
  }
  for (const [key, value] of Object.entries(target.options)) {
    if (!key.startsWith('rclone ') || OWN_KEYS.has(key)) continue;
    params[key.slice('rclone '.length).trim().replace(/[\s-]+/g, '_')] = value;
  }
  const secretKinds = SECRET_PARAMETERS[type] ?? {};
  const env: Record<string, string> = {};
  const secrets: string[] = [];
  const visible: string[] = [];
  for (const [key, value] of Object.entries(params)) {
    const kind = secretKinds[key] ?? (/pass|secret|token|key$/.test(key) && key !== 'key_file' ? 'plain' : undefined);
    if (kind === undefined) {
      visible.push(`${key}=${quote(value)}`);
      continue;
    }
    const passed = kind === 'obscure' ? (await rcloneOutput(binary, ['obscure', '-'], value).catch((error: unknown) => {
      throw new EscaleError('Config', `cannot run '${binary} obscure': install rclone or set the 'rclone binary' option`, { key: 'rclone binary', cause: error });
    })).trim() : value;
    env[`RCLONE_${type.toUpperCase()}_${key.toUpperCase()}`] = passed;
    secrets.push(value, passed);
  }
  const remote = `:${type}${visible.length > 0 ? `,${visible.join(',')}` : ''}`;
  return { ...common, remote, env, secrets, display: `:${type}${host !== undefined ? `@${host}` : ''}` };
}
