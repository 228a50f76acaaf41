#!/usr/bin/env node
// Crash torture: three real escale processes (alice and bob `shared`, carol `download`, puller
// count 2) on one `file` relay, a workload of creations and modifications, and SIGKILL of a random
// client at random moments. Afterwards the clients settle with `--once` rounds and every copy is
// checked. `npm run torture` runs the full version; torture.test.ts a short one.
//
// The `-hostile` variants add the field (issue 12): file names drawn from every class of
// name-classes.ts (colons, drive-like prefixes, NFD spellings, names near the length limits,
// leading spaces, deep paths, and names escale refuses: control characters, backslashes, bytes
// that are not UTF-8, names too long for the protocol's records), and clocks: alice runs 2 h
// behind, bob 2 h ahead (libfaketime), carol on the relay's clock. Each version is stamped with
// its owner's clock, and one modification in four is stamped older than every earlier version of
// its file (a file restored from a backup, a clock set back), so mtimes cannot tell the order.
// What they assert, for every file: only its owner ever changes it, so each version changes the
// owner's side only (against the base: what each client last agreed on with the relay), and every
// client must end with the last version its owner wrote whatever the mtimes, nothing lost, nothing
// corrupt. A refused name is never counted lost: it must stay in its owner's folder unchanged, be
// reported once by each `--once` run of its owner (`not syncing local file "<name>": ...`), and
// appear neither on the relay nor in another client's folder.
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, rename, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeName } from '../../src/core/relpath.js';
import { generateFernetKey } from '../../src/crypto/fernet.js';
import { bzip2DecompressBytes } from '../../src/system/bzip2.js';
import { FAKETIME_MISSING, faketimeEnv, libfaketime } from '../e2e/faketime.js';
import { ESCALE_BIN, configText, runEscale, workspace } from '../e2e/harness.js';
import { NAME_CLASSES, nameOf, refusalOf, type NameClass, type NameProtocol } from '../e2e/name-classes.js';
import { between, mulberry32, pick, type Random } from './random.js';
import { ROOT_MARKER } from '../../src/daemon/local-root.js';

/** Which protocol and encryption a torture run uses, and whether names and clocks are hostile. */
export type TortureVariant = 'placeholder' | 'placeholder-fernet' | 'index' | 'index-fernet' | 'placeholder-hostile' | 'index-hostile';

/** Every variant, in the order the full run takes them. */
export const ALL_VARIANTS: readonly TortureVariant[] = ['placeholder', 'placeholder-fernet', 'index', 'index-fernet', 'placeholder-hostile', 'index-hostile'];

/** Settings of one torture run. */
export interface TortureOptions {
  readonly variant: TortureVariant;
  /** How many SIGKILLs to deliver before the workload stops. */
  readonly kills: number;
  readonly seed: number;
  /** Largest file the workload writes, in bytes (a few are this big, so kills land mid-transfer). */
  readonly maxFileBytes?: number;
  /** Receives progress lines. */
  readonly progress?: (line: string) => void;
}

/** What a torture run found. */
export interface TortureResult {
  readonly variant: TortureVariant;
  readonly kills: number;
  /** Distinct files the workload created. */
  readonly files: number;
  /** Of those, files whose names escale refuses (hostile variants): kept by their owners only. */
  readonly refused?: number;
  /** (file, client) pairs where the client misses the final version (absent or an older version). */
  readonly lost: number;
  /** (file, client) pairs whose content matches no version ever written. */
  readonly corrupt: number;
  /** Everything else that is wrong: leftover temporaries, locks, relay data, failed settle rounds. */
  readonly problems: readonly string[];
  /** Set when the variant cannot run in this build (the run did nothing). */
  readonly skipped?: string;
  readonly seconds: number;
}

const CLIENTS = ['alice', 'bob', 'carol'] as const;
const OWNERS = ['alice', 'bob'] as const;
type Client = (typeof CLIENTS)[number];
type Owner = (typeof OWNERS)[number];

/** Clock offsets of the hostile variants, in seconds (libfaketime's `FAKETIME`, and the stamps of the owners' edits). */
const SKEW_SEC: Record<Client, number> = { alice: -2 * 3600, bob: 2 * 3600, carol: 0 };

interface Version {
  readonly sha256: string;
  readonly mtimeSec: number;
}

interface TrackedFile {
  readonly owner: Owner;
  /** The name as bytes (it may not be UTF-8). */
  readonly name: Buffer;
  /** Why escale refuses the name, or undefined when it syncs. */
  readonly refused?: string;
  readonly versions: Version[];
}

/** How one variant runs: protocol, encryption, and the hostile names and clocks. */
interface Flavour {
  readonly protocol: NameProtocol;
  readonly fernet: boolean;
  /** The libfaketime library when clocks are skewed (hostile variants). */
  readonly faketime?: string;
}

/** The environment of `client`'s escale processes (its skewed clock in the hostile variants). */
function clientEnv(flavour: Flavour, client: Client): NodeJS.ProcessEnv {
  const skew = SKEW_SEC[client];
  if (flavour.faketime === undefined || skew === 0) return {};
  return faketimeEnv(flavour.faketime, `${skew > 0 ? '+' : ''}${skew}s`);
}

/** Runs one torture variant from a fresh workspace and reports what it found. */
export async function runTorture(options: TortureOptions): Promise<TortureResult> {
  const started = Date.now();
  const random = mulberry32(options.seed);
  const say = options.progress ?? (() => undefined);
  const ws = await workspace('escale-torture-');
  const relay = join(ws.dir, 'relay');
  const folder = (name: Client): string => join(ws.dir, name);
  const config = join(ws.dir, 'escale.conf');
  try {
    const hostile = options.variant.endsWith('-hostile');
    const faketime = hostile ? libfaketime() : undefined;
    if (hostile && faketime === undefined) {
      // why: under CI a missing tool is a failure, never a skip (.ci/run installs faketime).
      if (process.env['CI'] === 'true') throw new Error(`torture [${options.variant}] cannot run under CI=true: ${FAKETIME_MISSING}`);
      return { variant: options.variant, kills: 0, files: 0, lost: 0, corrupt: 0, problems: [], skipped: FAKETIME_MISSING, seconds: 0 };
    }
    const flavour: Flavour = { protocol: options.variant.startsWith('index') ? 'index' : 'placeholder', fernet: options.variant.endsWith('-fernet'), ...(faketime === undefined ? {} : { faketime }) };
    await mkdir(relay);
    for (const name of CLIENTS) await mkdir(folder(name));
    const extra: Record<string, string | number> = {};
    if (flavour.fernet) {
      const key = join(ws.dir, 'torture.passphrase');
      await writeFile(key, generateFernetKey(), { mode: 0o600 });
      Object.assign(extra, { encryption: 'fernet', passphrase: key });
    }
    if (flavour.protocol === 'index') extra['index'] = 1;
    const section = (name: Client, mode: string): Record<string, string | number> => ({
      'client name': name,
      'local path': folder(name),
      protocol: 'file',
      'relay path': relay,
      mode,
      ...extra,
    });
    const globals = { 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'escale.log'), refresh: 2, checksum: 'yes', 'puller count': 2 };
    await writeFile(config, configText(globals, { alice: section('alice', 'shared'), bob: section('bob', 'shared'), carol: section('carol', 'download') }));

    // why: a build that cannot open this variant yet is reported as skipped, not as data loss.
    const probe = await runEscale(['--once', '-c', config, '--section', 'carol'], { timeoutMs: 60_000, env: clientEnv(flavour, 'carol') });
    if (probe.code !== 0 && /not available in this build|Unsupported/i.test(probe.stderr)) {
      return { variant: options.variant, kills: 0, files: 0, lost: 0, corrupt: 0, problems: [], skipped: firstLine(probe.stderr), seconds: 0 };
    }

    const files = new Map<string, TrackedFile>();
    const workload = startWorkload(files, folder, random, { maxBytes: options.maxFileBytes ?? 3 * 1024 * 1024, ...(hostile ? { hostile: flavour.protocol } : {}) });
    const fleet = new Fleet(config, flavour);
    for (const name of CLIENTS) fleet.start(name);
    let kills = 0;
    while (kills < options.kills) {
      await sleep(200 + random() * 1800);
      const victim = CLIENTS[Math.floor(random() * CLIENTS.length)] as Client;
      await fleet.kill(victim);
      kills += 1;
      if (kills % 10 === 0) say(`[${options.variant}] ${kills} kills, ${files.size} files`);
      // why: a short random pause before the restart lets the others meet the dead client's locks.
      await sleep(random() * 300);
      fleet.start(victim);
    }
    await workload.stop();
    await fleet.stopAll();

    const problems: string[] = [];
    await settle(config, flavour, files, relay, folder, problems);
    const verdict = await verify(files, folder, relay);
    problems.push(...verdict.problems);
    const refused = [...files.values()].filter((file) => file.refused !== undefined).length;
    return { variant: options.variant, kills, files: files.size, ...(hostile ? { refused } : {}), lost: verdict.lost, corrupt: verdict.corrupt, problems, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    // why: TORTURE_KEEP=1 leaves the workspace for a post-mortem.
    if (process.env['TORTURE_KEEP'] === '1') say(`[${options.variant}] workspace kept: ${ws.dir}`);
    else await ws.cleanup();
  }
}

/** The three long-running escale processes; a killed one is started again by the caller. */
class Fleet {
  private readonly running = new Map<Client, { child: ChildProcess; exited: Promise<void> }>();

  constructor(
    private readonly config: string,
    private readonly flavour: Flavour,
  ) {}

  start(name: Client): void {
    const child = spawn(process.execPath, [ESCALE_BIN, '-c', this.config, '--section', name, '-q'], { stdio: ['ignore', 'ignore', 'ignore'], env: { ...process.env, ...clientEnv(this.flavour, name) } });
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    this.running.set(name, { child, exited });
  }

  async kill(name: Client): Promise<void> {
    const proc = this.running.get(name);
    if (!proc) return;
    proc.child.kill('SIGKILL');
    await proc.exited;
    this.running.delete(name);
  }

  /** Ends every client with SIGKILL too: the settle phase must repair whatever they held. */
  async stopAll(): Promise<void> {
    for (const name of [...this.running.keys()]) await this.kill(name);
  }
}

/** What the workload writes: file sizes, and (hostile variants) names of every class, judged for this protocol. */
interface WorkloadOptions {
  /** Largest file, in bytes (a few are this big, so kills land mid-transfer). */
  readonly maxBytes: number;
  readonly hostile?: NameProtocol;
}

/** `root/name` for a name given as bytes. */
function under(root: string | Buffer, name: Buffer): Buffer {
  return Buffer.concat([typeof root === 'string' ? Buffer.from(root) : root, Buffer.from('/'), name]);
}

/** The folder part of a path given as bytes. */
function parentOf(path: Buffer): Buffer {
  return path.subarray(0, path.lastIndexOf(0x2f));
}

/** Writes files in alice's and bob's folders until stopped; each file is only ever changed by its owner. */
function startWorkload(files: Map<string, TrackedFile>, folder: (name: Client) => string, random: Random, options: WorkloadOptions): { stop(): Promise<void> } {
  let stopped = false;
  // why: (ordinary variants) strictly increasing whole-second mtimes in the past make "the last
  // version written" the newest one for last-writer-wins, whatever the wall clock does.
  let tick = Math.floor(Date.now() / 1000) - 1_000_000;
  /** The mtime of the next version of `file`: see the header for the hostile variants. */
  const stamp = (file: TrackedFile): number => {
    if (options.hostile === undefined) return (tick += 1);
    const used = new Set(file.versions.map((v) => v.mtimeSec));
    let mtime = Math.floor(Date.now() / 1000) + SKEW_SEC[file.owner];
    if (file.versions.length > 0 && random() < 0.25) mtime = Math.min(...used) - between(random, 1, 86_400);
    // why: equal mtimes with other content would be the anomaly of sync-rules.md R3.2 step 4, not a clock.
    while (used.has(mtime)) mtime -= 1;
    return mtime;
  };
  const newName = (owner: Owner, serial: number): Buffer => {
    const tag = `${owner}-${serial}`;
    if (options.hostile === undefined) return Buffer.from(`${random() < 0.5 ? '' : `d${Math.floor(random() * 3)}/`}${tag}.bin`);
    // why: the first files take every class in turn (so that a short run meets them all), then half
    // the files are ordinary and the others spread over the classes of the field.
    const cls = serial <= NAME_CLASSES.length ? (NAME_CLASSES[serial - 1] as NameClass) : random() < 0.5 ? 'ordinary' : pick(random, NAME_CLASSES);
    return nameOf(random, cls, 'local', options.hostile, tag);
  };
  const loop = (async () => {
    let serial = 0;
    while (!stopped) {
      const owner = OWNERS[Math.floor(random() * OWNERS.length)] as Owner;
      const mine = [...files.values()].filter((f) => f.owner === owner);
      let file: TrackedFile;
      if (mine.length === 0 || random() < 0.45) {
        serial += 1;
        const name = newName(owner, serial);
        const refused = options.hostile === undefined ? undefined : refusalOf(name, options.hostile);
        file = { owner, name, ...(refused === undefined ? {} : { refused }), versions: [] };
        files.set(decodeName(name), file);
      } else {
        file = mine[Math.floor(random() * mine.length)] as TrackedFile;
      }
      const size = random() < 0.1 ? Math.floor(options.maxBytes / 2 + (random() * options.maxBytes) / 2) : Math.floor(random() * 64 * 1024);
      const content = randomBytes(size);
      const mtimeSec = stamp(file);
      const target = under(folder(owner), file.name);
      await mkdir(parentOf(target), { recursive: true });
      // why: written beside the target under a dot name (the scanner skips it), given its mtime,
      // then renamed: escale must never see a half-written workload file.
      const temp = under(parentOf(target), Buffer.from(`.workload-${randomBytes(4).toString('hex')}`));
      await writeFile(temp, content);
      await utimes(temp, mtimeSec, mtimeSec);
      await rename(temp, target);
      file.versions.push({ sha256: sha256(content), mtimeSec });
      await sleep(100 + random() * 400);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/**
 * Runs `--once` rounds of every client until two passes in a row change nothing (at most 12
 * passes). Each run of an owner must report each of its refused names once, and nothing else.
 */
async function settle(config: string, flavour: Flavour, files: ReadonlyMap<string, TrackedFile>, relay: string, folder: (name: Client) => string, problems: string[]): Promise<void> {
  let previous = '';
  let quiet = 0;
  const misreported = new Set<string>();
  for (let pass = 1; pass <= 12; pass += 1) {
    const failures: string[] = [];
    for (const name of CLIENTS) {
      const result = await runEscale(['--once', '-c', config, '--section', name], { timeoutMs: 120_000, env: clientEnv(flavour, name) });
      if (result.code !== 0) failures.push(`[${name}] exit ${result.code}: ${result.stderr.split('\n').filter((l) => / (ERROR|CRITICAL|WARNING) /.test(l)).slice(0, 3).join(' | ')}`);
      for (const problem of refusalProblems(name, result.stdout + result.stderr, files)) {
        if (!misreported.has(problem)) problems.push(problem);
        misreported.add(problem);
      }
    }
    // why: a Map stringifies as {}: its entries are compared, or every pass looks quiet and the settle stops after two.
    const state = JSON.stringify((await Promise.all([relay, ...CLIENTS.map(folder)].map((d) => fingerprint(d)))).map((m) => [...m]));
    quiet = state === previous && failures.length === 0 ? quiet + 1 : 0;
    previous = state;
    if (quiet >= 1 && pass >= 2) return;
    if (pass === 12) problems.push(`the clients did not settle after 12 passes${failures.length ? `; last failures: ${failures.join('; ')}` : ''}`);
  }
}

/** What is wrong with the refusals one `--once` run of `client` reported: each refused name of its own exactly once, no other. */
function refusalProblems(client: Client, output: string, files: ReadonlyMap<string, TrackedFile>): string[] {
  const out: string[] = [];
  const lines = output.split('\n').filter((line) => line.includes('not syncing '));
  let expected = 0;
  for (const [path, file] of files) {
    if (file.refused === undefined || file.owner !== client) continue;
    expected += 1;
    const prefix = `not syncing local file ${JSON.stringify(path)}: the name `;
    const count = lines.filter((line) => line.includes(prefix)).length;
    if (count !== 1) out.push(`${client} reported ${JSON.stringify(path)} (${file.refused}) ${count} times in one run`);
  }
  if (lines.length !== expected) out.push(`${client} reported ${lines.length} refused names in one run, ${expected} expected: ${lines.slice(0, 5).join(' | ')}`);
  return out;
}

/** Compares every client's copy with the workload's history, and checks the relay and folders for leftovers. */
async function verify(files: Map<string, TrackedFile>, folder: (name: Client) => string, relay: string): Promise<{ lost: number; corrupt: number; problems: string[] }> {
  let lost = 0;
  let corrupt = 0;
  const problems: string[] = [];
  for (const name of CLIENTS) {
    const held = await fingerprint(folder(name));
    const heldNfc = new Set([...held.keys()].map((path) => path.normalize('NFC')));
    for (const [path, file] of files) {
      const final = file.versions.at(-1)?.sha256;
      const have = held.get(path);
      if (file.refused !== undefined && file.owner !== name) {
        // why: a refused name is never counted lost; it must not reach another client, in any spelling.
        if (heldNfc.has(path.normalize('NFC'))) problems.push(`${name} holds '${JSON.stringify(path)}', a name its owner's client refuses (${file.refused})`);
        continue;
      }
      if (have === final) continue;
      if (have === undefined || file.versions.some((v) => v.sha256 === have)) {
        lost += 1;
        const which = file.versions.findIndex((v) => v.sha256 === have);
        const history = file.versions.map((v) => v.mtimeSec).join(', ');
        if (problems.length < 20) problems.push(`${name} ${have === undefined ? 'misses' : `holds version ${which + 1} of ${file.versions.length} of`} ${JSON.stringify(path)} (mtimes ${history})`);
      } else {
        corrupt += 1;
        problems.push(`${name} holds corrupt content for ${JSON.stringify(path)}`);
      }
    }
    for (const path of held.keys()) {
      const base = path.split('/').pop() as string;
      // why: each client marks its local root (LocalRootGuard); the marker is escale's, never synced.
      if (path === ROOT_MARKER) continue;
      if (base.startsWith('.')) problems.push(`${name} has a hidden leftover ${JSON.stringify(path)}`);
      else if (!files.has(path)) problems.push(`${name} has a file nobody wrote: ${JSON.stringify(path)}`);
    }
  }
  const left = await fingerprint(relay);
  for (const path of left.keys()) {
    const base = path.split('/').pop() as string;
    if (base.endsWith('.lock')) problems.push(`lock left on the relay: ${JSON.stringify(path)}`);
    // why: a put killed midway leaves its hidden temporary; the file backend never lists it and deletes it once stale (1 h).
    else if (base.startsWith('.escale-put-')) continue;
    else if (!base.startsWith('.')) problems.push(`data left on the relay although every puller has it: ${JSON.stringify(path)}`);
  }
  const mentions = await relayNames(relay, left.keys());
  for (const [path, file] of files) {
    if (file.refused !== undefined && mentions.some((text) => text.includes(path))) problems.push(`the relay names ${JSON.stringify(path)}, which its owner's client refuses (${file.refused})`);
  }
  return { lost, corrupt, problems };
}

/** Every name the relay holds: its file names, and the text of its page indexes (index protocol). */
async function relayNames(relay: string, paths: Iterable<string>): Promise<string[]> {
  const out: string[] = [];
  for (const path of paths) {
    out.push(path);
    if (!/(^|\/)\.[^/]*\.index$/.test(path)) continue;
    try {
      out.push((await bzip2DecompressBytes(await readFile(join(relay, path)), { maxOutputBytes: 1 << 26 })).toString('utf8'));
    } catch (error) {
      out.push(`(unreadable ${path}: ${(error as Error).message})`);
    }
  }
  return out;
}

/** Every file below `root` (hidden ones included) by its name (bytes that are not UTF-8 as `\udcXX`), with its sha256. */
async function fingerprint(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const visit = async (dir: Buffer, prefix: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true, encoding: 'buffer' });
    } catch {
      return; // removed while we looked
    }
    for (const entry of entries) {
      const full = Buffer.concat([dir, Buffer.from('/'), entry.name]);
      const rel = `${prefix}${decodeName(entry.name)}`;
      if (entry.isDirectory()) await visit(full, `${rel}/`);
      else if (entry.isFile()) {
        try {
          out.set(rel, sha256(await readFile(full)));
        } catch {
          // removed while we looked
        }
      }
    }
  };
  await visit(Buffer.from(root), '');
  return new Map([...out.entries()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function firstLine(text: string): string {
  return text.split('\n').find((l) => l.trim() !== '') ?? '(no message)';
}

/** The summary line the issue asks for: `kills N, files N, lost N, corrupt N`. */
export function summaryLine(results: readonly TortureResult[]): string {
  const sum = (pick: (r: TortureResult) => number): number => results.reduce((n, r) => n + pick(r), 0);
  return `kills ${sum((r) => r.kills)}, files ${sum((r) => r.files)}, lost ${sum((r) => r.lost)}, corrupt ${sum((r) => r.corrupt)}`;
}

async function main(argv: string[]): Promise<number> {
  const value = (flag: string): string | undefined => {
    const at = argv.indexOf(flag);
    return at >= 0 ? argv[at + 1] : undefined;
  };
  const quick = argv.includes('--quick');
  const kills = Number(value('--kills') ?? (quick ? 10 : 40));
  const seed = Number(value('--seed') ?? Date.now() % 1_000_000);
  const variants = (value('--variants')?.split(',') ?? ALL_VARIANTS) as TortureVariant[];
  const unknown = variants.filter((v) => !ALL_VARIANTS.includes(v));
  if (unknown.length > 0) throw new Error(`unknown variant(s) ${unknown.join(', ')}; known: ${ALL_VARIANTS.join(', ')}`);
  console.log(`torture: seed ${seed}, ${kills} kills per variant, variants ${variants.join(', ')}`);
  const results: TortureResult[] = [];
  for (const [i, variant] of variants.entries()) {
    const result = await runTorture({ variant, kills, seed: seed + i, progress: (line) => console.log(line) });
    results.push(result);
    if (result.skipped) {
      console.log(`SKIP [${variant}]: ${result.skipped}`);
      continue;
    }
    console.log(`[${variant}] ${summaryLine([result])} (${result.refused === undefined ? '' : `${result.refused} refused names, `}${result.seconds} s)`);
    for (const problem of result.problems) console.log(`  problem: ${problem}`);
  }
  const ran = results.filter((r) => !r.skipped);
  console.log(summaryLine(ran));
  return ran.every((r) => r.lost === 0 && r.corrupt === 0 && r.problems.length === 0) && ran.length > 0 ? 0 : 1;
}

if (process.argv[1] !== undefined && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
