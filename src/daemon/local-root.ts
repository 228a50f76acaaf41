/**
 * The local root guard: a client never syncs into a local folder that vanished (an unmounted disk,
 * a folder moved away) as if it were empty. On the first successful start the client writes a
 * hidden marker file into its root and records, in its data folder, that this root was initialised;
 * from then on a root that is missing, or that lost its marker, pauses the client until it is back.
 */
import { lstat, mkdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { fromSystemError } from '../core/errors.js';
import { writeFileAtomically } from '../local/local-writer.js';
import { relPath } from '../core/relpath.js';

/**
 * Name of the marker file in every initialised local root. A dot name: never scanned, never synced.
 * It tells escale (and issue 16's deletion rules) that the folder is the real root, not an empty
 * mount point; its content is informative only.
 */
export const ROOT_MARKER = '.escale.root';

/** Version of the record kept in the data folder. */
const RECORD_VERSION = 1;

/** What the guard decided for this round. */
export type RootCheck =
  /** The root can be synced; `warning` when it could not be marked (read-only folder) and is not guarded. */
  | { readonly ok: true; readonly warning?: string }
  /** The client must pause: why, for the user. */
  | { readonly ok: false; readonly reason: string };

/** Settings of a LocalRootGuard. */
export interface LocalRootGuardOptions {
  /** Absolute path of the local root. */
  readonly root: string;
  /** The section's record file in its data folder. */
  readonly recordFile: string;
  /** Section name (written into the marker for the user's information). */
  readonly section: string;
  /** False (dry run): nothing is created or written; a fresh root that is missing is accepted. */
  readonly writable: boolean;
  /** Clock in milliseconds (default Date.now). */
  readonly now?: () => number;
}

/**
 * Checks the local root before each round (two or three `stat` calls). A fresh client (no record
 * for this root) creates a missing root, marks it and records it, as escale always created its
 * root. A recorded root that is missing, is not a folder, cannot be read or has no marker makes
 * `check` answer a reason to pause.
 */
export class LocalRootGuard {
  constructor(private readonly options: LocalRootGuardOptions) {}

  /** What to do this round. Never throws: problems are reasons to pause. */
  async check(): Promise<RootCheck> {
    const { root } = this.options;
    const recorded = await this.isRecorded();
    let isDir: boolean;
    try {
      isDir = (await stat(root)).isDirectory();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && !recorded) return this.initialise(true);
      if (code === 'ENOENT') return { ok: false, reason: `the local folder '${root}' is missing (an unmounted disk?); escale waits for it to come back and does not create it again` };
      return { ok: false, reason: `the local folder '${root}' cannot be checked: ${fromSystemError(error, root).message}` };
    }
    if (!isDir) return { ok: false, reason: `the local folder '${root}' is not a folder` };
    if (await this.hasMarker()) {
      if (!recorded && this.options.writable) await this.record().catch(() => undefined);
      return { ok: true };
    }
    if (recorded) {
      return {
        ok: false,
        reason: `the local folder '${root}' lost its marker '${ROOT_MARKER}' (another disk mounted there? an emptied folder?); escale pauses rather than sync it as empty. If this folder is the right one, create the marker again: touch '${join(root, ROOT_MARKER)}'`,
      };
    }
    return this.initialise(false);
  }

  /** A fresh root: create it if `missing`, write the marker, then the record. */
  private async initialise(missing: boolean): Promise<RootCheck> {
    const { root, writable } = this.options;
    if (!writable) return { ok: true };
    try {
      if (missing) await mkdir(root, { recursive: true });
      await writeFileAtomically({
        root,
        path: relPath(ROOT_MARKER),
        source: Readable.from([Buffer.from(this.markerText(), 'utf8')]),
        expectedPrior: null,
      });
    } catch (error) {
      if ((await this.hasMarker()) === false) {
        return { ok: true, warning: `cannot mark the local folder '${root}' (${fromSystemError(error, root).message}); escale cannot tell later whether this folder vanished` };
      }
    }
    await this.record().catch(() => undefined);
    return { ok: true };
  }

  private markerText(): string {
    const when = new Date((this.options.now ?? Date.now)()).toISOString();
    return `escale local folder marker: escale pauses the client [${this.options.section}] when this file or its folder is missing. Do not delete it.\ncreated: ${when}\n`;
  }

  private async hasMarker(): Promise<boolean> {
    try {
      await lstat(join(this.options.root, ROOT_MARKER));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * Whether the data folder records this root as initialised. A record that exists but cannot be
   * read or parsed counts as recorded: the guard errs on the side of pausing, never of creating.
   */
  private async isRecorded(): Promise<boolean> {
    let text: string;
    try {
      text = await readFile(this.options.recordFile, 'utf8');
    } catch (error) {
      return (error as NodeJS.ErrnoException).code !== 'ENOENT';
    }
    try {
      return (JSON.parse(text) as { root?: unknown }).root === this.options.root;
    } catch {
      return true;
    }
  }

  private async record(): Promise<void> {
    const text = `${JSON.stringify({ version: RECORD_VERSION, root: this.options.root, initialised: new Date((this.options.now ?? Date.now)()).toISOString() })}\n`;
    const file = this.options.recordFile;
    await writeFileAtomically({ root: dirname(file), path: relPath(basename(file)), source: Readable.from([Buffer.from(text, 'utf8')]), expectedPrior: await priorOf(file) });
  }
}

/** The size and mtime of an existing file (the writer's unchanged-target check), or null. */
async function priorOf(path: string): Promise<{ size: number; mtimeMs: number } | null> {
  try {
    const info = await stat(path);
    return { size: info.size, mtimeMs: info.mtimeMs };
  } catch {
    return null;
  }
}
