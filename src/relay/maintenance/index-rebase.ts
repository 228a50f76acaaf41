import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable, Transform } from 'node:stream';
import { throwIfAborted } from '../../core/errors.js';
import type { Logger } from '../../core/log.js';
import { joinRel, type RelayPath, type RelPath } from '../../core/relpath.js';
import type { MetadataRecord } from '../protocol/records.js';
import type { Backend } from '../backend.js';
import { packUpdate, type ArchiveSource } from '../protocol/archive.js';
import { unpackUpdate } from '../../local/archive-extract.js';
import { IndexRelay } from '../protocol/index-relay.js';
import type { IndexExtras } from '../protocol/page-index.js';

/** The content cipher of the section (relay-format.md P5), or null when the relay is not encrypted. */
export interface RebaseCipher {
  encrypt(): Transform;
  decrypt(): Transform;
}

/** Settings of `rebaseIndexRelay`. */
export interface RebaseOptions {
  /** Owner of the page locks (e.g. `<client>-rebase`). */
  readonly client: string;
  readonly lockTimeoutSec: number | null;
  /** How long to wait for a page locked by another client (ms), and the pause between looks. */
  readonly lockWaitMs: number;
  readonly pollMs: number;
  readonly cipher: RebaseCipher | null;
  /** A private folder for the repacked archive (created inside, removed afterwards). */
  readonly scratchDir: string;
  /** Largest decompressed update accepted while repacking, in bytes. */
  readonly maxUpdateBytes: number;
  readonly logger: Logger;
  readonly now?: () => number;
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly signal?: AbortSignal;
}

/** What happened to one page. */
export interface RebasedPage {
  readonly page: string;
  /** Entries of the persistent index now under the prefix. */
  readonly entries: number;
  /** `T` of the pending update that was rewritten (index and repacked archive), if any. */
  readonly update?: number;
}

/** Result of a rebase. */
export interface RebaseReport {
  readonly rebased: RebasedPage[];
  readonly failed: { readonly page: string; readonly reason: string }[];
}

function prefixed<T>(prefix: RelPath, entries: Iterable<readonly [RelPath, T]>): Map<RelPath, T> {
  const out = new Map<RelPath, T>();
  for (const [path, value] of entries) out.set(joinRel(prefix, path), value);
  return out;
}

/**
 * Moves every resource of an index relay under `prefix` (relay-format.md P7.2,
 * configuration.md C13), page by page under a write page lock: the pending update's archive is repacked with its
 * members under `prefix` (decrypted and encrypted again with the section's cipher, through a
 * private folder, never in memory) and written back under the **same** `T`, then the persistent
 * index and the update index (its pullers kept) are rewritten. Keeping `T` is what fixes configuration.md U-12: no
 * second update index ever appears beside the old one, so readers never see "multiple update
 * indices" and delete the update. A page with several pending updates, or whose lock another
 * client keeps longer than `lockWaitMs`, is left untouched and reported.
 */
export async function rebaseIndexRelay(backend: Backend, prefix: RelPath, options: RebaseOptions): Promise<RebaseReport> {
  const { logger, signal } = options;
  const relay = new IndexRelay(backend, {
    client: options.client,
    lockTimeoutSec: options.lockTimeoutSec,
    now: options.now ?? Date.now,
    logger,
    ...(options.sleep ? { sleep: options.sleep } : {}),
  });
  const report: RebaseReport = { rebased: [], failed: [] };
  const pages = [...(await relay.snapshot(signal)).pages.keys()].sort();
  for (const page of pages) {
    throwIfAborted(signal);
    const lock = await relay.lock(page, 'w', { pollMs: options.pollMs, maxWaitMs: options.lockWaitMs, ...(signal ? { signal } : {}) });
    if (lock === 'busy') {
      report.failed.push({ page, reason: 'locked by another client; left untouched' });
      continue;
    }
    try {
      const files = await relay.pageFiles(page, signal);
      const pending = [...files.updates].filter(([, update]) => update.index !== undefined).map(([t]) => t);
      if (pending.length > 1) {
        report.failed.push({ page, reason: `several pending updates (${pending.join(', ')}); left untouched (clients remove them on their next read)` });
        continue;
      }
      const index = await relay.readPersistentIndex(page, signal);
      const stamp = pending[0];
      const update = stamp === undefined ? undefined : await relay.readUpdateIndex(page, stamp, signal);
      if (stamp !== undefined && update !== undefined && files.updates.get(stamp)?.data !== undefined) {
        const refused = await repackUpdate(relay, page, stamp, prefix, update.spellings, options);
        if (refused.length > 0) {
          // why: a member escale cannot extract (a 0.7 client's backslash or tab name) cannot be repacked either; dropping it would lose that client's file.
          report.failed.push({ page, reason: `its pending update ${stamp} holds files whose names escale does not sync (${refused.map((name) => JSON.stringify(name)).join(', ')}); left untouched: run rebase again once the update was read by its pullers` });
          continue;
        }
      }
      // why: the relay's write order (relay-format.md P4.8): update data, persistent index, update index. Entries
      // escale refuses and non-NFC spellings move with the others (other clients, 0.7 ones, keep them).
      if (files.index !== undefined) await relay.writePersistentIndex(page, prefixed(prefix, index.entries), signal, prefixedExtras(prefix, index));
      if (stamp !== undefined && update !== undefined) {
        const pullers = [...new Set(update.pullers.filter((name) => name !== ''))];
        await relay.writeUpdateIndex(page, stamp, prefixed<MetadataRecord>(prefix, update.entries), pullers, signal, prefixedExtras(prefix, update));
      }
      logger.info(`page '${page}': ${index.entries.size} file(s) moved under '${prefix}'${stamp === undefined ? '' : ` (pending update ${stamp} repacked)`}`);
      report.rebased.push({ page, entries: index.entries.size, ...(stamp === undefined || update === undefined ? {} : { update: stamp }) });
    } finally {
      await lock.release();
    }
  }
  return report;
}

/** `extras` (spellings and kept entries of an index) with every name under `prefix`. */
function prefixedExtras(prefix: RelPath, extras: IndexExtras): IndexExtras {
  return {
    spellings: new Map([...extras.spellings].map(([key, spelled]) => [joinRel(prefix, key), `${prefix}/${spelled}` as RelayPath])),
    kept: extras.kept.map((entry) => ({ ...entry, name: `${prefix}/${entry.name}` })),
  };
}

/**
 * Rewrites `.<P>.<T>.data` with every member under `prefix`, each in the spelling its update index
 * gives it (`spellings`): download (decrypt), extract, pack, encrypt, upload. When members have names
 * escale does not sync, nothing is written and their names are returned.
 */
async function repackUpdate(relay: IndexRelay, page: string, stamp: number, prefix: RelPath, spellings: ReadonlyMap<RelPath, RelayPath>, options: RebaseOptions): Promise<string[]> {
  const { cipher, signal } = options;
  const scratch = await mkdtemp(join(options.scratchDir, '.escale-rebase-'));
  try {
    let source: Readable = await relay.getUpdateData(page, stamp, signal);
    if (cipher) {
      // why: decrypt to a file first so that Fernet's HMAC is checked before anything is extracted.
      const plain = join(scratch, 'archive.tar.bz2');
      await pipeline(source, cipher.decrypt(), createWriteStream(plain, { mode: 0o600 }), signal ? { signal } : {});
      source = createReadStream(plain);
    }
    const tree = join(scratch, 'files');
    const refused: string[] = [];
    const members = await unpackUpdate(source, tree, { maxBytes: options.maxUpdateBytes, maxEntries: 10_000_000, onRefused: (name) => refused.push(name), ...(signal ? { signal } : {}) });
    if (refused.length > 0) return refused;
    const mtimeSec = Math.floor((options.now ?? Date.now)() / 1000);
    async function* sources(): AsyncGenerator<ArchiveSource> {
      for (const member of members) {
        const spelled = spellings.get(member.path);
        yield { path: spelled === undefined ? joinRel(prefix, member.path) : (`${prefix}/${spelled}` as RelayPath), size: member.size, mtimeSec, open: async () => createReadStream(join(tree, ...member.path.split('/'))) };
      }
    }
    const archive = packUpdate(sources(), signal ? { signal } : {});
    let body: Readable = archive;
    if (cipher) {
      const encrypt = cipher.encrypt();
      archive.on('error', (error) => encrypt.destroy(error));
      body = archive.pipe(encrypt);
    }
    try {
      await relay.putUpdateData(page, stamp, body, signal);
    } finally {
      archive.destroy();
    }
    return [];
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
