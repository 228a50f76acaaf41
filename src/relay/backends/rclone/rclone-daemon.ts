import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Agent, request, type IncomingMessage } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EscaleError } from '../../../core/errors.js';
import { fromRcFailure, fromRcloneFailure, type RcFailure } from './rclone-error.js';

/** How long `rclone rcd` may take to start listening. */
const START_TIMEOUT_MS = 20_000;
/** A plain rc call (not an upload or download) that takes longer than this is given up. */
const CALL_TIMEOUT_MS = 120_000;

/** Options for `startRcloneDaemon`. */
export interface RcloneDaemonOptions {
  /** The rclone executable (path or name on PATH). */
  readonly binary: string;
  /** rclone configuration file (`--config`); default: rclone's own default. */
  readonly configFile?: string;
  /** Extra environment for the process: secrets go here (RCLONE_...), never into argv. */
  readonly env?: Readonly<Record<string, string>>;
  /** Texts scrubbed from every message. */
  readonly secrets: readonly string[];
  /** How the remote is named in messages (never holds secrets). */
  readonly display: string;
}

/**
 * sh script run as `sh -c GUARD rclone args...`: starts rclone, and kills it once stdin reaches
 * end of file (escale closed it or died); exits with rclone's status.
 */
const GUARD = 'exec 3<&0; "$0" "$@" & c=$!; { while read -r _ <&3; do :; done; kill $c 2>/dev/null; } & w=$!; wait $c; s=$?; kill $w 2>/dev/null; exit $s';

// why: an rcd left behind would keep the remote's connections open; every live one is killed when node exits.
const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function trackForExit(child: ChildProcess): void {
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once('exit', () => {
    for (const c of live) killGroup(c);
  });
}

/** Kills rclone at once: the guard's whole process group on POSIX, the process itself elsewhere. */
function killGroup(child: ChildProcess): void {
  try {
    if (process.platform !== 'win32' && child.pid !== undefined && child.stdin) process.kill(-child.pid, 'SIGKILL');
    else child.kill('SIGKILL');
  } catch {
    // already gone
  }
}

/** Starts `rclone rcd` on a random loopback port with random credentials and waits until it listens. */
export async function startRcloneDaemon(options: RcloneDaemonOptions): Promise<RcloneDaemon> {
  const user = randomBytes(9).toString('base64url');
  const pass = randomBytes(18).toString('base64url');
  const args = [
    'rcd', '--rc-addr', '127.0.0.1:0', '--rc-serve',
    ...(options.configFile !== undefined ? ['--config', options.configFile] : []),
    // why: escale's retry wrapper decides about retries (by error code); rclone should fail fast.
    '--retries', '1', '--low-level-retries', '1',
  ];
  // why: credentials by environment so that they never show in process titles.
  const env = { ...process.env, ...options.env, RCLONE_RC_USER: user, RCLONE_RC_PASS: pass };
  // why: node killed by a signal runs no exit hook; on POSIX a small sh guard kills rclone when our stdin pipe closes.
  const guarded = process.platform !== 'win32';
  const child = guarded
    ? spawn('/bin/sh', ['-c', GUARD, options.binary, ...args], { env, stdio: ['pipe', 'ignore', 'pipe'], detached: true })
    : spawn(options.binary, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  trackForExit(child);
  let stderr = '';
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      killGroup(child);
      reject(new EscaleError('Unavailable', `rclone rcd did not start within ${START_TIMEOUT_MS / 1000} s`));
    }, START_TIMEOUT_MS);
    const done = (): void => clearTimeout(timer);
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-16 * 1024);
      const match = /Serving remote control on http:\/\/127\.0\.0\.1:(\d+)\//.exec(stderr);
      if (match) {
        done();
        resolve(Number(match[1]));
      }
    });
    child.once('error', (error) => {
      done();
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new EscaleError('Config', missing
        ? `cannot find the rclone executable '${options.binary}': install rclone or set the 'rclone binary' option`
        : `cannot run rclone ('${options.binary}'): ${error.message}`, { key: 'rclone binary', cause: error }));
    });
    child.once('exit', (code) => {
      done();
      if (code === 126 || code === 127) {
        reject(new EscaleError('Config', `cannot run the rclone executable '${options.binary}': install rclone or set the 'rclone binary' option`, { key: 'rclone binary' }));
      }
      reject(fromRcloneFailure('rcd', code, stderr, options.secrets));
    });
  });
  // why: after start-up stderr only carries rclone's own log lines; keep draining it so rclone never blocks on a full pipe.
  child.stderr?.removeAllListeners('data');
  child.stderr?.on('data', () => undefined);
  // why: an open backend must not keep node alive by itself; the exit hook kills rclone.
  child.unref();
  for (const stream of [child.stderr, child.stdin]) (stream as unknown as { unref?: () => void } | null)?.unref?.();
  return new RcloneDaemon(child, port, `Basic ${Buffer.from(`${user}:${pass}`).toString('base64')}`, options);
}

/**
 * One long-lived `rclone rcd` process driven through its remote-control HTTP API on loopback:
 * JSON calls (`operations/...`), multipart uploads (`operations/uploadfile`) and file downloads
 * through `--rc-serve` (`GET /[fs]/path`).
 */
export class RcloneDaemon {
  private readonly agent = new Agent({ keepAlive: true });
  private stopped = false;

  /** Use `startRcloneDaemon`. */
  constructor(private readonly child: ChildProcess, private readonly port: number, private readonly auth: string, private readonly options: RcloneDaemonOptions) {
    child.once('exit', () => {
      this.stopped = true;
    });
  }

  /** POSTs an rc command with JSON parameters and returns the JSON answer; rc errors become catalogue errors. */
  async call<T>(command: string, params: Record<string, unknown>, signal?: AbortSignal, path?: string): Promise<T> {
    const body = Buffer.from(JSON.stringify(params));
    const res = await this.send('POST', `/${command}`, { 'content-type': 'application/json', 'content-length': String(body.length) }, signal, body);
    const text = await readText(res, signal);
    if (res.statusCode !== 200) throw this.failure(command, res.statusCode, text, path);
    try {
      return JSON.parse(text) as T;
    } catch (error) {
      throw new EscaleError('Protocol', `rclone ${command} answered something that is not JSON`, { cause: error });
    }
  }

  /** Streams `body` into `fs` at `dir/name` (`operations/uploadfile`); resolves with the byte count once rclone has stored it. */
  async upload(fs: string, dir: string, name: string, body: Readable, signal?: AbortSignal, path?: string): Promise<number> {
    const boundary = `escale${randomBytes(12).toString('hex')}`;
    const head = `--${boundary}\r\nContent-Disposition: form-data; name="file0"; filename="${name}"\r\nContent-Type: application/octet-stream\r\n\r\n`;
    const query = new URLSearchParams({ fs, remote: dir }).toString();
    let size = 0;
    const req = this.open('POST', `/operations/uploadfile?${query}`, { 'content-type': `multipart/form-data; boundary=${boundary}` }, signal);
    const answer = new Promise<IncomingMessage>((resolve, reject) => {
      req.once('response', resolve);
      req.once('error', reject);
    });
    answer.catch(() => undefined);
    async function* framed(): AsyncGenerator<Buffer> {
      yield Buffer.from(head);
      for await (const chunk of body) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk as Buffer;
        size += bytes.length;
        yield bytes;
      }
      yield Buffer.from(`\r\n--${boundary}--\r\n`);
    }
    try {
      await pipeline(Readable.from(framed()), req);
    } catch (error) {
      // why: a failed or aborted body must not become a file: the request is cut before the closing boundary.
      req.destroy();
      body.destroy();
      throw this.transportError(error, 'uploadfile', signal, path);
    }
    let res: IncomingMessage;
    try {
      res = await answer;
    } catch (error) {
      throw this.transportError(error, 'uploadfile', signal, path);
    }
    const text = await readText(res, signal);
    if (res.statusCode !== 200) throw this.failure('uploadfile', res.statusCode, text, path);
    return size;
  }

  /** Opens `fs/remote` for reading through `--rc-serve`; the stream fails if rclone fails mid-way. */
  async download(fs: string, remote: string, signal?: AbortSignal, path?: string): Promise<Readable> {
    // why: rc-serve takes the fs up to the first `]` of the URL, so such a root is read with `rclone cat`.
    if (fs.includes(']')) return this.cat(`${fs.endsWith(':') ? fs : `${fs}/`}${remote}`, path);
    const url = `/${encodeURIComponent(`[${fs}]`)}/${remote.split('/').map(encodeURIComponent).join('/')}`;
    const res = await this.send('GET', url, {}, signal);
    if (res.statusCode !== 200) throw this.failure('cat', res.statusCode, await readText(res, signal), path);
    const out = new PassThrough();
    res.once('error', (error) => out.destroy(this.transportError(error, 'cat', signal, path)));
    res.once('aborted', () => out.destroy(new EscaleError('Unavailable', `rclone stopped sending '${path ?? remote}'`, { ...(path === undefined ? {} : { path }) })));
    out.once('close', () => {
      if (!res.complete) res.destroy();
    });
    res.pipe(out);
    return out;
  }

  /** Reads one file with a separate `rclone cat` process (same binary, config and environment). */
  private cat(target: string, path?: string): Readable {
    const flags = [...(this.options.configFile !== undefined ? ['--config', this.options.configFile] : []), '--low-level-retries', '1', '-q'];
    const child = spawn(this.options.binary, ['cat', ...flags, target], { env: { ...process.env, ...this.options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    trackForExit(child);
    const out = new PassThrough();
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-16 * 1024);
    });
    child.stdout?.pipe(out, { end: false });
    child.once('error', (error) => out.destroy(new EscaleError('Config', `cannot run rclone ('${this.options.binary}'): ${error.message}`, { key: 'rclone binary', cause: error })));
    child.once('close', (code) => {
      if (code === 0) out.end();
      else out.destroy(fromRcloneFailure('cat', code, stderr, this.options.secrets, path));
    });
    out.once('close', () => {
      if (child.exitCode === null) child.kill();
    });
    return out;
  }

  /** Stops rclone (SIGTERM, then SIGKILL after a grace period) and waits for it to exit. */
  async stop(): Promise<void> {
    this.agent.destroy();
    if (this.stopped || this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    if (this.child.stdin) this.child.stdin.end();
    else this.child.kill('SIGTERM');
    const timer = setTimeout(() => killGroup(this.child), 3_000);
    await exited;
    clearTimeout(timer);
  }

  // -------------------------------------------------------------------------------------------

  private open(method: string, path: string, headers: Record<string, string>, signal?: AbortSignal): ReturnType<typeof request> {
    if (this.stopped) throw new EscaleError('Unavailable', 'the rclone process has stopped');
    return request({
      host: '127.0.0.1', port: this.port, method, path, agent: this.agent,
      headers: { ...headers, authorization: this.auth },
      ...(signal ? { signal } : {}),
    });
  }

  private send(method: string, path: string, headers: Record<string, string>, signal?: AbortSignal, body?: Buffer): Promise<IncomingMessage> {
    const command = path.startsWith('/[') || path.startsWith('/%5B') ? 'cat' : path.slice(1);
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = this.open(method, path, headers, signal);
      if (method === 'POST') req.setTimeout(CALL_TIMEOUT_MS, () => req.destroy(new EscaleError('Unavailable', `rclone ${command} timed out`)));
      req.once('response', resolve);
      req.once('error', (error) => reject(this.transportError(error, command, signal)));
      req.end(body);
    });
  }

  private failure(command: string, status: number | undefined, text: string, path?: string): EscaleError {
    let parsed: RcFailure = { error: text, status: status ?? 0 };
    try {
      const json = JSON.parse(text) as Partial<RcFailure>;
      if (typeof json.error === 'string') parsed = { error: json.error, status: typeof json.status === 'number' ? json.status : status ?? 0 };
    } catch {
      // not JSON: the raw text is the message
    }
    return fromRcFailure(command.replace(/^operations\//, ''), parsed, this.options.secrets, this.options.display, path);
  }

  private transportError(error: unknown, command: string, signal?: AbortSignal, path?: string): EscaleError {
    if (error instanceof EscaleError) return error;
    const where = path === undefined ? {} : { path };
    if (signal?.aborted) return new EscaleError('Aborted', 'operation aborted', { ...where, cause: error });
    return new EscaleError('Unavailable', `rclone ${command} failed${path === undefined ? '' : ` ('${path}')`}: ${(error as Error).message}`, { ...where, cause: error });
  }
}

async function readText(res: IncomingMessage, signal?: AbortSignal): Promise<string> {
  const parts: Buffer[] = [];
  try {
    for await (const chunk of res) parts.push(chunk as Buffer);
  } catch (error) {
    if (signal?.aborted) throw new EscaleError('Aborted', 'operation aborted', { cause: error });
    throw new EscaleError('Unavailable', `the rclone answer broke off: ${(error as Error).message}`, { cause: error });
  }
  return Buffer.concat(parts).toString('utf8');
}
