import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { createLogger, memorySink, silentLogger, type LogRecord } from '../../core/log.js';
import { relPath } from '../../core/relpath.js';
import { generateKeyFile } from '../../local/key-file.js';
import { openClient, persistentFile } from '../../daemon/client.js';
import { cipherFor } from '../../daemon/run.js';
import { AccessStore } from '../../local/access.js';
import { FileBackend } from '../../relay/backends/file/file-backend.js';
import { IndexRelay } from '../../relay/protocol/index-relay.js';
import { formatLock } from '../../relay/protocol/lock.js';
import { formatMetadata, parseMetadata } from '../../relay/protocol/placeholder.js';
import { emptyCounters } from '../../relay/wrap/stats.js';
import { pushedRecord } from '../../relay/protocol/records.js';
import { escalectlMain } from '../escalectl.js';
import { exitCodeFor } from '../output.js';
import { runFix, type FixEnvironment, type FixOptions } from './fix.js';
import { capture } from './command-test-kit.js';

const T0 = 1_700_000_000;

/** Every file under `root` (dot files included), relative, sorted. */
async function relayFiles(root: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(root, prefix), { withFileTypes: true }).catch(() => [])) {
    const path = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) out.push(...(await relayFiles(root, path)));
    else out.push(path);
  }
  return out.sort();
}

/** Every relay file with its content. */
async function relayContents(root: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const path of await relayFiles(root)) out.set(path, (await readFile(join(root, path))).toString('base64'));
  return out;
}

const sha512 = (text: string): string => createHash('sha512').update(text).digest('hex');

/** A workspace: one `file` relay, client folders, one configuration file. */
class Workspace {
  readonly relay: string;
  readonly config: string;
  readonly logs: LogRecord[] = [];

  private constructor(readonly dir: string) {
    this.relay = join(dir, 'relay');
    this.config = join(dir, 'escale.conf');
  }

  /** `relays`: section → relay folder name in the workspace (default `relay`, shared). */
  static async create(sections: Record<string, Record<string, string | number>>, relays: Record<string, string> = {}): Promise<Workspace> {
    const ws = new Workspace(await mkdtemp(join(tmpdir(), 'escale-fix-')));
    await mkdir(ws.relay);
    const lines = [`cache dir = ${join(ws.dir, 'cache')}`, `log file = ${join(ws.dir, 'escale.log')}`];
    for (const [name, keys] of Object.entries(sections)) {
      await mkdir(ws.folder(name), { recursive: true });
      const relay = join(ws.dir, relays[name] ?? 'relay');
      await mkdir(relay, { recursive: true });
      lines.push('', `[${name}]`, `client name = ${name}`, `local path = ${ws.folder(name)}`, 'protocol = file', `relay path = ${relay}`);
      for (const [k, v] of Object.entries(keys)) lines.push(`${k} = ${v}`);
    }
    await writeFile(ws.config, `${lines.join('\n')}\n`);
    return ws;
  }

  folder(name: string): string {
    return join(this.dir, name);
  }

  async write(client: string, path: string, content: string, mtimeSec: number): Promise<void> {
    const full = join(this.folder(client), path);
    await mkdir(dirname(full), { recursive: true });
    await writeFile(full, content);
    // why: fractional mtimes, like real files: records keep the integer part.
    await utimes(full, mtimeSec + 0.25, mtimeSec + 0.25);
  }

  read(client: string, path: string): Promise<string> {
    return readFile(join(this.folder(client), path), 'utf8');
  }

  async section(name: string): Promise<ClientConfig> {
    const found = (await loadConfig(this.config)).clients.find((c) => c.section === name);
    assert.ok(found, `no section ${name}`);
    return found;
  }

  /** One normal round of a freshly started client; counts the relay calls that change something. */
  async round(name: string): Promise<{ transferred: number; relayWrites: number }> {
    const counters = emptyCounters();
    const logger = createLogger([memorySink(this.logs)], name);
    const opened = await openClient(await this.section(name), { logger, cipher: (c) => cipherFor(c), relayCounters: counters });
    try {
      const report = await opened.runner.round();
      assert.equal(report.failed, 0, `round of ${name} failed:\n${this.problems()}`);
      return { transferred: report.transferred, relayWrites: counters.calls.put + counters.calls.delete + counters.calls.rename };
    } finally {
      await opened.close();
    }
  }

  /** Rounds of every client until one full pass transfers nothing (at most 4 passes). */
  async settle(...names: string[]): Promise<void> {
    for (let pass = 0; pass < 4; pass++) {
      let moved = 0;
      for (const name of names) moved += (await this.round(name)).transferred;
      if (moved === 0) return;
    }
    assert.fail('the clients did not settle');
  }

  async wipeRelay(): Promise<void> {
    await rm(this.relay, { recursive: true, force: true });
    await mkdir(this.relay);
  }

  /** `escalectl -c CONFIG fix <args> --json` in-process. */
  async fix(args: string[]): Promise<{ code: number; json: FixJson; stderr: string }> {
    const output = capture();
    let code: number;
    try {
      code = await escalectlMain(['-c', this.config, 'fix', ...args, '--json'], output);
    } catch (error) {
      return { code: exitCodeFor(error), json: { complete: false, sections: [] }, stderr: `${(error as Error).message}\n` };
    }
    return { code, json: JSON.parse(output.stdout) as FixJson, stderr: output.stderr };
  }

  problems(): string {
    return this.logs.filter((r) => r.level !== 'debug' && r.level !== 'info').map((r) => `${r.level} ${r.name}: ${r.message}`).join('\n');
  }

  cleanup(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

interface FixJson {
  complete: boolean;
  dryRun?: boolean;
  sections: Array<{ section: string; flavour?: string; files?: number; placeholders?: Record<string, number>; pages?: Array<{ page: string; entries: number; outcome: string }>; locked?: string[]; error: string | null }>;
}

const FILES: Record<string, string> = { 'a.txt': 'alpha', 'docs/b.txt': 'bravo', 'docs/deep/c.txt': 'charlie', 'music/d.mp3': 'delta' };

/** Two clients synchronized through the relay, alice's `secret.txt` marked r- and `*.tmp` excluded. */
async function syncedPair(keys: Record<string, string | number>): Promise<Workspace> {
  const ws = await Workspace.create({ alice: { exclude: '*.tmp', ...keys }, bob: { exclude: '*.tmp', ...keys } });
  let t = T0;
  for (const [path, content] of Object.entries(FILES)) await ws.write('alice', path, content, (t += 10));
  await ws.write('alice', 'notes.tmp', 'excluded', T0);
  await ws.write('alice', 'secret.txt', 'never sent', T0);
  const store = await AccessStore.open(persistentFile(await ws.section('alice'), 'am'));
  store.set(relPath('secret.txt'), 'r-');
  await store.close();
  await ws.settle('alice', 'bob');
  for (const [path, content] of Object.entries(FILES)) assert.equal(await ws.read('bob', path), content, `bob got ${path}`);
  return ws;
}

/** The scenario of the brief: wipe the relay, fix from one client, nothing moves, later changes still sync. */
async function recoveryScenario(keys: Record<string, string | number>, checkRelay: (ws: Workspace) => Promise<void>): Promise<void> {
  const ws = await syncedPair(keys);
  try {
    // why: an idle round of a synchronized client may still write (index relays take page locks in read mode).
    const idle = { alice: await ws.round('alice'), bob: await ws.round('bob') };
    assert.deepEqual([idle.alice.transferred, idle.bob.transferred], [0, 0]);
    await ws.wipeRelay();
    const fixed = await ws.fix(['-r', 'alice']);
    assert.equal(fixed.code, 0, fixed.stderr);
    assert.equal(fixed.json.complete, true);
    assert.equal(fixed.json.sections[0]?.files, Object.keys(FILES).length, 'filters and r- apply: notes.tmp and secret.txt are not described');
    await checkRelay(ws);
    const fixedRelay = await relayContents(ws.relay);
    for (const name of ['bob', 'alice', 'bob'] as const) {
      assert.deepEqual(await ws.round(name), idle[name], `${name} transfers nothing after the fix, as when the relay was never lost:\n${ws.problems()}`);
    }
    assert.deepEqual(await relayContents(ws.relay), fixedRelay, 'the rounds left the recovered relay as it was');
    assert.equal(ws.problems(), '', 'no warnings in the rounds after the fix');
    await ws.write('bob', 'docs/b.txt', 'bravo, edited by bob', T0 + 1000);
    assert.equal((await ws.round('bob')).transferred, 1, 'a later modification is sent');
    assert.equal((await ws.round('alice')).transferred, 1, 'and received');
    assert.equal(await ws.read('alice', 'docs/b.txt'), 'bravo, edited by bob');
  } finally {
    await ws.cleanup();
  }
}

/** Checks that the relay holds exactly alice's placeholders, with plaintext checksums and no data. */
async function expectPlaceholders(ws: Workspace): Promise<void> {
  const expected = Object.keys(FILES).map((p) => p.replace(/([^/]+)$/, '.$1.placeholder')).sort();
  assert.deepEqual(await relayFiles(ws.relay), expected, 'placeholders only: no data, no lock left');
  let t = T0;
  for (const [path, content] of Object.entries(FILES)) {
    const text = await readFile(join(ws.relay, path.replace(/([^/]+)$/, '.$1.placeholder')), 'utf8');
    assert.equal(text, formatMetadata(pushedRecord('alice', ((t += 10) + 0.25) * 1000, sha512(content))), `the record of ${path} is what alice's push writes`);
    assert.deepEqual(parseMetadata(text).pullers, []);
  }
}

/** Checks that page 0 holds alice's records (plaintext checksums) and that no update or lock exists. */
async function expectIndex(ws: Workspace): Promise<void> {
  assert.deepEqual(await relayFiles(ws.relay), ['.0.index']);
  const relay = new IndexRelay(new FileBackend(ws.relay), { client: 'test', lockTimeoutSec: null, now: Date.now, logger: silentLogger });
  const { entries } = await relay.readPersistentIndex('0');
  let t = T0;
  assert.deepEqual(
    [...entries].sort(([a], [b]) => (a < b ? -1 : 1)),
    Object.entries(FILES).map(([path, content]) => [path, pushedRecord('alice', ((t += 10) + 0.25) * 1000, sha512(content))]),
  );
}

describe('escalectl fix: recovery of a lost relay', () => {
  const keyDir = mkdtemp(join(tmpdir(), 'escale-fix-key-'));
  after(async () => rm(await keyDir, { recursive: true, force: true }));
  const fernet = async (): Promise<Record<string, string>> => {
    const key = join(await keyDir, `key-${Math.random().toString(36).slice(2)}`);
    await generateKeyFile(key, 'fernet');
    return { encryption: 'fernet', passphrase: key };
  };

  test('placeholder relay: afterwards nothing is transferred, and changes still sync', () => recoveryScenario({}, expectPlaceholders));
  test('placeholder relay with fernet: checksums are of the plaintext', async () => recoveryScenario(await fernet(), expectPlaceholders));
  test('index relay: afterwards nothing is transferred, and changes still sync', () => recoveryScenario({ index: 1 }, expectIndex));
  test('index relay with fernet', async () => recoveryScenario({ index: 1, ...(await fernet()) }, expectIndex));
});

describe('escalectl fix: options', () => {
  test('-u keeps existing placeholders, the default replaces them, data on the relay is left alone', async () => {
    const ws = await Workspace.create({ alice: {} });
    try {
      for (const path of ['kept.txt', 'stale.txt', 'pending.txt', 'new.txt']) await ws.write('alice', path, path, T0);
      const foreign = formatMetadata({ version: '1.0', pusher: 'bob', timestamp: T0 - 5, checksum: 'ab', pullers: ['carol'] });
      for (const name of ['kept.txt', 'stale.txt', 'pending.txt']) await writeFile(join(ws.relay, `.${name}.placeholder`), foreign);
      await writeFile(join(ws.relay, 'pending.txt'), 'data of a push nobody pulled yet');
      const updated = await ws.fix(['-u']);
      assert.equal(updated.code, 0, updated.stderr);
      assert.deepEqual(updated.json.sections[0]?.placeholders, { 'has-data': 1, written: 1, kept: 2 });
      assert.equal(await readFile(join(ws.relay, '.kept.txt.placeholder'), 'utf8'), foreign);
      const replaced = await ws.fix([]);
      assert.deepEqual(replaced.json.sections[0]?.placeholders, { 'has-data': 1, written: 3 });
      assert.match(await readFile(join(ws.relay, '.kept.txt.placeholder'), 'utf8'), /pusher: alice/);
      assert.equal(await readFile(join(ws.relay, '.pending.txt.placeholder'), 'utf8'), foreign, 'the record of relay data is never replaced');
      assert.ok(!(await relayFiles(ws.relay)).some((p) => p.endsWith('.lock')), 'no lock left');
    } finally {
      await ws.cleanup();
    }
  });

  test('-f on a placeholder relay only describes files the relay does not know, without locks', async () => {
    const ws = await Workspace.create({ alice: {} });
    try {
      for (const path of ['known.txt', 'locked.txt', 'data.txt', 'sub/new.txt']) await ws.write('alice', path, path, T0);
      await writeFile(join(ws.relay, '.known.txt.placeholder'), 'placeholder%1.0\ntimestamp: 5\n---pullers---');
      await writeFile(join(ws.relay, '.locked.txt.lock'), formatLock({ owner: 'bob', mode: 'w' }));
      await writeFile(join(ws.relay, 'data.txt'), 'x');
      const fast = await ws.fix(['-f']);
      assert.equal(fast.code, 0, fast.stderr);
      assert.deepEqual(fast.json.sections[0]?.placeholders, { known: 3, written: 1 });
      assert.deepEqual(await relayFiles(ws.relay), ['.known.txt.placeholder', '.locked.txt.lock', 'data.txt', 'sub/.new.txt.placeholder']);
      assert.equal(await readFile(join(ws.relay, '.known.txt.placeholder'), 'utf8'), 'placeholder%1.0\ntimestamp: 5\n---pullers---');
    } finally {
      await ws.cleanup();
    }
  });

  test('a file locked by another client is reported and fix exits 1', async () => {
    const ws = await Workspace.create({ alice: {} });
    try {
      await ws.write('alice', 'busy.txt', 'b', T0);
      await ws.write('alice', 'free.txt', 'f', T0);
      await writeFile(join(ws.relay, '.busy.txt.lock'), formatLock({ owner: 'bob', mode: 'w' }));
      // why: alice's own lock is what a fix (or push) interrupted by a crash leaves: it is taken over.
      await writeFile(join(ws.relay, '.free.txt.lock'), formatLock({ owner: 'alice', mode: 'w' }));
      const result = await ws.fix([]);
      assert.equal(result.code, 1);
      assert.equal(result.json.complete, false);
      assert.deepEqual(result.json.sections[0]?.locked, ['busy.txt']);
      assert.deepEqual(await relayFiles(ws.relay), ['.busy.txt.lock', '.free.txt.placeholder']);
    } finally {
      await ws.cleanup();
    }
  });

  test('index relay with topdir pages: -p restricts the pages, an empty requested page loses its index', async () => {
    const ws = await Workspace.create({ alice: { index: 'topdir' } });
    try {
      for (const [path, content] of Object.entries(FILES)) await ws.write('alice', path, content, T0);
      await writeFile(join(ws.relay, '.empty.index'), 'stale');
      const output = capture();
      const code = await runFix({ page: ['docs', 'empty'] }, { configFile: ws.config, output });
      assert.equal(code, 0, output.stderr);
      assert.match(output.stderr, /recovering page\(s\): docs, empty/);
      assert.match(output.stderr, /progress: 2 of 2 files/);
      assert.deepEqual(await relayFiles(ws.relay), ['.docs.index']);
      assert.match(output.stdout, /'docs' written \(2 entries\), 'empty' deleted \(0 entries\)/);
      const all = await ws.fix(['-u']);
      assert.deepEqual(all.json.sections[0]?.pages?.map((p) => [p.page, p.entries, p.outcome]), [['0', 1, 'written'], ['docs', 2, 'written'], ['music', 1, 'written']]);
    } finally {
      await ws.cleanup();
    }
  });

  test('index relay: a page locked by another client is reported; -f writes it without the lock', async () => {
    const ws = await Workspace.create({ alice: { index: 1 } });
    try {
      await ws.write('alice', 'a.txt', 'a', T0);
      await writeFile(join(ws.relay, '.0.lock'), formatLock({ owner: 'bob', mode: 'r' }));
      const output = capture();
      const env: FixEnvironment = { lockWait: { pollMs: 10, maxWaitMs: 0 } };
      assert.equal(await runFix({ json: true }, { configFile: ws.config, output }, env), 1);
      assert.deepEqual((JSON.parse(output.stdout) as FixJson).sections[0]?.pages, [{ page: '0', entries: 1, outcome: 'busy' }]);
      assert.deepEqual(await relayFiles(ws.relay), ['.0.lock']);
      assert.equal(await runFix({ fast: true }, { configFile: ws.config, output: capture() }, env), 0);
      assert.deepEqual(await relayFiles(ws.relay), ['.0.index', '.0.lock'], 'fast mode takes no lock and leaves the foreign one');
    } finally {
      await ws.cleanup();
    }
  });

  test('an error in one section is reported and the next section is processed', async () => {
    const ws = await Workspace.create({ plain: {}, paged: { index: 'topdir' } }, { paged: 'paged-relay' });
    try {
      await ws.write('plain', 'p.txt', 'p', T0);
      await ws.write('paged', 'docs/q.txt', 'q', T0);
      const result = await ws.fix(['-p', 'docs']);
      assert.equal(result.code, 1);
      assert.match(result.json.sections[0]?.error ?? '', /-p\/--page applies to index relays only/);
      assert.deepEqual(result.json.sections[1]?.pages, [{ page: 'docs', entries: 1, outcome: 'written' }]);
      assert.match(result.stderr, /cannot recover \[plain\]/);
    } finally {
      await ws.cleanup();
    }
  });

  test('--dry-run writes nothing; a download-only client describes nothing', async () => {
    const ws = await Workspace.create({ alice: {}, reader: { mode: 'download' } });
    try {
      await ws.write('alice', 'a.txt', 'a', T0);
      await ws.write('reader', 'r.txt', 'r', T0);
      const dry = await ws.fix(['--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      assert.equal(dry.json.dryRun, true);
      assert.deepEqual(dry.json.sections.map((s) => [s.section, s.files, s.placeholders]), [['alice', 1, { 'to-write': 1 }], ['reader', 0, {}]]);
      assert.deepEqual(await relayFiles(ws.relay), []);
    } finally {
      await ws.cleanup();
    }
  });

  test('placeholder progress is printed at most every 5 s; bad page names are usage errors', async () => {
    const ws = await Workspace.create({ alice: {} });
    try {
      for (let i = 0; i < 4; i++) await ws.write('alice', `f${i}.txt`, `${i}`, T0);
      let clock = 0;
      const output = capture();
      const options: FixOptions = {};
      assert.equal(await runFix(options, { configFile: ws.config, output }, { now: () => (clock += 3000) }), 0);
      assert.deepEqual(output.stderr.split('\n').filter((l) => l.includes('progress')), ['[alice] progress: 25%', '[alice] progress: 75%']);
      const bad = await ws.fix(['-p', 'a.b']);
      assert.equal(bad.code, 2);
      assert.match(bad.stderr, /invalid page name 'a\.b'/);
    } finally {
      await ws.cleanup();
    }
  });
});
