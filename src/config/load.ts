/**
 * Finds and reads the configuration file, and supplies the resolver with the real environment
 * (home folder, current folder, host name, file access). The only module of `config/` with I/O,
 * and the only place of escale that reads environment variables.
 */
import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir, hostname } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { EscaleError } from '../core/errors.js';
import { globalSecrets, type SecretRegistry } from '../core/redact.js';
import { parseConfigText } from './parse.js';
import { configPaths, inaccessible, resolveConfig, type FileProbe, type PathKind } from './resolve.js';
import type { ClientConfig, GlobalConfig } from './schema.js';
import { expandHome } from './values.js';

/** A configuration file read and validated. */
export interface LoadedConfig {
  /** Absolute path of the file. */
  file: string;
  /** Folder of the file (CFGDIR). */
  configDir: string;
  /** File name without its last extension (`escale` for `escale.conf`). */
  baseName: string;
  global: GlobalConfig;
  /** One entry per client section, in file order. */
  clients: ClientConfig[];
  /** Non-fatal remarks (`file:line: text`), to be logged at WARNING. */
  warnings: string[];
}

/** Options of loadConfig (all optional; defaults are the real process). */
export interface LoadOptions {
  /** Home folder (default: HOME, else os.homedir()). */
  home?: string;
  /** Folder against which relative paths are resolved (default process.cwd()). */
  cwd?: string;
  /** Host name used as default client name (default os.hostname()). */
  hostname?: string;
  /** Backend-specific keys accepted in addition to the built-in ones. */
  extraKeys?: readonly string[];
  /** Registry where passwords and passphrases are recorded for redaction (default: process-wide). */
  secrets?: SecretRegistry;
}

/** The real file system, as the resolver sees it. */
export const nodeFileProbe: FileProbe = {
  kind(path: string): PathKind {
    try {
      const s = statSync(path);
      return s.isFile() ? 'file' : s.isDirectory() ? 'dir' : 'other';
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // why: EACCES, EIO and the like say nothing about existence: reported as such, never as "missing".
      return code === 'ENOENT' || code === 'ENOTDIR' ? 'missing' : 'inaccessible';
    }
  },
  read: (path: string) => readFileSync(path),
  problem(path: string): string {
    try {
      statSync(path);
      return 'no problem found any more';
    } catch (error) {
      return (error as Error).message;
    }
  },
};

/** The home folder: $HOME when set, else what the OS says. */
export function homeFolder(): string {
  return process.env['HOME'] || homedir();
}

/** The default configuration files, in lookup order (configuration.md C10: per-user files first, then /etc). */
export function defaultConfigCandidates(home = homeFolder()): string[] {
  return [join(home, '.config', 'escale', 'escale.conf'), join(home, '.escale', 'escale.conf'), '/etc/escale.conf'];
}

/**
 * The configuration file to use: `explicit` (must exist) or the first existing default candidate.
 * Throws EscaleError('Config') with a hint to run `escale -i` when there is none; never creates files.
 */
export function findConfigFile(explicit?: string, options: { home?: string; cwd?: string } = {}): string {
  const home = options.home ?? homeFolder();
  const cwd = options.cwd ?? process.cwd();
  if (explicit !== undefined) {
    const path = resolve(cwd, expandHome(explicit, home));
    const kind = nodeFileProbe.kind(path);
    if (kind === 'missing') throw new EscaleError('Config', `file not found: ${explicit}`, { file: path, hint: 'check the -c path' });
    if (kind === 'inaccessible') throw new EscaleError('Config', inaccessible(nodeFileProbe, path), { file: path });
    if (kind !== 'file') throw new EscaleError('Config', `not a regular file: ${explicit}`, { file: path });
    return path;
  }
  const candidates = defaultConfigCandidates(home);
  const found = candidates.find((c) => nodeFileProbe.kind(c) !== 'missing');
  // why: a default file that cannot be looked at must not be skipped for the next one (or for "none found").
  if (found !== undefined && nodeFileProbe.kind(found) === 'inaccessible') throw new EscaleError('Config', inaccessible(nodeFileProbe, found), { file: found });
  if (found !== undefined && nodeFileProbe.kind(found) !== 'file') throw new EscaleError('Config', `not a regular file: ${found}`, { file: found });
  if (found === undefined) {
    throw new EscaleError('Config', `cannot find a configuration file (looked for ${candidates.join(', ')}); create one with 'escale -i' or pass '-c FILE'`, {
      hint: "run 'escale -i' or give '-c FILE'",
    });
  }
  return found;
}

/** Parses and validates configuration text as if read from `file` (no file reading besides secret files). */
export function loadConfigText(text: string, file: string, options: LoadOptions = {}): LoadedConfig {
  const home = options.home ?? homeFolder();
  const cwd = options.cwd ?? process.cwd();
  const parsed = parseConfigText(text);
  const resolved = resolveConfig(parsed, {
    file,
    home,
    cwd,
    hostname: options.hostname ?? hostname(),
    fs: nodeFileProbe,
    secrets: options.secrets ?? globalSecrets,
    ...(options.extraKeys === undefined ? {} : { extraKeys: options.extraKeys }),
  });
  const { configDir, baseName } = configPaths(file, home);
  return { file, configDir, baseName, ...resolved };
}

/**
 * Validates only the named sections of configuration text (with its global settings), as
 * loadConfig would read them from `file`; throws EscaleError('Config') listing their problems.
 * `fs` replaces the real file system (the wizard adds the files it has not written yet).
 */
export function checkSections(text: string, file: string, sections: readonly string[], options: LoadOptions & { fs?: FileProbe } = {}): void {
  const parsed = parseConfigText(text);
  resolveConfig(
    { ...parsed, sections: parsed.sections.filter((s) => sections.includes(s.name)) },
    { file, home: options.home ?? homeFolder(), cwd: options.cwd ?? process.cwd(), hostname: options.hostname ?? hostname(), fs: options.fs ?? nodeFileProbe, ...(options.extraKeys === undefined ? {} : { extraKeys: options.extraKeys }) },
  );
}

/** Finds (configuration.md C10), reads and validates the configuration; throws EscaleError('Config') listing every problem. */
export async function loadConfig(path?: string, options: LoadOptions = {}): Promise<LoadedConfig> {
  const file = findConfigFile(path, options);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new EscaleError('Config', `cannot read configuration file '${file}': ${(error as Error).message}`, { file, cause: error });
  }
  return loadConfigText(text, file, options);
}

/**
 * Flags read from the environment for the command line: ESCALE_DEBUG=1 shows stack traces;
 * ESCALE_STATS_FILE=<path> appends relay call counters and resource usage at exit (benchmarks).
 */
export function environmentFlags(): { debug: boolean; statsFile?: string } {
  const value = process.env['ESCALE_DEBUG'] ?? '';
  const statsFile = process.env['ESCALE_STATS_FILE'] ?? '';
  return { debug: value !== '' && value !== '0' && value.toLowerCase() !== 'false', ...(statsFile === '' ? {} : { statsFile }) };
}

/** The folders of PATH, where executables such as rclone are looked for. */
export function executableFolders(): string[] {
  return (process.env['PATH'] ?? '').split(delimiter).filter((folder) => folder !== '');
}
