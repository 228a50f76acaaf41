import { createHash, createHmac } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EscaleError } from '../../../core/errors.js';

/** How the server's host key is checked: against a known_hosts file or one configured fingerprint. */
export type HostKeyPolicy =
  | { readonly kind: 'known-hosts'; readonly file: string }
  | { readonly kind: 'fingerprint'; readonly fingerprint: string };

/** One key that known_hosts (or the configuration) accepts for a host. */
export interface KnownKey {
  readonly type: string;
  readonly blob: Buffer;
  /** `file:line`, for messages. */
  readonly where: string;
}

/** The OpenSSH SHA256 fingerprint of a public key blob: `SHA256:` and unpadded base64. */
export function sha256Fingerprint(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type written inside a public key blob (`ssh-ed25519`, `ssh-rsa`, ...). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  return length > 0 && length < 64 && blob.length >= 4 + length ? blob.subarray(4, 4 + length).toString('latin1') : 'unknown';
}

/** Normalises a configured fingerprint to `SHA256:<unpadded base64>`; throws Config when it is not that form. */
export function normaliseFingerprint(text: string): string {
  const trimmed = text.trim();
  const body = trimmed.replace(/^SHA256:/i, '').replace(/=+$/, '');
  if (!/^[A-Za-z0-9+/]{43}$/.test(body)) {
    throw new EscaleError('Config', `'host key' must be an SHA256 fingerprint like SHA256:${'A'.repeat(43)} (as ssh-keygen -lf prints it), not '${trimmed}'`, { key: 'host key' });
  }
  return `SHA256:${body}`;
}

/** The name known_hosts uses for a host: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/**
 * Reads the keys a known_hosts file accepts for `host:port` (plain, comma lists, `[host]:port`,
 * hashed `|1|salt|hash` and `*`/`?` patterns with `!` negation). Revoked keys are returned
 * separately; `@cert-authority` lines are ignored. A missing file knows no host.
 */
export async function readKnownHosts(file: string, host: string, port: number): Promise<{ keys: KnownKey[]; revoked: Buffer[] }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { keys: [], revoked: [] };
    throw new EscaleError('Config', `cannot read the known hosts file '${file}': ${(error as Error).message}`, { key: 'known hosts', cause: error });
  }
  const name = knownHostsName(host, port);
  const keys: KnownKey[] = [];
  const revoked: Buffer[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/\s+/);
    let marker: string | undefined;
    if (fields[0]?.startsWith('@')) marker = fields.shift();
    const [hosts, type, key] = fields;
    if (hosts === undefined || type === undefined || key === undefined) return;
    if (marker === '@cert-authority') return;
    if (!hostsMatch(hosts, name)) return;
    const blob = Buffer.from(key, 'base64');
    if (marker === '@revoked') revoked.push(blob);
    else keys.push({ type, blob, where: `${file}:${index + 1}` });
  });
  return { keys, revoked };
}

function hostsMatch(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (salt === undefined || hash === undefined) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64') === hash;
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    const glob = negated ? pattern.slice(1) : pattern;
    if (!globMatch(glob, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

function globMatch(glob: string, name: string): boolean {
  if (!/[*?]/.test(glob)) return glob.toLowerCase() === name.toLowerCase();
  const source = glob.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 'i').test(name);
}

/**
 * Decides whether the key a server offered is trusted. Returns undefined when it is; otherwise an
 * EscaleError (PermissionDenied) that explains a first contact (with the server's fingerprint and
 * how to trust it) or a mismatch (with both fingerprints). Never trusts silently.
 */
export async function checkHostKey(policy: HostKeyPolicy, host: string, port: number, offered: Buffer): Promise<EscaleError | undefined> {
  const fingerprint = sha256Fingerprint(offered);
  const type = keyTypeOf(offered);
  const where = `${host}:${port}`;
  if (policy.kind === 'fingerprint') {
    if (fingerprint === policy.fingerprint) return undefined;
    return new EscaleError('PermissionDenied',
      `REFUSED: the SSH host key of ${where} does not match the configured fingerprint: the server offers ${fingerprint} (${type}), ` +
      `the configuration expects ${policy.fingerprint}. The server may have been reinstalled, or someone may be intercepting the connection.`,
      { key: 'host key', hint: 'check the new key with the server administrator before changing the "host key" option' });
  }
  const { keys, revoked } = await readKnownHosts(policy.file, host, port);
  if (revoked.some((b) => b.equals(offered))) {
    return new EscaleError('PermissionDenied', `REFUSED: the SSH host key of ${where} (${fingerprint}) is marked @revoked in ${policy.file}`, { key: 'known hosts' });
  }
  if (keys.some((k) => k.blob.equals(offered))) return undefined;
  if (keys.length === 0) {
    const scan = port === 22 ? `ssh-keyscan ${host}` : `ssh-keyscan -p ${port} ${host}`;
    return new EscaleError('PermissionDenied',
      `the SSH host key of ${where} is not known yet (first contact): the server offers ${fingerprint} (${type}). ` +
      `Compare this fingerprint with the one the server administrator gives you (ssh-keygen -lf on the server's host key), then trust it ` +
      `either by adding "host key = ${fingerprint}" to the relay section or by adding the key to ${policy.file} (for example: ${scan} >> ${policy.file}, or one interactive ssh login).`,
      { key: 'host key', hint: `host key = ${fingerprint}` });
  }
  const expected = keys.map((k) => `${sha256Fingerprint(k.blob)} (${k.type}, ${k.where})`).join(', ');
  return new EscaleError('PermissionDenied',
    `REFUSED: the SSH host key of ${where} has CHANGED: the server offers ${fingerprint} (${type}), but ${policy.file} expects ${expected}. ` +
    'The server may have been reinstalled, or someone may be intercepting the connection.',
    { key: 'known hosts', hint: 'check the new key with the server administrator, then remove the old line (ssh-keygen -R) and trust the new key' });
}

/** The known key types for `host:port`, to ask the server for one of them first (as OpenSSH does). */
export async function preferredKeyTypes(policy: HostKeyPolicy, host: string, port: number): Promise<string[]> {
  if (policy.kind !== 'known-hosts') return [];
  const { keys } = await readKnownHosts(policy.file, host, port);
  return [...new Set(keys.map((k) => k.type))];
}
