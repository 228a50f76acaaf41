// `rclone serve webdav` (rclone 1.60) on 127.0.0.1 over a folder in the scratch folder, HTTP or
// HTTPS with a self-signed certificate, Basic auth. See docs/test-servers.md S4.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { ServerEnv } from './harness.js';
import type { DavServer } from './apache.js';

/** Executables the rclone harness needs. */
export const RCLONE_BINARIES = ['rclone'] as const;

/**
 * Starts `rclone serve webdav` in the foreground; the harness stops it with SIGTERM. Starting it
 * again in the same env with the same `port` serves the same folder (a restart).
 */
export async function startRcloneWebdav(env: ServerEnv, tls: boolean, port?: number): Promise<DavServer> {
  const user = 'escale';
  const password = 'rclone-secret-1618';
  const data = join(env.dir, 'data');
  await mkdir(data, { recursive: true });
  const listen = port ?? (await env.freePort());
  const cert = tls ? await env.certificate() : undefined;
  const args = ['serve', 'webdav', data, '--addr', `127.0.0.1:${listen}`, '--user', user, '--pass', password,
    '--config', join(env.dir, 'rclone.conf'), '--log-file', join(env.dir, 'rclone.log'),
    ...(cert ? ['--cert', cert.certFile, '--key', cert.keyFile] : [])];
  // why: AWS_CA_BUNDLE in this environment breaks rclone's http client set-up (docs/test-servers.md S1).
  const proc = env.spawn('rclone', args, { env: { AWS_CA_BUNDLE: undefined } });
  const scheme = tls ? 'https' : 'http';
  await env.waitForHttp(`${scheme}://127.0.0.1:${listen}/`, { process: proc });
  return { scheme, port: listen, user, password, root: data, process: proc, ...(cert ? { certFile: cert.certFile } : {}) };
}
