// s3rver 3.7.1 (npm devDependency), an S3 emulator, run as its own node process on 127.0.0.1 with
// one bucket, over HTTP or HTTPS (self-signed). See docs/test-servers.md S7. Quirks:
// it needs `--openssl-legacy-provider` (it encrypts continuation tokens with DES, so paged
// listings fail with 500 ERR_OSSL_EVP_UNSUPPORTED without it), it ignores `If-None-Match`, and
// it stores aws-chunked stream bodies verbatim (the backend sends checksums only when required).
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { ServerEnv, ServerProcess } from './harness.js';

/** A running s3rver and how to reach it. */
export interface S3rverServer {
  readonly endpoint: string;
  readonly bucket: string;
  /** s3rver accepts this fixed key pair. */
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The self-signed certificate (HTTPS only). */
  readonly certFile?: string;
  /** s3rver's data folder: object `KEY` of bucket `B` is the file `B/KEY._S3rver_object` in it. */
  readonly data: string;
  /** The s3rver node process. */
  readonly process: ServerProcess;
}

/** Why s3rver cannot run here, or undefined when it can (it is a devDependency). */
export function s3rverMissing(): string | undefined {
  try {
    s3rverScript();
    return undefined;
  } catch {
    return 's3rver is not installed (npm install: it is a devDependency; see docs/test-servers.md S7)';
  }
}

function s3rverScript(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('s3rver/package.json')), 'bin', 's3rver.js');
}

/** Starts s3rver (never through npx: the pid must be the server's); the harness stops it with SIGTERM. */
export async function startS3rver(env: ServerEnv, settings: { tls: boolean }): Promise<S3rverServer> {
  const data = join(env.dir, 'data');
  await mkdir(data);
  const port = await env.freePort();
  const bucket = 'relay';
  const cert = settings.tls ? await env.certificate() : undefined;
  const proc = env.spawn(process.execPath, [
    '--openssl-legacy-provider', s3rverScript(), '-d', data, '-a', '127.0.0.1', '-p', String(port), '--configure-bucket', bucket, '--silent',
    ...(cert ? ['--key', cert.keyFile, '--cert', cert.certFile] : []),
  ], { name: 's3rver' });
  const endpoint = `${cert ? 'https' : 'http'}://127.0.0.1:${port}`;
  await env.waitForHttp(`${endpoint}/`, { process: proc });
  return { endpoint, bucket, accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER', data, process: proc, ...(cert ? { certFile: cert.certFile } : {}) };
}
