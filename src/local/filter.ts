import { basenameRel, dirnameRel, ROOT, type RelPath } from '../core/relpath.js';

/**
 * One compiled file or directory name pattern (configuration.md C4), as the configuration
 * produces it: `source` is the text the user wrote, `regex` what it compiles to.
 */
export interface Pattern {
  readonly source: string;
  readonly regex: RegExp;
}

/** The filter settings of one client section (configuration.md C2, C4; sync-rules.md R2.2, R2.3). */
export interface FilterOptions {
  /** Last extensions to keep, with or without a leading dot; empty keeps every file. */
  readonly extensions: readonly string[];
  /** Base-name patterns; when any, a file is kept only if one matches. */
  readonly include: readonly Pattern[];
  /** Base-name patterns; a file that matches one is dropped. */
  readonly exclude: readonly Pattern[];
  /** Directory-path patterns; when any, a directory is entered only if one matches. */
  readonly includeDirs: readonly Pattern[];
  /** Directory-path patterns; a directory that matches one is not entered. */
  readonly excludeDirs: readonly Pattern[];
}

/**
 * Anchors a pattern at the start of the subject without requiring a full match (configuration.md C4, "match at
 * the beginning"): a sticky copy of the regex tested from index 0.
 */
function anchored(pattern: Pattern): RegExp {
  // why: `g` would make test() stateful across calls; `y` pins the match to lastIndex (0).
  return new RegExp(pattern.regex.source, pattern.regex.flags.replace(/[gy]/g, '') + 'y');
}

function matchesAny(regexes: readonly RegExp[], subject: string): boolean {
  for (const regex of regexes) {
    regex.lastIndex = 0;
    if (regex.test(subject)) return true;
  }
  return false;
}

/** The last extension of a base name, without its dot; '' when there is none (`.bashrc`, `README`). */
function lastExtension(name: string): string {
  const dot = name.lastIndexOf('.');
  // why: like Python's os.path.splitext, leading dots do not start an extension.
  if (dot <= 0 || /^\.+$/.test(name.slice(0, dot + 1))) return '';
  return name.slice(dot + 1);
}

/**
 * Decides which local or relay files take part in synchronization (sync-rules.md R2).
 *
 * Files: the base name must have a listed last extension (when a list is given; case-sensitive),
 * match one include pattern (when any) and no exclude pattern.
 *
 * Directories: a directory is entered when its path relative to the root matches one "include
 * directories" pattern (when any) and no "exclude directories" pattern; matching is anchored at the
 * start only, so `docs` also matches `docs/x` and `documents`.
 *
 * Both sides agree (a deliberate change from the original, which treated root-level files
 * differently on download): `acceptsFile` applies the directory filters to every ancestor folder
 * of the file, exactly as the crawl of the local tree meets them, and **files directly in the root
 * are never subject to the directory filters**, on upload and on download alike.
 */
export class FileFilter {
  readonly #extensions: ReadonlySet<string> | undefined;
  readonly #include: readonly RegExp[];
  readonly #exclude: readonly RegExp[];
  readonly #includeDirs: readonly RegExp[];
  readonly #excludeDirs: readonly RegExp[];
  // why: files arrive grouped by folder, so the last folder's verdict is nearly always reused.
  #lastDir: RelPath | undefined;
  #lastDirVerdict = false;

  constructor(options: FilterOptions) {
    const extensions = options.extensions.map((e) => e.replace(/^\./, '')).filter((e) => e !== '');
    this.#extensions = extensions.length > 0 ? new Set(extensions) : undefined;
    this.#include = options.include.map(anchored);
    this.#exclude = options.exclude.map(anchored);
    this.#includeDirs = options.includeDirs.map(anchored);
    this.#excludeDirs = options.excludeDirs.map(anchored);
  }

  /** A filter that keeps everything (no option set). */
  static acceptAll(): FileFilter {
    return new FileFilter({ extensions: [], include: [], exclude: [], includeDirs: [], excludeDirs: [] });
  }

  /** Whether a file with this base name passes the extension, include and exclude filters. */
  acceptsBaseName(name: string): boolean {
    if (this.#extensions !== undefined && !this.#extensions.has(lastExtension(name))) return false;
    if (this.#include.length > 0 && !matchesAny(this.#include, name)) return false;
    return !matchesAny(this.#exclude, name);
  }

  /**
   * Whether the crawl enters the directory `relDir` (relative to the root, `/`-separated), judged
   * on that path alone; the crawl only asks for directories whose parent it entered. The root
   * itself is always entered.
   */
  entersDir(relDir: RelPath): boolean {
    if (relDir === ROOT) return true;
    if (this.#includeDirs.length > 0 && !matchesAny(this.#includeDirs, relDir)) return false;
    return !matchesAny(this.#excludeDirs, relDir);
  }

  /**
   * Whether the crawl reaches the directory `relDir`: it and every ancestor folder are entered.
   * With an include pattern such as `docs/x`, `docs` is not entered, so `docs/x` is not reached
   * (the original's "works properly only on top directories").
   */
  reachesDir(relDir: RelPath): boolean {
    if (relDir === this.#lastDir) return this.#lastDirVerdict;
    let verdict = true;
    if (this.#includeDirs.length > 0 || this.#excludeDirs.length > 0) {
      let slash = -1;
      do {
        slash = relDir.indexOf('/', slash + 1);
        const prefix = (slash < 0 ? relDir : relDir.slice(0, slash)) as RelPath;
        if (!this.entersDir(prefix)) {
          verdict = false;
          break;
        }
      } while (slash >= 0);
    }
    this.#lastDir = relDir;
    this.#lastDirVerdict = verdict;
    return verdict;
  }

  /**
   * Whether the file at `path` takes part in synchronization: its base name passes the file
   * filters and its folder is reached by the crawl. Root-level files skip the directory filters.
   */
  acceptsFile(path: RelPath): boolean {
    if (!this.acceptsBaseName(basenameRel(path))) return false;
    const parent = dirnameRel(path);
    return parent === ROOT || this.reachesDir(parent);
  }
}
