// In-process clients for the reliability tests: real configuration, real openClient wiring (retry,
// limits, checksum cache, atomic writer), and a relay backend the test chooses and may make faulty.
import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { loadConfigText } from '../../src/config/load.js';
import type { ErrorCode } from '../../src/core/errors.js';
import { EscaleError } from '../../src/core/errors.js';
import { createLogger, memorySink, type LogRecord } from '../../src/core/log.js';
import type { Backend } from '../../src/relay/backend.js';
import { FaultyBackend } from '../../src/relay/wrap/faulty.js';
import { generateFernetKey } from '../../src/crypto/fernet.js';
import { openClient, type OpenedClient } from '../../src/daemon/client.js';
import { cipherFor } from '../../src/daemon/run.js';
import type { LocalPort } from '../../src/sync/engine.js';
import type { FailureTracker } from '../../src/sync/failure-tracker.js';

/** The protocol and encryption variants the in-process tests run in. */
export type KitVariant = 'placeholder' | 'placeholder-fernet' | 'index';

/** What one round did, or the error that ended it. */
export interface RoundOutcome {
  readonly ok: boolean;
  readonly transferred: number;
  readonly failed: number;
  /** Files, folders or pages still failing after the round (in their back-off, retried later). */
  readonly failing: number;
  readonly error?: EscaleError | Error;
}

/** One in-process client of a kit. */
export interface KitClient {
  readonly name: string;
  /** Absolute path of its local folder. */
  readonly folder: string;
  /** Its view of the relay; set `faults.rule` to inject faults. */
  readonly faults: FaultyBackend;
  /** Its tracked failures (files, folders, pages). */
  readonly failures: FailureTracker;
  /** Runs one round; an error is returned (and repair requested, as the client loop does). */
  round(): Promise<RoundOutcome>;
}

/** A workspace with clients sharing one relay backend. */
export interface Kit {
  readonly dir: string;
  readonly logs: LogRecord[];
  readonly clients: Record<string, KitClient>;
  /** Log messages at or above warning, joined by newlines (for assertion messages). */
  problems(): string;
  close(): Promise<void>;
}

/** Settings of `openKit`. */
export interface KitOptions {
  readonly variant: KitVariant;
  /** Client name → mode. */
  readonly clients: Record<string, 'shared' | 'upload' | 'download' | 'conservative'>;
  /** The relay every client sees (each through its own FaultyBackend). */
  readonly relay: Backend;
  readonly pullerCount?: number;
  /** Extra configuration keys for every client. */
  readonly keys?: Record<string, string | number>;
  /** An existing folder to work in (default: a new temporary one, removed by close()). */
  readonly dir?: string;
  /** Wraps a client's local repository (local faults). */
  readonly wrapLocal?: (client: string, local: LocalPort) => LocalPort;
  /** Clients follow their folders through file-system events, as a running daemon does. */
  readonly watch?: boolean;
}

/** A backend view that ignores close(), so that one client closing does not close the shared relay. */
class SharedView extends FaultyBackend {
  override async close(): Promise<void> {
    // why: the relay outlives each client; the test owns it.
  }
}

/** Opens in-process clients on a shared relay, as `escale` would from a configuration file. */
export async function openKit(options: KitOptions): Promise<Kit> {
  const dir = options.dir ?? (await mkdtemp(join(tmpdir(), 'escale-rel-')));
  const ownsDir = options.dir === undefined;
  const logs: LogRecord[] = [];
  const logger = createLogger([memorySink(logs)], 'kit');
  const keys: Record<string, string | number> = { checksum: 'yes', ...(options.keys ?? {}) };
  if (options.variant === 'placeholder-fernet') {
    const keyFile = join(dir, 'kit.passphrase');
    await writeFile(keyFile, generateFernetKey(), { mode: 0o600 });
    Object.assign(keys, { encryption: 'fernet', passphrase: keyFile });
  }
  if (options.variant === 'index') keys['index'] ??= 1;
  if (options.pullerCount !== undefined) keys['puller count'] = options.pullerCount;
  const lines = [`cache dir = ${join(dir, 'cache')}`, `log file = ${join(dir, 'escale.log')}`];
  for (const [name, mode] of Object.entries(options.clients)) {
    await mkdir(join(dir, name), { recursive: true });
    lines.push('', `[${name}]`, `client name = ${name}`, `local path = ${join(dir, name)}`, 'protocol = file', `relay path = ${dir}`, `mode = ${mode}`);
    for (const [k, v] of Object.entries(keys)) lines.push(`${k} = ${v}`);
  }
  const file = join(dir, 'kit.conf');
  const config = loadConfigText(`${lines.join('\n')}\n`, file, { home: dir, cwd: dir, hostname: 'kit' });
  const opened: OpenedClient[] = [];
  const clients: Record<string, KitClient> = {};
  for (const section of config.clients) {
    const view = new SharedView(options.relay, () => undefined);
    const clientLogger = logger.child(section.section);
    const wrapLocal = options.wrapLocal;
    const client = await openClient(section, {
      logger: clientLogger,
      cipher: (c) => cipherFor(c),
      openRelay: async () => view,
      ...(options.watch ? { watch: true } : {}),
      ...(wrapLocal ? { wrapLocal: (local: LocalPort) => wrapLocal(section.section, local) } : {}),
    });
    opened.push(client);
    clients[section.section] = {
      name: section.section,
      folder: section.localPath,
      faults: view,
      failures: client.failures,
      async round() {
        try {
          const report = await client.runner.round();
          return { ok: true, transferred: report.transferred, failed: report.failed, failing: report.failing ?? 0 };
        } catch (error) {
          // why: as the client loop does: the failed round is logged and repair runs next round.
          clientLogger.error(`round failed: ${(error as Error).message}`);
          client.runner.requestRepair();
          return { ok: false, transferred: 0, failed: 0, failing: client.failures.failingCount, error: error as Error };
        }
      },
    };
  }
  return {
    dir,
    logs,
    clients,
    problems: () => logs.filter((r) => r.level !== 'debug' && r.level !== 'info').map((r) => `${r.level} ${r.name}: ${r.message}`).join('\n'),
    async close() {
      await Promise.allSettled(opened.map((c) => c.close()));
      if (ownsDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes a file under `root` with a given whole-second mtime (creating folders). */
export async function writeAt(root: string, path: string, content: string | Buffer, mtimeSec: number): Promise<void> {
  const full = join(root, path);
  await mkdir(dirname(full), { recursive: true });
  await writeFile(full, content);
  await utimes(full, mtimeSec, mtimeSec);
}

/** Every regular file under `root` (hidden ones included) → sha256 of its content. */
export async function snapshot(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let entries;
  try {
    entries = await readdir(root, { recursive: true, withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (!entry.isFile()) continue;
    const full = join(entry.parentPath, entry.name);
    out.set(relative(root, full), createHash('sha256').update(await readFile(full)).digest('hex'));
  }
  return new Map([...out].sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** sha256 of a buffer or string, hex. */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The paths of a snapshot whose base name starts with a dot (temporaries, stores). */
export function hiddenPaths(files: Map<string, string>): string[] {
  return [...files.keys()].filter((p) => (p.split('/').pop() as string).startsWith('.'));
}

/** Whether an outcome failed with one of the codes. */
export function failedWith(outcome: RoundOutcome, ...codes: ErrorCode[]): boolean {
  return outcome.error instanceof EscaleError && codes.includes(outcome.error.code);
}

/** Runs rounds of the named clients in order until a whole pass transfers nothing and nothing fails or waits in its back-off (at most `max` passes). */
export async function settle(kit: Kit, names: string[], max = 8): Promise<void> {
  for (let pass = 0; pass < max; pass += 1) {
    let busy = false;
    for (const name of names) {
      const outcome = await (kit.clients[name] as KitClient).round();
      if (!outcome.ok || outcome.transferred > 0 || outcome.failed > 0 || outcome.failing > 0) busy = true;
    }
    if (!busy) return;
  }
  throw new Error(`clients ${names.join(', ')} did not settle after ${max} passes:\n${kit.problems()}`);
}
