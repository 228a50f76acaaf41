import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { PassThrough, Readable, Transform, addAbortSignal } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { EscaleError, throwIfAborted } from '../../../core/errors.js';
import { dirnameRel, isRelPath, type RelPath } from '../../../core/relpath.js';
import type { Backend, Entry, Features, ListOptions, Op, PutOptions } from '../../backend.js';
import { fromRcloneFailure } from './rclone-error.js';

/** Prefix of this backend's upload temporaries; never listed, removed when stale. */
export const RCLONE_TEMP_PREFIX = '.escale-put-';
const TEMP_SUFFIX = '.tmp';
const STALE_TEMP_MS = 24 * 3600 * 1000;

/** Options for `openRcloneBackend`. */
export interface RcloneBackendOptions {
  /** The rclone executable (path or name on PATH). */
  readonly binary: string;
  /** `name` of a configured remote, or an on-the-fly `:type,key=value,...` remote (without the final `:`). */
  readonly remote: string;
  /** Folder inside the remote ('' = the remote's root). */
  readonly directory: string;
  /** rclone configuration file (`--config`); default: rclone's own default. */
  readonly configFile?: string;
  /** Extra environment for every run: secrets go here (RCLONE_...), never into argv. */
  readonly env?: Readonly<Record<string, string>>;
  /** Texts scrubbed from every message (passwords, obscured passwords). */
  readonly secrets?: readonly string[];
  /** rclone processes at once (default 4). */
  readonly maxConnections?: number;
  /** Display form of the remote for `id` (default: `remote`). */
  readonly display?: string;
}

interface LsjsonItem {
  readonly Path: string;
  readonly Name: string;
  readonly Size: number;
  readonly ModTime?: string;
  readonly IsDir: boolean;
}

/** Checks that rclone runs and the remote answers, then returns the backend; throws Config when rclone is missing. */
export async function openRcloneBackend(options: RcloneBackendOptions): Promise<RcloneBackend> {
  const backend = new RcloneBackend(options);
  await backend.probe();
  return backend;
}

/**
 * Any rclone remote as relay, by running the `rclone` executable once per call (relay-protocol
 * §8.4): `lsjson` lists and stats, `cat` reads, `rcat` writes a hidden temporary that `moveto`
 * then renames into place (atomic where the remote's move is: local, sftp with posix-rename,
 * object stores by whole-object copy), `deletefile` deletes, `mkdir` makes folders. Failures are
 * read from rclone's exit code and stderr.
 */
export class RcloneBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  private closed = false;
  private readonly running = new Set<ReturnType<typeof spawn>>();

  /** Use `openRcloneBackend`, which checks rclone first. */
  constructor(private readonly options: RcloneBackendOptions) {
    const directory = options.directory.replace(/^\/+|\/+$/g, '');
    this.root = `${options.remote}:${directory}`;
    this.id = `rclone:${options.display ?? options.remote}:${directory}`;
    this.features = { maxConnections: options.maxConnections ?? 4, mtimePrecisionMs: 1000, renameOverwrites: true, recursiveList: true };
  }

  private readonly root: string;

  /** Runs `lsjson --stat` on the root; a missing root folder is fine (puts create it). */
  async probe(): Promise<void> {
    const result = await this.run(['lsjson', '--stat', this.root]);
    if (result.code !== 0 && !/directory not found|object not found/i.test(result.stderr)) {
      throw fromRcloneFailure('lsjson', result.code, result.stderr, this.secrets());
    }
  }

  async *list(dir: RelPath, options: ListOptions = {}): AsyncIterable<Entry> {
    this.check(options);
    const args = ['lsjson', ...(options.recursive ? ['-R', '--files-only'] : []), this.remotePath(dir)];
    const result = await this.run(args, options);
    if (result.code !== 0) {
      const error = fromRcloneFailure('lsjson', result.code, result.stderr, this.secrets(), dir);
      if (error.code === 'NotFound') return;
      throw error;
    }
    const items = parseJson<LsjsonItem[]>(result.stdout, 'lsjson');
    const stale: string[] = [];
    for (const item of items) {
      throwIfAborted(options.signal);
      const base = item.Path.slice(item.Path.lastIndexOf('/') + 1);
      if (isTemp(base)) {
        if (item.ModTime !== undefined && Date.now() - Date.parse(item.ModTime) > STALE_TEMP_MS) stale.push(item.Path);
        continue;
      }
      const path = dir === '' ? item.Path : `${dir}/${item.Path}`;
      if (!isRelPath(path)) continue;
      yield toEntry(path as RelPath, item);
    }
    for (const name of stale) await this.run(['deletefile', this.remotePath((dir === '' ? name : `${dir}/${name}`) as RelPath)]).catch(() => undefined);
  }

  async stat(path: RelPath, options: Op = {}): Promise<Entry> {
    this.check(options);
    if (path === '') return { path, kind: 'dir', size: 0 };
    const result = await this.run(['lsjson', '--stat', this.remotePath(path)], options);
    if (result.code !== 0) throw fromRcloneFailure('lsjson', result.code, result.stderr, this.secrets(), path);
    return toEntry(path, parseJson<LsjsonItem>(result.stdout, 'lsjson'));
  }

  async get(path: RelPath, options: Op = {}): Promise<Readable> {
    const entry = await this.stat(path, options);
    // why: `rclone cat` of a folder would print every file below it.
    if (entry.kind !== 'file') throw new EscaleError('NotFound', `'${path}' is a folder, not a file`, { path });
    throwIfAborted(options.signal);
    const child = this.spawn(['cat', this.remotePath(path)]);
    const out = new PassThrough();
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-16 * 1024);
    });
    child.stdout?.pipe(out, { end: false });
    child.once('error', (error) => out.destroy(new EscaleError('Config', `cannot run rclone ('${this.options.binary}'): ${error.message}`, { key: 'rclone binary', cause: error })));
    child.once('close', (code) => {
      if (code === 0) out.end();
      else out.destroy(fromRcloneFailure('cat', code, stderr, this.secrets(), path));
    });
    out.once('close', () => {
      if (child.exitCode === null) child.kill();
    });
    if (options.signal) addAbortSignal(options.signal, out);
    return out;
  }

  async put(path: RelPath, body: Readable | Uint8Array, options: PutOptions = {}): Promise<Entry> {
    this.check(options);
    if (path === '') throw new EscaleError('InvalidName', 'cannot put the relay root');
    if (options.exclusive) {
      // why: rclone has no create-if-absent; this check before the move is best effort.
      const exists = await this.stat(path, options).then(() => true, (error: unknown) => {
        if (error instanceof EscaleError && error.code === 'NotFound') return false;
        throw error;
      });
      if (exists) throw new EscaleError('AlreadyExists', `'${path}' exists already`, { path });
    }
    const parent = dirnameRel(path);
    const tempName = `${RCLONE_TEMP_PREFIX}${randomBytes(8).toString('hex')}${TEMP_SUFFIX}`;
    const temp = parent === '' ? tempName : `${parent}/${tempName}`;
    const child = this.spawn(['rcat', this.remotePath(temp as RelPath)]);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-16 * 1024);
    });
    const exited = new Promise<number | null>((resolve, reject) => {
      child.once('error', (error) => reject(new EscaleError('Config', `cannot run rclone ('${this.options.binary}'): ${error.message}`, { key: 'rclone binary', cause: error })));
      child.once('close', (code) => resolve(code));
    });
    let size = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        size += chunk.length;
        callback(null, chunk);
      },
    });
    const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
    try {
      try {
        await pipeline(source, counter, child.stdin as NodeJS.WritableStream, options.signal ? { signal: options.signal } : {});
      } catch (error) {
        // why: a failed or aborted body must not become a file: kill rcat before it finishes the upload.
        child.kill('SIGKILL');
        await exited.catch(() => undefined);
        throw error instanceof EscaleError ? error : options.signal?.aborted
          ? new EscaleError('Aborted', 'operation aborted', { path, cause: error })
          : new EscaleError('Unavailable', `the upload of '${path}' failed: ${(error as Error).message}`, { path, cause: error });
      }
      const code = await exited;
      if (code !== 0) throw fromRcloneFailure('rcat', code, stderr, this.secrets(), path);
      throwIfAborted(options.signal);
      const moved = await this.run(['moveto', this.remotePath(temp as RelPath), this.remotePath(path)]);
      if (moved.code !== 0) throw fromRcloneFailure('moveto', moved.code, moved.stderr, this.secrets(), path);
    } catch (error) {
      await this.run(['deletefile', this.remotePath(temp as RelPath)]).catch(() => undefined);
      throw error;
    }
    return { path, kind: 'file', size };
  }

  async delete(path: RelPath, options: Op = {}): Promise<void> {
    this.check(options);
    const result = await this.run(['deletefile', this.remotePath(path)], options);
    if (result.code !== 0) throw fromRcloneFailure('deletefile', result.code, result.stderr, this.secrets(), path);
  }

  async rename(from: RelPath, to: RelPath, options: Op = {}): Promise<void> {
    // why: `moveto` of a folder would move the whole folder; the contract renames files only.
    const source = await this.stat(from, options);
    if (source.kind !== 'file') throw new EscaleError('NotFound', `'${from}' is a folder, not a file`, { path: from });
    throwIfAborted(options.signal);
    const result = await this.run(['moveto', this.remotePath(from), this.remotePath(to)]);
    if (result.code !== 0) throw fromRcloneFailure('moveto', result.code, result.stderr, this.secrets(), from);
  }

  async mkdir(dir: RelPath, options: Op = {}): Promise<void> {
    this.check(options);
    const result = await this.run(['mkdir', this.remotePath(dir)], options);
    if (result.code !== 0) throw fromRcloneFailure('mkdir', result.code, result.stderr, this.secrets(), dir);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const child of this.running) child.kill();
  }

  // -------------------------------------------------------------------------------------------

  private check(options: Op): void {
    if (this.closed) throw new EscaleError('Internal', 'the rclone backend is closed');
    throwIfAborted(options.signal);
  }

  private secrets(): readonly string[] {
    return this.options.secrets ?? [];
  }

  private remotePath(path: RelPath): string {
    if (path === '') return this.root;
    return this.root.endsWith(':') ? `${this.root}${path}` : `${this.root}/${path}`;
  }

  private spawn(args: string[]): ReturnType<typeof spawn> {
    const flags = [
      ...(this.options.configFile !== undefined ? ['--config', this.options.configFile] : []),
      // why: escale's retry wrapper decides about retries (by error code); rclone should fail fast and quietly.
      '--retries', '1', '--low-level-retries', '1', '-q',
    ];
    const child = spawn(this.options.binary, [args[0] as string, ...flags, ...args.slice(1)], {
      env: { ...process.env, ...this.options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.running.add(child);
    child.once('close', () => this.running.delete(child));
    child.once('error', () => this.running.delete(child));
    return child;
  }

  /** Runs rclone to completion (killed on abort); stdout and stderr are collected. */
  private async run(args: string[], options: Op = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
    throwIfAborted(options.signal);
    const child = this.spawn(args);
    child.stdin?.end();
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString('utf8')).slice(-64 * 1024);
    });
    const abort = (): void => {
      child.kill();
    };
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      const code = await new Promise<number | null>((resolve, reject) => {
        child.once('error', (error) => {
          const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
          reject(new EscaleError('Config', missing
            ? `cannot find the rclone executable '${this.options.binary}': install rclone or set the 'rclone binary' option`
            : `cannot run rclone ('${this.options.binary}'): ${error.message}`, { key: 'rclone binary', cause: error }));
        });
        child.once('close', (exitCode) => resolve(exitCode));
      });
      throwIfAborted(options.signal);
      return { code, stdout: Buffer.concat(out).toString('utf8'), stderr };
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
  }
}

function isTemp(name: string): boolean {
  return name.startsWith(RCLONE_TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX);
}

function toEntry(path: RelPath, item: LsjsonItem): Entry {
  const mtime = item.ModTime === undefined ? Number.NaN : Date.parse(item.ModTime);
  const time = Number.isFinite(mtime) ? { mtimeMs: mtime } : {};
  return item.IsDir ? { path, kind: 'dir', size: 0, ...time } : { path, kind: 'file', size: item.Size, ...time };
}

function parseJson<T>(text: string, command: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new EscaleError('Protocol', `rclone ${command} printed something that is not JSON`, { cause: error });
  }
}
