/**
 * The file writing of the wizard and of `--import`: secret files with mode 0600 (never
 * overwriting), key files through the genkey code, and the configuration file replaced atomically
 * (temporary file, then rename), with mode 0600 when it holds a secret. Also the real WizardEnv.
 */
import { spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { chmod, mkdir, open, readFile, realpath, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { ConfigDocument } from '../../config/edit.js';
import { executableFolders, homeFolder, nodeFileProbe } from '../../config/load.js';
import { parseConfigText } from '../../config/parse.js';
import { OPTIONS, SECRET_EXTRA_KEYS } from '../../config/schema.js';
import { expandHome } from '../../config/values.js';
import { EscaleError, fromSystemError } from '../../core/errors.js';
import { relPath } from '../../core/relpath.js';
import { generateKeyFile } from '../../local/key-file.js';
import { writeFileAtomically, type ExpectedPrior } from '../../local/local-writer.js';
import { rcloneRemotes } from '../../relay/backends/rclone/rclone-remote.js';
import type { WizardEnv, WizardPlan } from './state.js';

const SECRET_KEYS = new Set([...OPTIONS.filter((o) => o.secret).flatMap((o) => o.keys), ...SECRET_EXTRA_KEYS]);

/**
 * Whether configuration text holds a secret in clear: a password, passphrase or secret backend
 * key whose value is not the path of an existing file.
 */
export function holdsSecret(text: string, configDir: string): boolean {
  const parsed = parseConfigText(text);
  return [parsed.globals, ...parsed.sections].some((section) =>
    [...section.entries.values()].some((e) => SECRET_KEYS.has(e.key) && e.value !== '' && nodeFileProbe.kind(resolve(configDir, expandHome(e.value, homeFolder()))) !== 'file'),
  );
}

/** Creates a file that must not exist yet, with mode 0600, holding `content`. */
async function writeSecretFile(path: string, content: string | Buffer): Promise<void> {
  let handle;
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    await handle.writeFile(content);
    await handle.sync();
  } catch (error) {
    throw fromSystemError(error, path);
  } finally {
    await handle?.close();
  }
}

/**
 * Replaces (or creates) the configuration file atomically. `expected` is the file as it was read
 * (null: it did not exist); the write is refused (Conflict) if it changed meanwhile. A file that
 * holds a secret gets mode 0600 before any secret reaches the disk.
 */
export async function writeConfigFile(path: string, text: string, expected: ExpectedPrior): Promise<void> {
  // why: a configuration kept elsewhere and linked into place stays linked; its target is replaced.
  const file = await realpath(path).catch(() => path);
  const folder = dirname(file);
  await mkdir(folder, { recursive: true, mode: 0o700 }).catch((error: unknown) => {
    throw fromSystemError(error, folder);
  });
  let prior = expected;
  if (holdsSecret(text, folder)) {
    if (prior === null) {
      // why: the atomic writer keeps the mode of the file it replaces; start from an empty 0600 one.
      await writeSecretFile(file, '');
      const created = await stat(file);
      prior = { size: created.size, mtimeMs: created.mtimeMs };
    } else await chmod(file, 0o600).catch((error: unknown) => {
      throw fromSystemError(error, file);
    });
  }
  await writeFileAtomically({ root: folder, path: relPath(basename(file)), source: Readable.from([Buffer.from(text, 'utf8')]), expectedPrior: prior });
}

/** The state of a file for writeConfigFile's `expected`, and its text ('' and null when missing). */
export async function readConfigFile(file: string): Promise<{ text: string; prior: ExpectedPrior }> {
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new EscaleError('Config', `'${file}' is not a regular file`, { file });
    return { text: await readFile(file, 'utf8'), prior: { size: info.size, mtimeMs: info.mtimeMs } };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', prior: null };
    throw fromSystemError(error, file);
  }
}

/**
 * Writes what the wizard planned: folders, credential files, key files and copies, then the
 * configuration file last, so that it never names a file that was not written.
 */
export async function applyPlan(plan: WizardPlan, expected: ExpectedPrior): Promise<void> {
  for (const folder of plan.folders) {
    await mkdir(folder, { recursive: true }).catch((error: unknown) => {
      throw fromSystemError(error, folder);
    });
  }
  await mkdir(dirname(plan.configFile), { recursive: true, mode: 0o700 }).catch((error: unknown) => {
    throw fromSystemError(error, dirname(plan.configFile));
  });
  for (const file of plan.secretFiles) await writeSecretFile(file.path, file.content);
  for (const key of plan.keyFiles) await generateKeyFile(key.path, key.algorithm);
  for (const copy of plan.keyCopies) await writeSecretFile(copy.to, await readFile(copy.from).catch((error: unknown) => Promise.reject(fromSystemError(error, copy.from))));
  // why: the text was built by ConfigDocument; parse it once more so a bug cannot write a broken file.
  ConfigDocument.parse(plan.text);
  await writeConfigFile(plan.configFile, plan.text, expected);
}

/** Finds an executable on PATH. */
function findOnPath(name: string): string | undefined {
  for (const folder of executableFolders()) {
    const candidate = join(folder, name);
    if (nodeFileProbe.kind(candidate) === 'file') return candidate;
  }
  return undefined;
}

/** The real environment of the wizard; `terminal` enables running `rclone config` on it. */
export function nodeWizardEnv(configFile: string, terminal: { pause(): void; resume(): void } | undefined): WizardEnv {
  return {
    configFile,
    cwd: process.cwd(),
    home: homeFolder(),
    hostname: hostname(),
    fs: nodeFileProbe,
    findExecutable: findOnPath,
    rcloneRemotes: (binary) => rcloneRemotes(binary),
    ...(terminal === undefined
      ? {}
      : {
          runRcloneConfig: (binary: string) =>
            new Promise<void>((resolve) => {
              terminal.pause();
              const child = spawn(binary, ['config'], { stdio: 'inherit' });
              const done = (): void => {
                terminal.resume();
                resolve();
              };
              child.on('error', done);
              child.on('exit', done);
            }),
        }),
  };
}
