// `rclone serve sftp` on 127.0.0.1 serving a scratch folder, with its own host key, one user
// with a password and an authorized key. See docs/test-servers.md S6. Differences
// from OpenSSH: plain SFTP rename overwrites, and neither posix-rename@openssh.com nor
// hardlink@openssh.com is offered.
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type ServerEnv, type ServerProcess } from './harness.js';

/** Executables the rclone serve sftp harness needs. */
export const RCLONE_SFTP_BINARIES = ['rclone', 'ssh-keygen'] as const;

/** A running `rclone serve sftp` and how to log in. */
export interface RcloneSftpServer {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly keyFile: string;
  readonly knownHosts: string;
  readonly fingerprint: string;
  /** The folder served (the SFTP root). */
  readonly root: string;
  /** The `rclone serve sftp` process. */
  readonly process: ServerProcess;
}

/** Starts `rclone serve sftp` in the foreground; the harness stops it with SIGTERM. */
export async function startRcloneSftp(env: ServerEnv): Promise<RcloneSftpServer> {
  const keygen = env.binaries['ssh-keygen'] ?? 'ssh-keygen';
  await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'host', '-f', join(env.dir, 'host_ed25519')]);
  await run(keygen, ['-q', '-t', 'ed25519', '-N', '', '-C', 'client', '-f', join(env.dir, 'client_ed25519')]);
  const authorized = await env.writeFile('authorized_keys', await readFile(join(env.dir, 'client_ed25519.pub'), 'utf8'));
  const root = join(env.dir, 'served');
  await mkdir(root);
  const port = await env.freePort();
  const user = 'escale';
  const password = 'rclone-Sftp-Secret-577';
  const proc = env.spawn('rclone', ['serve', 'sftp', root, '--addr', `127.0.0.1:${port}`, '--user', user, '--pass', password,
    '--authorized-keys', authorized, '--key', join(env.dir, 'host_ed25519')], {
    name: 'rclone serve sftp',
    // why: AWS_CA_BUNDLE (set on this machine kind) breaks rclone 1.60; RCLONE_CONFIG=/dev/null keeps the user's remotes out.
    env: { RCLONE_CONFIG: '/dev/null', AWS_CA_BUNDLE: undefined },
  });
  await env.waitForPort(port, { process: proc });
  const hostPublicKey = (await readFile(join(env.dir, 'host_ed25519.pub'), 'utf8')).trim().split(' ').slice(0, 2).join(' ');
  const knownHosts = await env.writeFile('known_hosts', `[127.0.0.1]:${port} ${hostPublicKey}\n`);
  const fingerprint = (await run(keygen, ['-l', '-E', 'sha256', '-f', join(env.dir, 'host_ed25519.pub')])).split(' ')[1] ?? '';
  return { port, user, password, keyFile: join(env.dir, 'client_ed25519'), knownHosts, fingerprint, root, process: proc };
}
