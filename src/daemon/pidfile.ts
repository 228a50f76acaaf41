import { readFileSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import { EscaleError, fromSystemError } from '../core/errors.js';

/**
 * Where the PID file of a configuration lives (configuration.md C10): `/var/run/BASE.pid` for a
 * configuration under `/etc`, else `CFGDIR/BASE.pid`.
 */
export function pidFilePath(configDir: string, baseName: string): string {
  return configDir === '/etc' || configDir.startsWith('/etc/') ? join('/var/run', `${baseName}.pid`) : join(configDir, `${baseName}.pid`);
}

/** The PID file of a configuration file path (its folder and its name without the last extension). */
export function pidFileOfConfig(configFile: string): string {
  const name = basename(configFile);
  return pidFilePath(dirname(configFile), name.slice(0, name.length - extname(name).length) || name);
}

/** Whether `pid` is a live escale process (not a recycled PID of another program). */
export function isEscaleProcess(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    // why: EPERM means the process exists but belongs to someone else: not ours to manage.
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return cmdline.split('\0').some((arg) => /(^|\/)escale(\.js)?$/.test(arg));
  } catch {
    // why: without /proc we cannot check the identity; a live PID is the best we know.
    return true;
  }
}

/**
 * Reads the main PID of a PID file (first line, as escale 0.7 writes it); undefined when there is
 * none, or when its first line is not a PID (a stale file to replace). A file that exists but cannot
 * be read throws (its real cause attached): "escale is not running" cannot be concluded from it.
 */
export async function readPidFile(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    const translated = fromSystemError(error, path);
    throw new EscaleError(translated.code, `cannot read the PID file '${path}', so whether escale is already running with this configuration is unknown: ${translated.message}`, { path, cause: error });
  }
  const first = text.split('\n')[0]?.trim() ?? '';
  return /^\d+$/.test(first) ? Number(first) : undefined;
}

/** A PID file held by this process; `release()` removes it if it still names us. */
export interface HeldPidFile {
  readonly path: string;
  release(): Promise<void>;
}

/**
 * Creates the PID file exclusively with this process's PID. A file naming a dead or foreign
 * process is stale and replaced; one naming a live escale process is a Usage error
 * ("already running").
 */
export async function acquirePidFile(path: string, pid = process.pid): Promise<HeldPidFile> {
  for (let attempt = 0; attempt < 2; attempt += 1) {
    try {
      const handle = await open(path, 'wx', 0o644);
      await handle.writeFile(`${pid}\n`);
      await handle.close();
      return {
        path,
        release: async () => {
          // why: at exit there is nobody to tell; a PID file that cannot be read or removed any more is
          // reported by the next start (readPidFile) or replaced by it (it names a dead process).
          const named = await readPidFile(path).catch(() => undefined);
          if (named === pid) await unlink(path).catch(() => undefined);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new EscaleError('PermissionDenied', `cannot create the PID file '${path}': ${(error as Error).message}`, { path, cause: error });
      }
      const other = await readPidFile(path);
      if (other !== undefined && other !== pid && isEscaleProcess(other)) {
        throw new EscaleError('Usage', `escale is already running with this configuration (pid ${other}); stop it with 'escalectl stop' or delete '${path}' if it is not running`, { path });
      }
      try {
        await unlink(path);
      } catch (unlinkError) {
        // why: another start may have removed it first (ENOENT); anything else is why the file cannot be replaced.
        if ((unlinkError as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new EscaleError('PermissionDenied', `cannot replace the stale PID file '${path}': ${(unlinkError as Error).message}`, { path, cause: unlinkError });
        }
      }
    }
  }
  throw new EscaleError('PermissionDenied', `cannot create the PID file '${path}': another process keeps creating it`, { path });
}
