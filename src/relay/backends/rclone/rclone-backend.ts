import { randomBytes } from 'node:crypto';
import { Readable, addAbortSignal } from 'node:stream';
import { EscaleError, throwIfAborted } from '../../../core/errors.js';
import { dirnameRel, type RelayPath } from '../../../core/relpath.js';
import type { Logger } from '../../../core/log.js';
import { listedPath, type Backend, type Entry, type Features, type ListOptions, type Op, type PutOptions } from '../../backend.js';
import { RelayClock } from '../../relay-clock.js';
import { removeLeftoverTemps, type ListedName } from '../upload-temp.js';
import { startRcloneDaemon, type RcloneDaemon } from './rclone-daemon.js';

/** Prefix of this backend's upload temporaries; never listed, removed when stale. */
export const RCLONE_TEMP_PREFIX = '.escale-put-';
const TEMP_SUFFIX = '.tmp';

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
  /** Extra environment for the rclone process: secrets go here (RCLONE_...), never into argv. */
  readonly env?: Readonly<Record<string, string>>;
  /** Texts scrubbed from every message (passwords, obscured passwords). */
  readonly secrets?: readonly string[];
  /** Calls in flight at once (default 4). */
  readonly maxConnections?: number;
  /** Display form of the remote for `id` (default: `remote`). */
  readonly display?: string;
  /** Where removed upload temporaries are reported (default: nowhere). */
  readonly logger?: Logger;
}

interface ListItem {
  readonly Path: string;
  readonly Name: string;
  readonly Size: number;
  readonly ModTime?: string;
  readonly IsDir: boolean;
}

/** Starts rclone, checks that the remote answers, then returns the backend; throws Config when rclone is missing. */
export async function openRcloneBackend(options: RcloneBackendOptions): Promise<RcloneBackend> {
  const daemon = await startRcloneDaemon({
    binary: options.binary,
    secrets: options.secrets ?? [],
    display: options.display ?? options.remote,
    ...(options.configFile !== undefined ? { configFile: options.configFile } : {}),
    ...(options.env !== undefined ? { env: options.env } : {}),
  });
  const backend = new RcloneBackend(options, daemon);
  try {
    await backend.probe();
  } catch (error) {
    await backend.close();
    throw error;
  }
  return backend;
}

/**
 * Any rclone remote as relay (configuration.md C5, docs/backends.md), through one long-lived `rclone rcd` per
 * backend, driven by its remote-control API on loopback with random credentials:
 * `operations/list` lists, `operations/stat` stats, a GET through `--rc-serve` reads,
 * `operations/uploadfile` writes a hidden temporary that `operations/movefile` then renames into
 * place (readers never see a partial file; rclone deletes an existing target just before the
 * move, so for an instant there is none), `operations/deletefile` deletes, `operations/mkdir`
 * makes folders.
 */
export class RcloneBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock = new RelayClock();
  private closed = false;
  private readonly root: string;
  private readonly moving = new Map<RelayPath, Promise<void>>();
  /** Folders an upload went into (or is going into first): see `firstInFolder`. */
  private readonly foldersReady = new Map<string, Promise<void>>();

  /** Use `openRcloneBackend`, which starts rclone and checks the remote first. */
  constructor(private readonly options: RcloneBackendOptions, private readonly rc: RcloneDaemon) {
    const directory = options.directory.replace(/^\/+|\/+$/g, '');
    this.root = `${options.remote}:${directory}`;
    this.id = `rclone:${options.display ?? options.remote}:${directory}`;
    this.features = { maxConnections: options.maxConnections ?? 4, mtimePrecisionMs: 1000, renameOverwrites: true, recursiveList: true };
  }

  /** Stats the root; a missing root folder is fine (puts create it). */
  async probe(): Promise<void> {
    await this.rc.call('operations/stat', { fs: this.root, remote: '' }).catch((error: unknown) => {
      if (error instanceof EscaleError && error.code === 'NotFound') return;
      throw error;
    });
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    this.check(options);
    const opt = { noMimeType: true, ...(options.recursive ? { recurse: true, filesOnly: true } : {}) };
    let items: readonly ListItem[];
    try {
      items = (await this.rc.call<{ list?: ListItem[] }>('operations/list', { fs: this.root, remote: dir, opt }, options.signal, dir)).list ?? [];
    } catch (error) {
      if (error instanceof EscaleError && error.code === 'NotFound') return;
      throw error;
    }
    // why: rc list paths are relative to the fs (the relay root), so they already include `dir`; temporaries are judged by folder.
    const temps = new Map<string, ListedName[]>();
    for (const item of items) {
      throwIfAborted(options.signal);
      if (isTemp(item.Name)) {
        const folder = item.Path.slice(0, Math.max(0, item.Path.length - item.Name.length - 1));
        const mtimeMs = item.ModTime === undefined ? Number.NaN : Date.parse(item.ModTime);
        temps.set(folder, [...(temps.get(folder) ?? []), { name: item.Name, size: item.Size, ...(Number.isFinite(mtimeMs) ? { mtimeMs } : {}) }]);
        continue;
      }
      const path = listedPath('' as RelayPath, item.Path, options);
      if (path === undefined) continue;
      yield toEntry(path, item);
    }
    // why: rclone uploads a remote's object whole, so a temporary is only ever a crashed put's left-over or
    // one about to be moved; on remotes that keep the uploader's modification time (Dropbox, Drive) the age
    // compares two clients' clocks, and the day-long stale age is the margin.
    for (const [folder, found] of temps) {
      await removeLeftoverTemps(found, folder, {
        backend: this,
        ...(this.options.logger === undefined ? {} : { logger: this.options.logger }),
        remove: (name) => this.delete((folder === '' ? name : `${folder}/${name}`) as RelayPath),
      });
    }
  }

  async stat(path: RelayPath, options: Op = {}): Promise<Entry> {
    this.check(options);
    if (path === '') return { path, kind: 'dir', size: 0 };
    const answer = await this.rc.call<{ item?: ListItem | null }>('operations/stat', { fs: this.root, remote: path, opt: { noMimeType: true } }, options.signal, path);
    if (answer.item === null || answer.item === undefined) throw new EscaleError('NotFound', `'${path}' does not exist`, { path });
    return toEntry(path, answer.item);
  }

  async get(path: RelayPath, options: Op = {}): Promise<Readable> {
    const entry = await this.stat(path, options);
    // why: rc-serve answers a folder with an HTML listing.
    if (entry.kind !== 'file') throw new EscaleError('NotFound', `'${path}' is a folder, not a file`, { path });
    throwIfAborted(options.signal);
    const out = await this.rc.download(this.root, path, options.signal, path);
    if (options.signal) addAbortSignal(options.signal, out);
    return out;
  }

  async put(path: RelayPath, body: Readable | Uint8Array, options: PutOptions = {}): Promise<Entry> {
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
    const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
    let size: number;
    try {
      size = await this.firstInFolder(parent, () => this.rc.upload(this.root, parent, tempName, source, options.signal, path));
      throwIfAborted(options.signal);
      await this.move(temp as RelayPath, path).catch(async (error: unknown) => {
        // why: rclone deletes an existing target before moving; another writer's move can remove it first.
        if (!(error instanceof EscaleError && error.code === 'NotFound')) throw error;
        await this.move(temp as RelayPath, path);
      });
    } catch (error) {
      await this.rc.call('operations/deletefile', { fs: this.root, remote: temp }).catch(() => undefined);
      throw error;
    }
    return { path, kind: 'file', size };
  }

  /**
   * Runs an upload into `parent`; the first one into each folder runs alone. why: rclone creates
   * missing parent folders without a lock (its sftp remote), so two first uploads into one new
   * folder race on its mkdir and one fails; once one upload went through, the folder exists.
   */
  private async firstInFolder<T>(parent: string, upload: () => Promise<T>): Promise<T> {
    const ready = this.foldersReady.get(parent);
    if (ready !== undefined) {
      await ready;
      return upload();
    }
    const first = upload();
    const settled = first.then(
      () => undefined,
      () => void this.foldersReady.delete(parent),
    );
    this.foldersReady.set(parent, settled);
    return first;
  }

  async delete(path: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    await this.rc.call('operations/deletefile', { fs: this.root, remote: path }, options.signal, path);
  }

  async rename(from: RelayPath, to: RelayPath, options: Op = {}): Promise<void> {
    // why: a move of a folder would move the whole folder; the contract renames files only.
    const source = await this.stat(from, options);
    if (source.kind !== 'file') throw new EscaleError('NotFound', `'${from}' is a folder, not a file`, { path: from });
    throwIfAborted(options.signal);
    await this.move(from, to);
  }

  async mkdir(dir: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    await this.rc.call('operations/mkdir', { fs: this.root, remote: dir }, options.signal, dir);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.rc.stop();
  }

  // -------------------------------------------------------------------------------------------

  /**
   * Moves a file over its target with `operations/movefile`, one move per target at a time.
   * why: rclone's move deletes an existing target first and then renames, so two concurrent moves
   * onto one name race (the second delete fails); within this backend they are serialised.
   */
  private async move(from: RelayPath, to: RelayPath): Promise<void> {
    const before = this.moving.get(to) ?? Promise.resolve();
    const mine = before.then(() => this.rc.call('operations/movefile', { srcFs: this.root, srcRemote: from, dstFs: this.root, dstRemote: to }, undefined, from));
    const settled = mine.then(() => undefined, () => undefined);
    this.moving.set(to, settled);
    try {
      await mine;
    } finally {
      if (this.moving.get(to) === settled) this.moving.delete(to);
    }
  }

  private check(options: Op): void {
    if (this.closed) throw new EscaleError('Internal', 'the rclone backend is closed');
    throwIfAborted(options.signal);
  }
}

function isTemp(name: string): boolean {
  return name.startsWith(RCLONE_TEMP_PREFIX) && name.endsWith(TEMP_SUFFIX);
}

function toEntry(path: RelayPath, item: ListItem): Entry {
  const mtime = item.ModTime === undefined ? Number.NaN : Date.parse(item.ModTime);
  const time = Number.isFinite(mtime) ? { mtimeMs: mtime } : {};
  return item.IsDir ? { path, kind: 'dir', size: 0, ...time } : { path, kind: 'file', size: item.Size, ...time };
}
