// Shared helpers for end-to-end tests: real escale processes, real folders, one relay.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, type Dirent } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';

/** Path of the built `escale` command. */
export const ESCALE_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/escale.js');

/** Path of the built `escalectl` command. */
export const ESCALECTL_BIN = resolve(dirname(fileURLToPath(import.meta.url)), '../../src/cli/escalectl.js');

/**
 * How to run a command without root's privileges (tests run as root; permissions only bite others):
 * as another user (`uid`/`gid`), and/or through a wrapper command (`prefix`, e.g. `setpriv ...`).
 */
export interface RunAs {
  readonly uid?: number;
  readonly gid?: number;
  readonly prefix?: readonly string[];
}

/** Spawns `node bin args` as `as` says. */
function spawnNode(bin: string, args: string[], options: SpawnOptions, as: RunAs | undefined): ChildProcess {
  const ids = { ...(as?.uid === undefined ? {} : { uid: as.uid }), ...(as?.gid === undefined ? {} : { gid: as.gid }) };
  const [command, ...rest] = [...(as?.prefix ?? []), process.execPath, bin, ...args] as [string, ...string[]];
  return spawn(command, rest, { ...options, ...ids });
}

/** A temporary folder removed by `cleanup()`. */
export async function workspace(prefix = 'escale-e2e-'): Promise<{ dir: string; cleanup(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** Builds configuration text: `globals` first, then one `[section]` per client. */
export function configText(globals: Record<string, string | number>, sections: Record<string, Record<string, string | number>>): string {
  const lines = Object.entries(globals).map(([k, v]) => `${k} = ${v}`);
  for (const [name, keys] of Object.entries(sections)) {
    lines.push('', `[${name}]`, ...Object.entries(keys).map(([k, v]) => `${k} = ${v}`));
  }
  return `${lines.join('\n')}\n`;
}

/** Output of a finished escale process. */
export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of `runProcess`, `runEscale` and `runEscalectl`. */
export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
  /** Written to the standard input (closed without it). */
  input?: string;
  /** Run as this user (node programs only). */
  as?: RunAs;
  /** Working folder (default: this process's). */
  cwd?: string;
}

function spawnOptions(options: RunOptions): SpawnOptions {
  return { env: { ...process.env, ...options.env }, stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...(options.cwd === undefined ? {} : { cwd: options.cwd }) };
}

/** Feeds `input`, collects the output of `child` until it ends; kills it after the time limit. */
function collect(child: ChildProcess, options: RunOptions, defaultTimeoutMs: number): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    child.stdin?.on('error', () => undefined); // why: EPIPE when the command exits before reading its input
    child.stdin?.end(options.input);
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? defaultTimeoutMs);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
  });
}

/** Runs a program to completion, collecting its output; killed after `timeoutMs` (default 120 s). */
export function runProcess(file: string, args: string[], options: RunOptions = {}): Promise<RunResult> {
  return collect(spawn(file, args, spawnOptions(options)), options, 120_000);
}

/** Runs a built command with node to completion. */
function runProgram(bin: string, args: string[], options: RunOptions, defaultTimeoutMs: number): Promise<RunResult> {
  return collect(spawnNode(bin, args, spawnOptions(options), options.as), options, defaultTimeoutMs);
}

/** Runs `escale` with the given arguments to completion. */
export function runEscale(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runProgram(ESCALE_BIN, args, options, 120_000);
}

/** Runs `escalectl` with the given arguments to completion. */
export function runEscalectl(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return runProgram(ESCALECTL_BIN, args, options, 60_000);
}

/**
 * Creates, in `dir`, a `relay` folder, one local folder per section and `escale.conf` with a `file`
 * relay for each section (its name as client name), cache and log in `dir`; returns the paths.
 */
export async function fileRelayConfig(dir: string, sections: Record<string, Record<string, string | number>>, globals: Record<string, string | number> = {}): Promise<{ relay: string; config: string; log: string }> {
  const relay = join(dir, 'relay');
  await mkdir(relay);
  const full: Record<string, Record<string, string | number>> = {};
  for (const [name, keys] of Object.entries(sections)) {
    await mkdir(join(dir, name), { recursive: true });
    full[name] = { 'client name': name, 'local path': join(dir, name), protocol: 'file', 'relay path': relay, ...keys };
  }
  const config = join(dir, 'escale.conf');
  const log = join(dir, 'escale.log');
  await writeFile(config, configText({ 'cache dir': join(dir, 'cache'), 'log file': log, refresh: 2, ...globals }, full));
  return { relay, config, log };
}

/** Starts a long-running `escale` process (as `as` when given); output is collected. */
export function startEscale(args: string[], env?: NodeJS.ProcessEnv, as?: RunAs): { child: ChildProcess; output(): string; exited: Promise<RunResult> } {
  const child = spawnNode(ESCALE_BIN, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }, as);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<RunResult>((res) => child.on('close', (code, signal) => res({ code, signal, stdout, stderr })));
  return { child, output: () => stdout + stderr, exited };
}

/** Writes a file (creating parents) and optionally sets its mtime in seconds. */
export async function put(root: string, path: string, content: string | Buffer, mtimeSec?: number): Promise<void> {
  const full = join(root, path);
  await mkdir(dirname(full), { recursive: true });
  await writeFile(full, content);
  if (mtimeSec !== undefined) await utimes(full, mtimeSec, mtimeSec);
}

/** Fingerprint of one file: sha256 and integer-second mtime. */
export interface FileState {
  sha256: string;
  size: number;
  mtimeSec: number;
}

/** Visits every entry below `root` depth first (unreadable folders are passed over). */
async function walk(root: string, visit: (full: string, entry: Dirent) => Promise<boolean | void>): Promise<void> {
  async function inside(dir: string): Promise<void> {
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      const full = join(dir, entry.name);
      // why: the visitor returns false to keep the walk out of a folder.
      if ((await visit(full, entry)) !== false && entry.isDirectory()) await inside(full);
    }
  }
  await inside(root);
}

/** Every non-hidden file under `root` (relative path → state), like the scanner sees them. */
export async function tree(root: string, options: { includeHidden?: boolean } = {}): Promise<Map<string, FileState>> {
  const out = new Map<string, FileState>();
  await walk(root, async (full, entry) => {
    if (!options.includeHidden && entry.name.startsWith('.')) return false;
    if (entry.isFile()) {
      const info = await stat(full);
      out.set(relative(root, full).split('\\').join('/'), { sha256: await sha256File(full), size: info.size, mtimeSec: Math.trunc(info.mtimeMs / 1000) });
    }
    return true;
  });
  return out;
}

/** Streams a file through sha256. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** Every path under `root`, hidden ones included (for "nothing left behind" checks). */
export async function allPaths(root: string): Promise<string[]> {
  const out: string[] = [];
  await walk(root, async (full) => {
    out.push(relative(root, full));
  });
  return out.sort();
}

/** Polls `check` until it returns true or the time runs out. */
export async function waitFor(check: () => Promise<boolean>, timeoutMs: number, stepMs = 200): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, stepMs));
  }
  return check();
}

/** Writes `mib` MiB of random data as a stream (never holding it all in memory), creating parents. */
export async function bigFile(path: string, mib: number): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const chunks = (function* () {
    for (let i = 0; i < mib; i += 1) yield randomBytes(1024 * 1024);
  })();
  await pipeline(Readable.from(chunks), createWriteStream(path));
}

/** Polls (every 2 ms, to catch short-lived lock files) until `path` exists and matches `pattern`. */
export async function waitForContent(path: string, pattern: RegExp, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      if (pattern.test(readFileSync(path, 'utf8'))) return true;
    } catch {
      // not there yet
    }
    await new Promise((r) => setTimeout(r, 2));
  }
  return false;
}
