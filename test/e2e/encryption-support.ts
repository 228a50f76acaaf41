// Shared pieces of the end-to-end encryption tests: a workspace with a `file` relay, clients with
// their own key files, and checks on what the relay holds.
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { allPaths, configText, runEscale, workspace, type RunResult } from './harness.js';

/** The 0.7 fixtures (key files and relays written by the Python client). */
export const FIXTURES = resolve(dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/escale-0.7');

/** Written into every test file: it must never be found on the relay. */
export const MARKER = 'PLAINTEXT-MARKER-3c1e9a-never-on-the-relay';

/** A workspace with a relay folder, one local folder per client and one configuration file. */
export interface EncryptedSetup {
  readonly dir: string;
  readonly relay: string;
  readonly config: string;
  readonly log: string;
  folder(name: string): string;
  /** Rewrites the configuration (e.g. to give a client another key). */
  configure(sections: Record<string, Record<string, string | number>>): Promise<void>;
  /** `escale --once` for one section; the result is returned whatever the exit code. */
  run(section: string, extra?: string[]): Promise<RunResult>;
  /** `escale --once` for one section, which must succeed. */
  once(section: string): Promise<RunResult>;
  cleanup(): Promise<void>;
}

/** Creates a workspace; each section gets `client name`, `local path`, the file relay and its own keys. */
export async function encryptedSetup(sections: Record<string, Record<string, string | number>>): Promise<EncryptedSetup> {
  const ws = await workspace('escale-enc-');
  const relay = join(ws.dir, 'relay');
  await mkdir(relay);
  const config = join(ws.dir, 'escale.conf');
  const log = join(ws.dir, 'escale.log');
  const folder = (name: string): string => join(ws.dir, name);
  const configure = async (s: Record<string, Record<string, string | number>>): Promise<void> => {
    const full: Record<string, Record<string, string | number>> = {};
    for (const [name, keys] of Object.entries(s)) {
      await mkdir(folder(name), { recursive: true });
      full[name] = { 'client name': name, 'local path': folder(name), protocol: 'file', 'relay path': relay, ...keys };
    }
    await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': log, refresh: 2 }, full));
  };
  await configure(sections);
  const run = (section: string, extra: string[] = []): Promise<RunResult> => runEscale(['--once', '-c', config, '--section', section, ...extra]);
  return {
    dir: ws.dir,
    relay,
    config,
    log,
    folder,
    configure,
    run,
    async once(section) {
      const result = await run(section);
      if (result.code !== 0) throw new Error(`escale --once [${section}] exited with ${result.code}:\n${result.stderr}`);
      return result;
    },
    cleanup: ws.cleanup,
  };
}

/** Every regular file under `root` (hidden ones included), as paths relative to it. */
export async function allFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const path of await allPaths(root)) {
    if ((await stat(join(root, path))).isFile()) out.push(path.split('\\').join('/'));
  }
  return out.sort();
}

/** Relay data files: those whose base name does not start with a dot (locks, placeholders and indices do). */
export async function dataFiles(root: string): Promise<string[]> {
  return (await allFiles(root)).filter((p) => !p.split('/').pop()!.startsWith('.'));
}

/** The relay files (any kind) that contain `needle`, as text or as bytes. */
export async function filesContaining(root: string, needle: string): Promise<string[]> {
  const hits: string[] = [];
  const bytes = Buffer.from(needle, 'utf8');
  for (const path of await allFiles(root)) {
    if ((await readFile(join(root, path))).includes(bytes)) hits.push(path);
  }
  return hits;
}

/** Length of the Fernet token of `n` plaintext bytes (relay-format.md P5.3). */
export function fernetTokenLength(n: number): number {
  return 4 * Math.ceil((57 + 16 * (Math.floor(n / 16) + 1)) / 3);
}

/**
 * A Python with the `cryptography` package: Debian's /usr/bin/python3 first (python3-cryptography),
 * then the `python3` on PATH. Undefined when neither has it.
 */
export function pythonWithCryptography(): string | undefined {
  for (const candidate of ['/usr/bin/python3', 'python3']) {
    const probe = spawnSync(candidate, ['-c', 'import cryptography.fernet'], { encoding: 'utf8' });
    if (probe.status === 0) return candidate;
  }
  return undefined;
}

/** Prints a skip notice that stands out in the test output. */
export function loudSkip(what: string, why: string): void {
  const bar = '*'.repeat(78);
  console.log(`SKIP ${bar}\nSKIP ${what}: ${why}\nSKIP ${bar}`);
}
