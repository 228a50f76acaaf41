// Helpers for conformance harnesses that run a real server on 127.0.0.1: ports, processes,
// readiness, temporary folders, certificates and the skip policy. A harness for one server is
// `serverHarness(suite, { binaries, start(env) { ... } })`, about 30 lines.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Backend } from '../../../src/relay/backend.js';
import type { BackendHarness, Skip, StartedBackend, SuiteOptions } from '../backend-suite.js';

/** Whether we run under CI, where a missing server is a failure rather than a skip. */
export function inCi(): boolean {
  return process.env.CI === 'true';
}

/** Prints the loud skip line; under CI=true throws instead, so the suite fails. */
export function reportSkip(suite: string, reason: string): void {
  if (inCi()) throw new Error(`${suite} cannot run under CI=true: ${reason}`);
  console.error(`SKIP ${suite}: ${reason}`);
}

/** Finds an executable by name on PATH and in the sbin folders; undefined when absent. */
export function findBinary(name: string, extraDirs: string[] = ['/usr/sbin', '/sbin', '/usr/local/sbin']): string | undefined {
  if (name.includes('/')) return isExecutable(name) ? name : undefined;
  const dirs = [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), ...extraDirs];
  for (const dir of dirs) {
    const candidate = join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Asks the kernel for a free TCP port on `host`. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A process started for a test, with its recent output kept for diagnostics. */
export interface ServerProcess {
  readonly pid: number;
  readonly name: string;
  /** The last 64 KiB of stdout and stderr. */
  output(): string;
  /** Exit code (or signal name) once the process ended; undefined while it runs. */
  exitStatus(): string | undefined;
  /** SIGTERM, then SIGKILL after `graceMs` (default 3 s); resolves once the process is gone. */
  stop(graceMs?: number): Promise<void>;
}

/** Options of `startProcess`. */
export interface StartOptions {
  readonly cwd?: string;
  /** Added to (or, with `replaceEnv`, instead of) the current environment. */
  readonly env?: Record<string, string | undefined>;
  readonly replaceEnv?: boolean;
  /** Display name for messages (default: the command). */
  readonly name?: string;
  /** Bytes written to the process's stdin, then closed (default: stdin closed at once). */
  readonly stdin?: string;
}

/** Starts a server process in the foreground of the test (never through npx: its pid would not be the server's). */
export function startProcess(command: string, args: string[], options: StartOptions = {}): ServerProcess {
  const env = options.replaceEnv ? { ...options.env } : { ...process.env, ...options.env };
  // why: its own process group, so that workers it forks later (apache, proftpd) can all be killed
  // with it; an orphaned worker would keep the test process (and CI) waiting forever on its pipes.
  const child: ChildProcess = spawn(command, args, { cwd: options.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  const name = options.name ?? command;
  let log = '';
  const keep = (chunk: Buffer): void => {
    log = (log + chunk.toString('utf8')).slice(-64 * 1024);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let status: string | undefined;
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      status = signal ?? String(code);
      resolve();
      // why: a leftover worker holding our pipes must not keep this process alive; the last output is read first.
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, 500).unref();
    });
    child.once('error', (error) => {
      status = `spawn error: ${error.message}`;
      resolve();
    });
  });
  // why: a process that exits before reading its input makes the write fail with EPIPE; its exit status tells the story.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(options.stdin ?? '');
  return {
    pid: child.pid ?? -1,
    name,
    output: () => log,
    exitStatus: () => status,
    async stop(graceMs = 3000) {
      if (status === undefined) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      if (child.pid !== undefined) await killGroup(child.pid);
    },
  };
}

/** Options of the wait helpers. */
export interface WaitOptions {
  readonly timeoutMs?: number;
  /** Fails early, with its output, when this process exits while we wait. */
  readonly process?: ServerProcess;
}

/** Polls until a TCP connection to `host:port` succeeds. */
export async function waitForPort(port: number, options: WaitOptions & { host?: string } = {}): Promise<void> {
  const host = options.host ?? '127.0.0.1';
  await poll(`${host}:${port}`, options, () =>
    new Promise<boolean>((resolve) => {
      const socket = createConnection({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    }),
  );
}

/** Polls until `url` answers any HTTP status (401 counts as ready); TLS certificates are not checked. */
export async function waitForHttp(url: string, options: WaitOptions = {}): Promise<void> {
  const request = url.startsWith('https:') ? httpsRequest : httpRequest;
  await poll(url, options, () =>
    new Promise<boolean>((resolve) => {
      const req = request(url, { method: 'GET', rejectUnauthorized: false, timeout: 1000 }, (res) => {
        res.resume();
        resolve(true);
      });
      req.once('error', () => resolve(false));
      req.once('timeout', () => {
        req.destroy();
        resolve(false);
      });
      req.end();
    }),
  );
}

async function poll(what: string, options: WaitOptions, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + (options.timeoutMs ?? 15_000);
  for (;;) {
    if (await probe()) return;
    const exited = options.process?.exitStatus();
    if (exited !== undefined) {
      throw new Error(`${options.process?.name} exited (${exited}) before ${what} was ready:\n${options.process?.output()}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`${what} not ready after ${options.timeoutMs ?? 15_000} ms${options.process ? `; output:\n${options.process.output()}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** A temporary folder and how to remove it. */
export interface TempDir {
  readonly path: string;
  remove(): Promise<void>;
}

/** Makes a fresh folder under the system temporary folder. */
export async function makeTempDir(prefix = 'escale-test-'): Promise<TempDir> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

/** Files of a self-signed certificate for localhost and 127.0.0.1. */
export interface Certificate {
  readonly certFile: string;
  readonly keyFile: string;
  /** Key then certificate in one file (pure-ftpd, some others). */
  readonly combinedFile: string;
}

/** Generates a self-signed RSA certificate with openssl into `dir`. */
export async function selfSignedCertificate(dir: string): Promise<Certificate> {
  const openssl = findBinary('openssl');
  if (!openssl) throw new Error('openssl is not installed');
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  const combinedFile = join(dir, 'combined.pem');
  await run(openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '3650',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  await writeFile(combinedFile, Buffer.concat([await readFile(keyFile), await readFile(certFile)]));
  return { certFile, keyFile, combinedFile };
}

/** Runs a command to completion; rejects with its output on a non-zero exit. */
export function run(command: string, args: string[], options: { cwd?: string; env?: Record<string, string | undefined> } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

/** What a server harness's `start` gets: a scratch folder and helpers whose resources are released at stop. */
export interface ServerEnv {
  /** Scratch folder, removed at stop. */
  readonly dir: string;
  /** Absolute paths of the binaries the harness asked for, by name. */
  readonly binaries: Readonly<Record<string, string>>;
  freePort(): Promise<number>;
  /** Starts a process that is stopped (SIGTERM, then SIGKILL) at stop. */
  spawn(command: string, args: string[], options?: StartOptions): ServerProcess;
  waitForPort(port: number, options?: WaitOptions & { host?: string }): Promise<void>;
  waitForHttp(url: string, options?: WaitOptions): Promise<void>;
  /** A self-signed certificate in the scratch folder (made once). */
  certificate(): Promise<Certificate>;
  /** Writes a file (a server configuration) into the scratch folder; returns its path. */
  writeFile(name: string, text: string): Promise<string>;
  /** Registers a clean-up step, run in reverse order at stop. */
  defer(step: () => Promise<void> | void): void;
}

/** The part a concrete server harness writes. */
export interface ServerHarnessSpec {
  /** Executables needed; a missing one skips the suite (fails it under CI). */
  readonly binaries?: readonly string[];
  /** A further precondition: returns a skip reason, or undefined to go on. */
  readonly precondition?: () => Promise<string | undefined> | string | undefined;
  /** Starts the server and opens the backend on it (with the folder its root maps to, when the server stores names as they are). */
  start(env: ServerEnv): Promise<Backend | { readonly backend: Backend; readonly localRoot: string }>;
  readonly options?: SuiteOptions;
}

/** A scratch environment for servers, and how to stop everything started in it. */
export interface OpenedServerEnv {
  readonly env: ServerEnv;
  /** Runs the clean-up steps in reverse order (servers stopped, scratch folder removed). */
  stop(): Promise<void>;
}

/**
 * Checks binaries and the precondition, then gives a scratch ServerEnv (for tests that drive
 * servers themselves, such as end-to-end tests that restart one); a Skip when something is missing.
 */
export async function openServerEnv(suite: string, spec: Pick<ServerHarnessSpec, 'binaries' | 'precondition'>): Promise<OpenedServerEnv | Skip> {
  const binaries: Record<string, string> = {};
  for (const name of spec.binaries ?? []) {
    const found = findBinary(name);
    if (!found) return { skip: `${name} is not installed (see docs/test-servers.md)` };
    binaries[name] = found;
  }
  const reason = await spec.precondition?.();
  if (reason !== undefined) return { skip: reason };
  const steps: Array<() => Promise<void> | void> = [];
  const scratch = await makeTempDir(`escale-${suite.replace(/[^A-Za-z0-9]+/g, '-')}-`);
  steps.push(() => scratch.remove());
  let cert: Promise<Certificate> | undefined;
  const env: ServerEnv = {
    dir: scratch.path,
    binaries,
    freePort: () => freePort(),
    spawn(command, args, options) {
      const proc = startProcess(binaries[command] ?? command, args, { name: command, ...options });
      steps.push(() => proc.stop());
      return proc;
    },
    waitForPort,
    waitForHttp,
    certificate: () => (cert ??= selfSignedCertificate(scratch.path)),
    async writeFile(name, text) {
      const path = join(scratch.path, name);
      await writeFile(path, text);
      return path;
    },
    defer: (step) => {
      steps.push(step);
    },
  };
  const stop = async (): Promise<void> => {
    for (const step of steps.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        console.error(`${suite}: clean-up step failed: ${String(error)}`);
      }
    }
  };
  return { env, stop };
}

/** Builds a BackendHarness from a server spec: checks binaries, provides a scratch folder, and tears everything down. */
export function serverHarness(suite: string, spec: ServerHarnessSpec): BackendHarness {
  return {
    ...(spec.options ? { options: spec.options } : {}),
    async start(): Promise<StartedBackend | Skip> {
      const opened = await openServerEnv(suite, spec);
      if ('skip' in opened) return opened;
      try {
        const started = await spec.start(opened.env);
        const backend = 'backend' in started ? started.backend : started;
        return {
          backend,
          ...('localRoot' in started ? { localRoot: started.localRoot } : {}),
          async stop() {
            await backend.close().catch(() => undefined);
            await opened.stop();
          },
        };
      } catch (error) {
        await opened.stop();
        throw error;
      }
    },
  };
}

/**
 * Sends SIGKILL to a process and every process below it (found through /proc, Linux only), as a
 * crash would: forked session workers die with their parent. Resolves once `proc` has exited.
 */
export async function killTree(proc: ServerProcess): Promise<void> {
  // why: descendants that left the process group (session processes) are found through their parents.
  const pids = [proc.pid, ...(await descendants(proc.pid))];
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // why: already gone.
    }
  }
  await killGroup(proc.pid);
  while (proc.exitStatus() === undefined) await new Promise((r) => setTimeout(r, 20));
}

/** SIGKILLs the process group `pgid` (a server started by startProcess and its workers) until none of it runs. */
async function killGroup(pgid: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while ((await liveGroupMembers(pgid)).length > 0) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      return; // why: ESRCH, the group is gone.
    }
    if (Date.now() > deadline) throw new Error(`process group ${pgid} survives SIGKILL: ${(await liveGroupMembers(pgid)).join(', ')}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Pids of the processes of group `pgid` that are not zombies (an init that never reaps must not make us wait). */
async function liveGroupMembers(pgid: number): Promise<number[]> {
  const out: number[] = [];
  for (const { pid, state, group } of await processTable()) if (group === pgid && state !== 'Z') out.push(pid);
  return out;
}

/** Every process of the machine: pid, parent, process group and state, from /proc. */
async function processTable(): Promise<Array<{ pid: number; parent: number; group: number; state: string }>> {
  const out: Array<{ pid: number; parent: number; group: number; state: string }> = [];
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    const stat = await readFile(`/proc/${name}/stat`, 'utf8').catch(() => '');
    // why: the command name in parentheses may hold spaces; state, parent and group follow it.
    const [state, parent, group] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state !== undefined && Number.isInteger(Number(parent))) out.push({ pid: Number(name), parent: Number(parent), group: Number(group), state });
  }
  return out;
}

async function descendants(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for (const { pid, parent } of await processTable()) parents.set(pid, parent);
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const parent = queue.shift() as number;
    for (const [pid, ppid] of parents) {
      if (ppid === parent) {
        out.push(pid);
        queue.push(pid);
      }
    }
  }
  return out;
}
