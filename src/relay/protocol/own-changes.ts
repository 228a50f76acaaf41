import type { Readable } from 'node:stream';
import { hasCode } from '../../core/errors.js';
import type { RelayPath } from '../../core/relpath.js';
import { ForwardingBackend, type Backend, type Entry, type Op, type PutOptions } from '../backend.js';

/**
 * What this client changed on the relay since a point in time (a listing): the latest change of
 * each relay path it put (with the entry the put returned) or deleted; and whether a change failed
 * in a way that leaves its outcome unknown (a put or delete whose reply was lost), after which the
 * changes no longer describe the relay.
 */
export class OwnChanges {
  private readonly changes = new Map<RelayPath, Entry | null>();
  private unknown = false;

  /** Forgets everything (a new listing is the new starting point). */
  reset(): void {
    this.changes.clear();
    this.unknown = false;
  }

  /** The changes since the last reset (a path's entry, or null when deleted), or undefined when one of them has an unknown outcome. */
  get known(): ReadonlyMap<RelayPath, Entry | null> | undefined {
    return this.unknown ? undefined : this.changes;
  }

  /** Records a put that succeeded. */
  stored(entry: Entry): void {
    this.changes.set(entry.path, entry);
  }

  /** Records that `path` is gone (deleted, or found missing by a delete). */
  removed(path: RelayPath): void {
    this.changes.set(path, null);
  }

  /** Records a change whose outcome is unknown. */
  lost(): void {
    this.unknown = true;
  }
}

/**
 * A Backend that records in `changes` what its puts, deletes and renames did (see OwnChanges).
 * A failed put that stored nothing for sure (an exclusive put refused: AlreadyExists) and a delete
 * of a missing file are known outcomes; any other failure of a change is not.
 */
export class RecordingBackend extends ForwardingBackend {
  constructor(
    inner: Backend,
    private readonly changes: OwnChanges,
  ) {
    super(inner);
  }

  override async put(path: RelayPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry> {
    try {
      const entry = await this.inner.put(path, body, options);
      // why: the entry names the path as asked, whatever the backend answered, so that it patches the
      // right resource; the very object returned is kept when it does (see PlaceholderRelay.describe).
      this.changes.stored(entry.path === path ? entry : { ...entry, path });
      return entry;
    } catch (error) {
      if (!(options?.exclusive === true && hasCode(error, 'AlreadyExists'))) this.changes.lost();
      throw error;
    }
  }

  override async delete(path: RelayPath, options?: Op): Promise<void> {
    try {
      await this.inner.delete(path, options);
    } catch (error) {
      if (hasCode(error, 'NotFound')) this.changes.removed(path);
      else this.changes.lost();
      throw error;
    }
    this.changes.removed(path);
  }

  override async rename(from: RelayPath, to: RelayPath, options?: Op): Promise<void> {
    // why: the entry of the target is not known without asking; a renamed file makes the changes unknown.
    this.changes.lost();
    await this.inner.rename(from, to, options);
  }
}
