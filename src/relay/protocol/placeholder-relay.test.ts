import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { EscaleError } from '../../core/errors.js';
import { createLogger, memorySink, silentLogger, type LogRecord } from '../../core/log.js';
import { relPath, ROOT, type RelPath } from '../../core/relpath.js';
import type { Backend, Entry, ListOptions, Op, PutOptions } from '../backend.js';
import { MemoryBackend } from '../backends/memory/memory-backend.js';
import { RelayClock } from '../relay-clock.js';
import { failNth, withFaults } from '../wrap/faulty.js';
import { withRetry } from '../wrap/retry.js';
import { formatMetadata } from './placeholder.js';
import { PlaceholderRelay, type PlaceholderRelayOptions, type PullHandle } from './placeholder-relay.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/escale-0.7/', import.meta.url));
const SOURCES: Record<string, number> = { 'a.txt': 1700000000, 'dir/b.bin': 1700000100, 'dir/sub/unicode-é.txt': 1700000200, 'empty.txt': 1700000300 };
const sha512 = (data: Buffer | string): string => createHash('sha512').update(data).digest('hex');
const p = (text: string): RelPath => relPath(text);

/** A Backend wrapper that logs every call and can fail puts, for ordering, counting and fault tests. */
class SpyBackend implements Backend {
  readonly calls: string[] = [];
  failPut?: (path: string) => boolean;
  hideMtimes = false;
  constructor(readonly inner: Backend) {}
  get id(): string {
    return this.inner.id;
  }
  get features() {
    return this.inner.features;
  }
  /** A clock of its own instead of the inner backend's (a connection that wrote nothing yet). */
  ownClock?: RelayClock;
  get clock() {
    return this.ownClock ?? this.inner.clock;
  }
  async *list(dir: RelPath, options?: ListOptions): AsyncIterable<Entry> {
    this.calls.push(`list ${dir}`);
    for await (const entry of this.inner.list(dir, options)) {
      if (!this.hideMtimes) yield entry;
      else yield { path: entry.path, kind: entry.kind, size: entry.size };
    }
  }
  stat(path: RelPath, options?: Op) {
    this.calls.push(`stat ${path}`);
    return this.inner.stat(path, options);
  }
  get(path: RelPath, options?: Op) {
    this.calls.push(`get ${path}`);
    return this.inner.get(path, options);
  }
  async put(path: RelPath, body: Readable | Uint8Array, options?: PutOptions) {
    this.calls.push(`put ${path}${options?.exclusive === true ? ' (exclusive)' : ''}`);
    if (this.failPut?.(path)) throw new EscaleError('Unavailable', `injected failure for ${path}`, { path });
    return this.inner.put(path, body, options);
  }
  delete(path: RelPath, options?: Op) {
    this.calls.push(`delete ${path}`);
    return this.inner.delete(path, options);
  }
  rename(from: RelPath, to: RelPath, options?: Op) {
    return this.inner.rename(from, to, options);
  }
  mkdir(dir: RelPath, options?: Op) {
    return this.inner.mkdir(dir, options);
  }
  close() {
    return this.inner.close();
  }
  gets(): string[] {
    return this.calls.filter((c) => c.startsWith('get '));
  }
}

interface World {
  clock: { ms: number };
  memory: MemoryBackend;
  spy: SpyBackend;
  logs: LogRecord[];
  relay(client: string, options?: Partial<PlaceholderRelayOptions>): PlaceholderRelay;
}

function world(): World {
  const clock = { ms: 1_700_001_000_000 };
  // why: every relay write gets a distinct mtime, as on a real server between rounds.
  const memory = new MemoryBackend('test', () => (clock.ms += 1000));
  const spy = new SpyBackend(memory);
  const logs: LogRecord[] = [];
  const logger = createLogger([memorySink(logs)]);
  return {
    clock,
    memory,
    spy,
    logs,
    relay: (client, options = {}) => new PlaceholderRelay(spy, { client, lockTimeoutSec: 3600, now: () => clock.ms, logger, ...options }),
  };
}

function filesUnder(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix)).flatMap((name) => {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    return statSync(join(root, rel)).isDirectory() ? filesUnder(root, rel) : [rel];
  });
}

function fixtureTree(scenario: string, stage: string): Map<string, Buffer> {
  const root = join(FIXTURES, scenario, stage);
  return new Map(filesUnder(root).map((f) => [f, readFileSync(join(root, f))]));
}

async function load(backend: Backend, tree: Map<string, Buffer>): Promise<void> {
  for (const [path, data] of tree) await backend.put(p(path), data);
}

async function dump(backend: Backend): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const entry of backend.list(ROOT, { recursive: true })) {
    if (entry.kind !== 'file') continue;
    const chunks: Buffer[] = [];
    for await (const chunk of await backend.get(entry.path)) chunks.push(chunk as Buffer);
    out.set(entry.path, Buffer.concat(chunks));
  }
  return out;
}

function assertSameTree(actual: Map<string, Buffer>, expected: Map<string, Buffer>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [path, data] of expected) assert.equal(actual.get(path)?.toString('latin1'), data.toString('latin1'), path);
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function recordFor(scenario: string, resource: string, pusher = 'alice') {
  const data = readFileSync(join(FIXTURES, scenario, 'source', resource));
  return { data, record: { pusher, timestamp: SOURCES[resource], checksum: sha512(data), pullers: [] } };
}

async function pushAll(relay: PlaceholderRelay, scenario: string): Promise<void> {
  for (const resource of Object.keys(SOURCES)) {
    const { data, record } = recordFor(scenario, resource);
    assert.equal(await relay.push(p(resource), record, async () => Readable.from([data]), { size: data.length }), 'pushed');
  }
}

async function pullAll(relay: PlaceholderRelay, scenario: string): Promise<void> {
  const snapshot = await relay.crawl();
  const remote = await relay.describe(snapshot);
  for (const [path, file] of remote) {
    if (!file.hasData) continue;
    const handle = await relay.beginPull(path);
    assert.equal(typeof handle, 'object', path);
    const h = handle as PullHandle;
    const content = await readAll(await h.open());
    assert.equal(sha512(content), h.record?.checksum, `${path}: content matches the placeholder`);
    assert.deepEqual(content, readFileSync(join(FIXTURES, scenario, 'source', path)));
    await h.commit({ keep: relay.keepAfterPull(h.record) });
  }
}

test('push writes exactly the relay 0.7 wrote (placeholder-plain, relay-after-push), in 0.7 order', async () => {
  const w = world();
  await pushAll(w.relay('alice'), 'placeholder-plain');
  assertSameTree(await dump(w.memory), fixtureTree('placeholder-plain', 'relay-after-push'));
  // why: the lock is created exclusively (no read first): four requests per pushed file.
  const firstPush = w.spy.calls.slice(0, 4);
  assert.deepEqual(firstPush, ['put .a.txt.lock (exclusive)', 'put .a.txt.placeholder', 'put a.txt', 'delete .a.txt.lock']);
  assert.equal(w.spy.calls.length, 4 * Object.keys(SOURCES).length);
});

test('the lock written during a push is the 29-byte `mode: w` record', async () => {
  const w = world();
  const relay = w.relay('alice');
  const { data, record } = recordFor('placeholder-plain', 'a.txt');
  let seen = '';
  await relay.push(p('a.txt'), record, async () => {
    seen = (await readAll(await w.memory.get(p('.a.txt.lock')))).toString();
    return Readable.from([data]);
  }, { size: data.length });
  assert.equal(seen, 'lock%1.0\nowner: alice\nmode: w');
  assert.equal(seen.length, 29);
});

test('pulling the 0.7 relay (copied into memory) leaves exactly 0.7\'s relay-after-pull, with no lock', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  await pullAll(w.relay('bob'), 'placeholder-plain');
  assertSameTree(await dump(w.memory), fixtureTree('placeholder-plain', 'relay-after-pull'));
});

test('push then pull between two TypeScript clients gives 0.7\'s bytes at both stages', async () => {
  const w = world();
  await pushAll(w.relay('alice'), 'placeholder-plain');
  const bob = w.relay('bob');
  await pullAll(bob, 'placeholder-plain');
  assertSameTree(await dump(w.memory), fixtureTree('placeholder-plain', 'relay-after-pull'));
  const remote = await bob.describe(await bob.crawl());
  assert.deepEqual(remote.get(p('a.txt'))?.record?.pullers, ['bob']);
  assert.equal(remote.get(p('a.txt'))?.hasData, false);
});

test('puller count 2 done right: the first puller keeps the data and registers, the second removes it', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-pullers2', 'relay-after-push'));
  await pullAll(w.relay('bob', { pullerCount: 2 }), 'placeholder-pullers2');
  const afterBob = await dump(w.memory);
  // 0.7 deleted the data here and did not record bob (relay-format.md F-6); we keep it for the second puller.
  assert.ok(afterBob.has('a.txt'));
  assert.ok(afterBob.get('.a.txt.placeholder')?.toString().endsWith('---pullers---\nbob'));
  assert.ok(![...afterBob.keys()].some((k) => k.endsWith('.lock')));
  await pullAll(w.relay('carol', { pullerCount: 2 }), 'placeholder-pullers2');
  const afterCarol = await dump(w.memory);
  assert.deepEqual([...afterCarol.keys()].sort(), ['.a.txt.placeholder', '.empty.txt.placeholder', 'dir/.b.bin.placeholder', 'dir/sub/.unicode-é.txt.placeholder']);
  assert.ok(afterCarol.get('.a.txt.placeholder')?.toString().endsWith('---pullers---\nbob\ncarol'));
});

for (const [label, lock] of [
  ['another client\'s lock', 'lock%1.0\nowner: carol\nmode: w'],
  ['an unclaimed (empty) lock', ''],
  ['a legacy lock with LF', 'alice\n'],
  ['an unreadable lock', 'lock%1.0\nowner: alice\nmode: ?'],
] as const) {
  test(`${label} makes push, beginPull and consume return 'locked' without writing anything`, async () => {
    const w = world();
    await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
    await w.memory.put(p('.a.txt.lock'), Buffer.from(lock));
    const before = await dump(w.memory);
    const alice = w.relay('alice');
    const { data, record } = recordFor('placeholder-plain', 'a.txt');
    let bodyOpened = false;
    assert.equal(await alice.push(p('a.txt'), record, async () => ((bodyOpened = true), Readable.from([data])), { size: data.length }), 'locked');
    assert.equal(bodyOpened, false);
    assert.equal(await alice.beginPull(p('a.txt')), 'locked');
    assert.equal(await alice.consume(p('a.txt')), 'locked');
    assert.equal(await alice.registerPuller(p('a.txt'), record.checksum), 'locked');
    assertSameTree(await dump(w.memory), before);
    // why: the only writes tried are exclusive creations of the lock, which the relay refused.
    assert.ok(!w.spy.calls.some((c) => (c.startsWith('put ') && !c.endsWith(' (exclusive)')) || c.startsWith('delete ')), w.spy.calls.join('\n'));
  });
}

test('an own lock left from an earlier run is overwritten by a push', async () => {
  const w = world();
  await w.memory.put(p('.a.txt.lock'), Buffer.from('lock%1.0\nowner: alice\nmode: r'));
  const { data, record } = recordFor('placeholder-plain', 'a.txt');
  assert.equal(await w.relay('alice').push(p('a.txt'), record, async () => Readable.from([data]), { size: data.length }), 'pushed');
  assert.equal((await dump(w.memory)).has('.a.txt.lock'), false);
});

test("beginPull and consume return 'gone' when the data is no longer there, and release their lock", async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-pull'));
  const bob = w.relay('bob');
  assert.equal(await bob.beginPull(p('a.txt')), 'gone');
  assert.equal(await bob.consume(p('a.txt')), 'gone');
  assertSameTree(await dump(w.memory), fixtureTree('placeholder-plain', 'relay-after-pull'));
});

test('abort releases the lock and changes nothing else; a handle cannot be finished twice', async () => {
  const w = world();
  const tree = fixtureTree('placeholder-plain', 'relay-after-push');
  await load(w.memory, tree);
  const handle = (await w.relay('bob').beginPull(p('a.txt'))) as PullHandle;
  assert.equal((await dump(w.memory)).get('.a.txt.lock')?.toString(), 'lock%1.0\nowner: bob\nmode: r');
  await handle.abort();
  assertSameTree(await dump(w.memory), tree);
  await assert.rejects(handle.commit({ keep: false }), (e: unknown) => e instanceof EscaleError && e.code === 'Internal');
});

test('commit without a placeholder deletes the data, invents no placeholder, warns and unlocks', async () => {
  const w = world();
  await w.memory.put(p('x.txt'), Buffer.from('x'));
  const handle = (await w.relay('bob').beginPull(p('x.txt'))) as PullHandle;
  assert.equal(handle.record, undefined);
  await handle.commit({ keep: false });
  assert.deepEqual([...(await dump(w.memory)).keys()], []);
  assert.ok(w.logs.some((r) => r.level === 'warning' && r.message === "missing meta information for file: 'x.txt'"));
});

test('consume records this client and removes the data (puller count unset); with count 2 it keeps the data', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  assert.equal(await w.relay('bob').consume(p('a.txt')), 'consumed');
  assert.equal(await w.relay('bob', { pullerCount: 2 }).consume(p('dir/b.bin')), 'consumed');
  const tree = await dump(w.memory);
  assert.equal(tree.has('a.txt'), false);
  assert.equal(tree.has('dir/b.bin'), true);
  assert.ok(tree.get('.a.txt.placeholder')?.toString().endsWith('\nbob'));
  assert.ok(tree.get('dir/.b.bin.placeholder')?.toString().endsWith('\nbob'));
  assert.ok(![...tree.keys()].some((k) => k.endsWith('.lock')));
});

test("registerPuller writes 0.7's bytes: with puller count 1 the relay ends as 0.7's relay-after-pull", async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const bob = w.relay('bob', { pullerCount: 1 });
  for (const resource of Object.keys(SOURCES)) assert.equal(await bob.registerPuller(p(resource), recordFor('placeholder-plain', resource).record.checksum), 'registered');
  assertSameTree(await dump(w.memory), fixtureTree('placeholder-plain', 'relay-after-pull'));
});

test('registerPuller with puller count 2: the first registration keeps the data, the second distinct puller removes it', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const checksum = recordFor('placeholder-plain', 'a.txt').record.checksum;
  const pushed = (await dump(w.memory)).get('.a.txt.placeholder')?.toString();
  assert.equal(await w.relay('bob', { pullerCount: 2 }).registerPuller(p('a.txt'), checksum), 'registered');
  assert.equal(await w.relay('bob', { pullerCount: 2 }).registerPuller(p('a.txt'), checksum), 'registered', 'registering twice counts once');
  let tree = await dump(w.memory);
  assert.equal(tree.has('a.txt'), true);
  assert.equal(tree.get('.a.txt.placeholder')?.toString(), `${pushed}\nbob`);
  assert.equal(await w.relay('carol', { pullerCount: 2 }).registerPuller(p('a.txt'), checksum), 'registered');
  tree = await dump(w.memory);
  assert.equal(tree.has('a.txt'), false);
  assert.equal(tree.get('.a.txt.placeholder')?.toString(), `${pushed}\nbob\ncarol`);
  assert.ok(![...tree.keys()].some((k) => k.endsWith('.lock')));
  assert.equal(await w.relay('dave', { pullerCount: 2 }).registerPuller(p('a.txt'), checksum), 'gone');
});

test("registerPuller for another version than the relay's: 'changed', lock released, nothing else written", async () => {
  const w = world();
  const tree = fixtureTree('placeholder-plain', 'relay-after-push');
  await load(w.memory, tree);
  assert.equal(await w.relay('bob', { pullerCount: 2 }).registerPuller(p('a.txt'), sha512('other content')), 'changed');
  assertSameTree(await dump(w.memory), tree);
});

test('a failing data upload rolls back as repair would: data, placeholder and lock removed, error rethrown', async () => {
  const w = world();
  await w.memory.put(p('a.txt'), Buffer.from('old'));
  w.spy.failPut = (path) => path === 'a.txt';
  const { record } = recordFor('placeholder-plain', 'a.txt');
  await assert.rejects(
    w.relay('alice').push(p('a.txt'), record, async () => Readable.from([Buffer.from('new')]), { size: 3 }),
    (e: unknown) => e instanceof EscaleError && e.code === 'Unavailable',
  );
  // why: the failed put may have landed (lost reply); data without its placeholder would be pulled unverified.
  assert.deepEqual([...(await dump(w.memory)).keys()], []);
});

test('a data upload whose reply is lost (stored, then the connection dropped) leaves no data without a placeholder', async () => {
  const w = world();
  const { record } = recordFor('placeholder-plain', 'a.txt');
  const faulty = withFaults(w.memory, failNth('put', 3, 'Unavailable', 'after'));
  const relay = new PlaceholderRelay(faulty, { client: 'alice', lockTimeoutSec: null, now: () => 0, logger: silentLogger });
  await assert.rejects(relay.push(p('a.txt'), record, async () => Readable.from([Buffer.from('new')]), { size: 3 }), (e: unknown) => e instanceof EscaleError && e.code === 'Unavailable');
  assert.deepEqual([...(await dump(w.memory)).keys()], []);
});

test('a push whose unlock reply is lost (delete retried, then NotFound) still counts as pushed', async () => {
  const w = world();
  const { data, record } = recordFor('placeholder-plain', 'a.txt');
  const faulty = withRetry(withFaults(w.memory, failNth('delete', 1, 'Unavailable', 'after')), { sleep: async () => undefined });
  const relay = new PlaceholderRelay(faulty, { client: 'alice', lockTimeoutSec: null, now: () => 0, logger: silentLogger });
  assert.equal(await relay.push(p('a.txt'), record, async () => Readable.from([data]), { size: data.length }), 'pushed');
  assert.deepEqual([...(await dump(w.memory)).keys()].sort(), ['.a.txt.placeholder', 'a.txt']);
});

test('a failing body stream also rolls back', async () => {
  const w = world();
  const { record } = recordFor('placeholder-plain', 'a.txt');
  const broken = new Readable({ read() { this.destroy(new Error('disk read failed')); } });
  await assert.rejects(w.relay('alice').push(p('a.txt'), record, async () => broken));
  assert.deepEqual([...(await dump(w.memory)).keys()], []);
});

test('push refuses records it must not write and names that are not resources, before any I/O', async () => {
  const w = world();
  const alice = w.relay('alice');
  const body = async () => Readable.from([Buffer.from('x')]);
  await assert.rejects(alice.push(p('a.txt'), { pusher: 'alice', pullers: [] }, body, { size: 1 }), (e: unknown) => e instanceof EscaleError && e.code === 'CorruptRecord');
  await assert.rejects(alice.push(p('dir/.hidden'), { timestamp: 1, pullers: [] }, body, { size: 1 }), (e: unknown) => e instanceof EscaleError && e.code === 'InvalidName');
  assert.deepEqual(w.spy.calls, []);
});

test('the client name is checked when the relay is built', () => {
  const w = world();
  for (const bad of ['', 'a:b', ' alice', 'al\nice']) assert.throws(() => w.relay(bad), (e: unknown) => e instanceof EscaleError && e.code === 'Config');
});

test('crawl lists once, refuses hostile and unsupported names with one warning each (every round), ignores messages and foreign protocol files', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const refused = ['../escape.txt', 'a/../../b', 'back\\slash', '/abs', 'ctl\u0007.txt', 'tab\tname.txt', 'caf\udce9.txt'];
  for (const name of refused) await w.memory.put(name as RelPath, Buffer.from('evil'));
  // why: a refused resource's placeholder is the same subject: one warning for both files.
  await w.memory.put('.tab\tname.txt.placeholder' as RelPath, Buffer.from('x'));
  for (const name of ['.a.txt.message', '.a.txt.231114221320.message', '.0.index', '.git/config', 'dir/.cache/x']) await w.memory.put(p(name), Buffer.from('x'));
  const alice = w.relay('alice');
  for (let round = 0; round < 3; round += 1) {
    const snapshot = await alice.crawl();
    assert.deepEqual([...snapshot.resources.keys()].sort(), ['a.txt', 'dir/b.bin', 'dir/sub/unicode-é.txt', 'empty.txt']);
  }
  assert.deepEqual(w.spy.calls, ['list ', 'list ', 'list ']);
  const warnings = w.logs.filter((r) => r.level === 'warning').map((r) => r.message);
  assert.equal(warnings.length, refused.length, warnings.join('\n'));
  for (const name of refused) assert.equal(warnings.filter((m) => m.startsWith(`not syncing relay file ${JSON.stringify(name)}: the name `)).length, 1, name);
});

test('a refused name that leaves the relay and comes back is warned about again', async () => {
  const w = world();
  const alice = w.relay('alice');
  await w.memory.put('a\\b.txt' as RelPath, Buffer.from('x'));
  await alice.crawl();
  await alice.crawl();
  await w.memory.delete('a\\b.txt' as RelPath);
  await alice.crawl();
  await w.memory.put('a\\b.txt' as RelPath, Buffer.from('x'));
  await alice.crawl();
  assert.equal(w.logs.filter((r) => r.level === 'warning').length, 2);
});

test('a resource another client spelled in NFD is matched in NFC and every call uses the relay spelling', async () => {
  const w = world();
  const nfd = 'dir/cafe\u0301.txt' as RelPath;
  const record = { version: '1.0', pusher: 'zoe', timestamp: 1_700_000_000, checksum: sha512('zoe\n'), pullers: [] };
  await w.memory.put(nfd, Buffer.from('zoe\n'));
  await w.memory.put('dir/.cafe\u0301.txt.placeholder' as RelPath, Buffer.from(formatMetadata(record)));
  const alice = w.relay('alice');
  const snapshot = await alice.crawl();
  const key = p('dir/café.txt');
  assert.deepEqual([...snapshot.resources.keys()], [key]);
  const remote = await alice.describe(snapshot);
  assert.equal(remote.get(key)?.record?.checksum, record.checksum);
  const handle = await alice.beginPull(key);
  assert.ok(typeof handle === 'object');
  assert.equal(Buffer.concat(await (await handle.open()).toArray()).toString(), 'zoe\n');
  await handle.commit({ keep: true });
  assert.equal(await alice.push(key, { ...record, pusher: 'alice', checksum: sha512('alice\n') }, async () => Readable.from([Buffer.from('alice\n')]), { size: 6 }), 'pushed');
  const stored: string[] = [];
  for await (const entry of w.memory.list(ROOT, { recursive: true })) stored.push(entry.path);
  assert.deepEqual(stored.sort(), ['dir/.cafe\u0301.txt.placeholder', nfd], 'no NFC twin was written, no lock left');
  assert.equal(Buffer.concat(await (await w.memory.get(nfd)).toArray()).toString(), 'alice\n');
  assert.ok(w.spy.calls.every((call) => !call.includes('café')), w.spy.calls.join('\n'));
  assert.equal(w.logs.filter((r) => r.level === 'warning').length, 0);
});

test('two spellings of one name on the relay: neither is taken, each is warned about once', async () => {
  const w = world();
  await w.memory.put('caf\u00e9.txt' as RelPath, Buffer.from('nfc'));
  await w.memory.put('cafe\u0301.txt' as RelPath, Buffer.from('nfd'));
  await w.memory.put('ok.txt' as RelPath, Buffer.from('ok'));
  const alice = w.relay('alice');
  await alice.crawl();
  const snapshot = await alice.crawl();
  assert.deepEqual([...snapshot.resources.keys()], ['ok.txt']);
  const warnings = w.logs.filter((r) => r.level === 'warning').map((r) => r.message);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.ok(warnings.every((m) => m.includes('same Unicode NFC form')));
});

test('names whose placeholder would pass 255 bytes are refused once; 242 bytes still sync; the local side can refuse too deep names', async () => {
  const w = world();
  const longest = `${'a'.repeat(238)}.txt`;
  const tooLong = `${'b'.repeat(239)}.txt`;
  const deep = 'deep/x.txt';
  for (const name of [longest, tooLong, deep]) await w.memory.put(name as RelPath, Buffer.from('x'));
  const alice = w.relay('alice', { localNameProblem: (path) => (path === deep ? 'is too deep' : undefined) });
  await alice.crawl();
  const snapshot = await alice.crawl();
  assert.deepEqual([...snapshot.resources.keys()], [longest]);
  const warnings = w.logs.filter((r) => r.level === 'warning').map((r) => r.message);
  assert.equal(warnings.length, 2, warnings.join('\n'));
  assert.match(warnings.find((m) => m.includes(tooLong)) ?? '', /placeholder name .* would pass the limit of 255 bytes/);
  assert.match(warnings.find((m) => m.includes(deep)) ?? '', /the name is too deep/);
  assert.equal(await alice.push(p(longest), { version: '1.0', pusher: 'alice', timestamp: 1, pullers: [] }, async () => Readable.from([Buffer.from('y')]), { size: 1 }), 'pushed');
});

test('describe: data, locks, sizes, records; usedBytes sums the data files', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  await w.memory.put(p('.new.txt.lock'), Buffer.from('lock%1.0\nowner: carol\nmode: w'));
  const alice = w.relay('alice');
  const snapshot = await alice.crawl();
  const remote = await alice.describe(snapshot);
  assert.deepEqual(remote.get(p('new.txt')), { path: 'new.txt', hasData: false, locked: true });
  const a = remote.get(p('a.txt'));
  assert.equal(a?.hasData, true);
  assert.equal(a?.locked, false);
  assert.equal(a?.size, 17);
  assert.deepEqual(a?.record, { version: '1.0', pusher: 'alice', timestamp: 1700000000, checksum: sha512('hello from alice\n'), pullers: [] });
  assert.equal(alice.usedBytes(snapshot), 17 + 3000 + statSync(join(FIXTURES, 'placeholder-plain/source/dir/sub/unicode-é.txt')).size);
});

test('describe: an oversized or corrupt placeholder becomes recordProblem, not a failure', async () => {
  const w = world();
  await w.memory.put(p('big.txt'), Buffer.from('x'));
  await w.memory.put(p('.big.txt.placeholder'), Buffer.from(`placeholder%1.0\ntimestamp: 5\n---pullers---\n${'n\n'.repeat(40_000)}`));
  await w.memory.put(p('.bad.txt.placeholder'), Buffer.from('placeholder%1.0\ntimestamp: soon'));
  const relay = w.relay('bob');
  const remote = await relay.describe(await relay.crawl());
  assert.match(remote.get(p('big.txt'))?.recordProblem ?? '', /larger than 65536 bytes/);
  assert.equal(remote.get(p('big.txt'))?.record, undefined);
  assert.match(remote.get(p('bad.txt'))?.recordProblem ?? '', /timestamp "soon" is not an integer/);
  const handle = (await relay.beginPull(p('big.txt'))) as PullHandle;
  assert.match(handle.recordProblem ?? '', /larger than/);
  await handle.abort();
});

test('describe: a placeholder with neither timestamp nor checksum (empty, a bare header) is junk, not a record', async () => {
  const w = world();
  for (const [name, text] of [['empty.txt', ''], ['header.txt', 'placeholder%1.0\n---pullers---'], ['pusher-only.txt', 'junk%1.0\npusher: mallory'], ['legacy.txt', '231114_221320']] as const) {
    await w.memory.put(p(name), Buffer.from('data'));
    await w.memory.put(p(`.${name}.placeholder`), Buffer.from(text));
  }
  const remote = await w.relay('bob').describe(await w.relay('bob').crawl());
  for (const name of ['empty.txt', 'header.txt', 'pusher-only.txt']) {
    assert.equal(remote.get(p(name))?.record, undefined, name);
    assert.match(remote.get(p(name))?.recordProblem ?? '', /neither a timestamp nor a checksum/, name);
  }
  // a legacy record (pre-0.5.1, timestamp only) is still a record
  assert.equal(remote.get(p('legacy.txt'))?.record?.timestamp, 1700000000);
});

test('describe caches placeholders by listing mtime and size: only changed ones are downloaded again', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const bob = w.relay('bob');
  await bob.describe(await bob.crawl());
  assert.equal(w.spy.gets().length, 4);
  w.spy.calls.length = 0;
  await bob.describe(await bob.crawl());
  assert.deepEqual(w.spy.gets(), [], 'nothing changed: nothing downloaded');
  const handle = (await bob.beginPull(p('a.txt'))) as PullHandle;
  await handle.commit({ keep: false });
  // Another client rewrites a placeholder too.
  const { record } = recordFor('placeholder-plain', 'empty.txt');
  await w.relay('alice').push(p('empty.txt'), { ...record, timestamp: 1700000400 }, async () => Readable.from([]), { size: 0 });
  w.spy.calls.length = 0;
  const remote = await bob.describe(await bob.crawl());
  // why: bob's own placeholder (it added itself as puller) was cached as it wrote it; only alice's new one is read.
  assert.deepEqual(w.spy.gets().sort(), ['get .empty.txt.placeholder']);
  assert.deepEqual(remote.get(p('a.txt'))?.record?.pullers, ['bob']);
  assert.equal(remote.get(p('empty.txt'))?.record?.timestamp, 1700000400);
});

test('describe downloads every placeholder each time when the backend gives no mtimes', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  w.spy.hideMtimes = true;
  const bob = w.relay('bob');
  await bob.describe(await bob.crawl());
  await bob.describe(await bob.crawl());
  assert.equal(w.spy.gets().length, 8);
});

// --- repair -------------------------------------------------------------------------------------

async function repairWorld(lock: string, options: Partial<PlaceholderRelayOptions> = {}) {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  await w.memory.put(p('.a.txt.lock'), Buffer.from(lock));
  const relay = w.relay('bob', options);
  return { w, relay };
}

const localWith = (files: Record<string, string>) => ({ checksum: async (path: RelPath) => (path in files ? sha512(files[path] ?? '') : undefined) });
const noLocal = localWith({});
const fixed = (w: World) => w.logs.filter((r) => r.level === 'info' && r.message === "fixing uncomplete transfer: 'a.txt'").length;

test('repair, own upload lock: data, placeholder and lock are deleted (the pusher sends again)', async () => {
  const { w, relay } = await repairWorld('lock%1.0\nowner: bob\nmode: w');
  const report = await relay.repair(await relay.crawl(), noLocal);
  assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'upload', outcome: 'resend-requested' }]);
  const tree = await dump(w.memory);
  for (const gone of ['a.txt', '.a.txt.placeholder', '.a.txt.lock']) assert.equal(tree.has(gone), false, gone);
  assert.equal(tree.has('dir/b.bin'), true);
  assert.equal(fixed(w), 1);
});

test('repair, own download lock and a complete local copy: the download is finished', async () => {
  const { w, relay } = await repairWorld('lock%1.0\nowner: bob\nmode: r');
  const report = await relay.repair(await relay.crawl(), localWith({ 'a.txt': 'hello from alice\n' }));
  assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'download', outcome: 'download-completed' }]);
  const tree = await dump(w.memory);
  assert.equal(tree.has('a.txt'), false);
  assert.equal(tree.has('.a.txt.lock'), false);
  assert.deepEqual(tree.get('.a.txt.placeholder'), fixtureTree('placeholder-plain', 'relay-after-pull').get('.a.txt.placeholder'));
  assert.equal(fixed(w), 1);
});

test('repair, own download lock, complete local copy, puller count 2: registers but keeps the data', async () => {
  const { w, relay } = await repairWorld('lock%1.0\nowner: bob\nmode: r', { pullerCount: 2 });
  await relay.repair(await relay.crawl(), localWith({ 'a.txt': 'hello from alice\n' }));
  const tree = await dump(w.memory);
  assert.equal(tree.has('a.txt'), true);
  assert.ok(tree.get('.a.txt.placeholder')?.toString().endsWith('\nbob'));
});

test('repair, own download lock and a partial or missing local copy: never deletes anything but the lock (sync-rules.md B-1 fixed)', async () => {
  for (const local of [noLocal, localWith({ 'a.txt': 'hello fr' })]) {
    const { w, relay } = await repairWorld('lock%1.0\nowner: bob\nmode: r');
    const before = await dump(w.memory);
    const report = await relay.repair(await relay.crawl(), local);
    assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'download', outcome: 'download-left' }]);
    before.delete('.a.txt.lock');
    assertSameTree(await dump(w.memory), before);
  }
});

test('repair, own download lock, relay copy gone and no matching local copy: the placeholder goes (re-send request)', async () => {
  const { w, relay } = await repairWorld('lock%1.0\nowner: bob\nmode: r');
  await w.memory.delete(p('a.txt'));
  const report = await relay.repair(await relay.crawl(), noLocal);
  assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'download', outcome: 'resend-requested' }]);
  const tree = await dump(w.memory);
  assert.equal(tree.has('.a.txt.placeholder'), false);
  assert.equal(tree.has('.a.txt.lock'), false);
});

test('repair, owner-less lock: untouched before the timeout, cleaned (data and placeholder too) after it', async () => {
  const { w, relay } = await repairWorld('');
  const before = await dump(w.memory);
  let report = await relay.repair(await relay.crawl(), noLocal);
  assert.deepEqual(report.repaired, []);
  assert.deepEqual(report.untouched, ['a.txt']);
  assertSameTree(await dump(w.memory), before);
  w.clock.ms += 3601_000 + 60_000;
  report = await relay.repair(await relay.crawl(), noLocal);
  assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'no-mode', outcome: 'resend-requested' }]);
  const tree = await dump(w.memory);
  for (const gone of ['a.txt', '.a.txt.placeholder', '.a.txt.lock']) assert.equal(tree.has(gone), false, gone);
  assert.equal(fixed(w), 1);
});

test("repair, owner-less lock: judged by the relay's clock, never early when the local clock is 2 h ahead, on time when 2 h behind", async () => {
  for (const skew of [2 * 3600_000, -2 * 3600_000]) {
    const w = world();
    await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
    await w.memory.put(p('.a.txt.lock'), Buffer.alloc(0));
    const relay = w.relay('bob', { now: () => w.clock.ms + skew });
    let report = await relay.repair(await relay.crawl(), noLocal);
    assert.deepEqual(report.untouched, ['a.txt'], `skew ${skew}`);
    w.clock.ms += 3000_000;
    report = await relay.repair(await relay.crawl(), noLocal);
    assert.deepEqual(report.untouched, ['a.txt'], `skew ${skew}: 50 min on the relay`);
    w.clock.ms += 700_000;
    report = await relay.repair(await relay.crawl(), noLocal);
    assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'no-mode', outcome: 'resend-requested' }], `skew ${skew}`);
    const broke = w.logs.filter((r) => r.message.startsWith("breaking the owner-less lock of 'a.txt'"));
    assert.equal(broke.length, 1);
    assert.match(broke[0]?.message ?? '', /: it is 6\d min old by the relay's clock \(lock timeout 3600 s\)$/);
    assert.equal(broke[0]?.level, 'warning');
  }
});

test('a record dated ahead of the relay clock by more than the margin is warned about once per pusher, naming it (never this client: its own clock warning says it)', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const at = (offsetMs: number) => Math.floor((w.clock.ms + offsetMs) / 1000);
  const records: Array<[string, string, number]> = [['c.txt', 'carol', at(2 * 3600_000)], ['d.txt', 'carol', at(3 * 3600_000)], ['e.txt', 'dave', at(60_000)], ['f.txt', 'frank', at(-3600_000)], ['g.txt', 'bob', at(2 * 3600_000)]];
  for (const [name, pusher, timestamp] of records) {
    await w.memory.put(p(name), Buffer.from(name));
    await w.memory.put(p(`.${name}.placeholder`), Buffer.from(formatMetadata({ pusher, timestamp, checksum: sha512(name), pullers: [] })));
  }
  const bob = w.relay('bob');
  await bob.describe(await bob.crawl());
  await bob.describe(await bob.crawl());
  const warned = w.logs.filter((r) => r.level === 'warning' && r.message.includes('ahead of'));
  assert.equal(warned.length, 1, warned.map((r) => r.message).join('\n'));
  assert.match(warned[0]?.message ?? '', /^'c\.txt' was pushed by 'carol' dated \S+, (11\d min|2 h \d+ min) ahead of the relay's clock: the clock of 'carol' is probably ahead/);
});

test('a client whose own clock is behind learns the relay clock (one probe) before it accuses anybody of being ahead', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const now = Math.floor(w.clock.ms / 1000);
  for (const [name, pusher, timestamp] of [['c.txt', 'alice', now], ['d.txt', 'bob', now + 2 * 3600]] as const) {
    await w.memory.put(p(name), Buffer.from(name));
    await w.memory.put(p(`.${name}.placeholder`), Buffer.from(formatMetadata({ pusher, timestamp, checksum: sha512(name), pullers: [] })));
  }
  // a connection that has written nothing yet: its clock is not known
  const fresh = new RelayClock({ monotonic: () => w.clock.ms });
  const view = new SpyBackend(w.memory);
  view.ownClock = fresh;
  const carol = new PlaceholderRelay(view, { client: 'carol', lockTimeoutSec: 3600, now: () => w.clock.ms - 2 * 3600_000, logger: createLogger([memorySink(w.logs)]) });
  await carol.describe(await carol.crawl());
  assert.equal(fresh.known, true, 'probed');
  assert.equal(view.calls.filter((c) => /^put \.escale-put-[0-9a-f]{16}\.tmp$/.test(c)).length, 1);
  const warnings = w.logs.filter((r) => r.level === 'warning').map((r) => r.message);
  assert.equal(warnings.filter((m) => m.includes("pushed by 'bob'")).length, 1, warnings.join('\n'));
  assert.equal(warnings.filter((m) => m.includes("pushed by 'alice'")).length, 0, warnings.join('\n'));
  assert.equal(warnings.filter((m) => /^this machine's clock is about .* behind of the relay's/.test(m)).length, 1, warnings.join('\n'));
});

test("a client whose clock is off the relay's by more than the margin says so once, after its first write", async () => {
  for (const [skew, word] of [[2 * 3600_000, 'ahead'], [-2 * 3600_000, 'behind'], [60_000, undefined]] as const) {
    const w = world();
    const eve = w.relay('eve', { now: () => w.clock.ms + skew });
    for (const name of ['a.txt', 'b.txt']) {
      await eve.push(p(name), { pusher: 'eve', timestamp: 1700000000, checksum: sha512(name), pullers: [] }, async () => Readable.from([Buffer.from(name)]), { size: name.length });
      await eve.crawl();
    }
    const said = w.logs.filter((r) => r.message.startsWith("this machine's clock"));
    if (word === undefined) {
      assert.deepEqual(said, [], 'a minute off is within the margin');
      continue;
    }
    assert.equal(said.length, 1, `${word}: ${said.map((r) => r.message).join('\n')}`);
    assert.match(said[0]?.message ?? '', new RegExp(`^this machine's clock is about (11\\d min|2 h \\d+ min) ${word} of the relay's`));
  }
});

test('repair, owner-less lock: never broken when the timeout is off or the backend gives no mtime', async () => {
  for (const hideMtimes of [false, true]) {
    const { w, relay } = await repairWorld('', hideMtimes ? {} : { lockTimeoutSec: null });
    w.spy.hideMtimes = hideMtimes;
    w.clock.ms += 10 * 365 * 86400_000;
    const report = await relay.repair(await relay.crawl(), noLocal);
    assert.deepEqual(report.untouched, ['a.txt']);
    assert.equal((await dump(w.memory)).has('.a.txt.lock'), true);
  }
});

test("repair leaves other clients' locks alone, however old; an own legacy lock (no mode) is cleaned", async () => {
  for (const lock of ['lock%1.0\nowner: carol\nmode: r', 'lock%1.0\nowner: carol\nmode: w', 'bob\n', 'carol']) {
    const { w, relay } = await repairWorld(lock);
    w.clock.ms += 10 * 365 * 86400_000;
    const before = await dump(w.memory);
    const report = await relay.repair(await relay.crawl(), localWith({ 'a.txt': 'hello from alice\n' }));
    assert.deepEqual(report.repaired, [], lock);
    assertSameTree(await dump(w.memory), before);
    assert.equal(fixed(w), 0);
  }
  const { w, relay } = await repairWorld('bob');
  const report = await relay.repair(await relay.crawl(), noLocal);
  assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'no-mode', outcome: 'resend-requested' }]);
  assert.equal((await dump(w.memory)).has('a.txt'), false);
});

const UNREADABLE_LOCKS: ReadonlyArray<[string, Buffer]> = [
  ['an unknown mode', Buffer.from('lock%1.0\nowner: carol\nmode: ?')],
  ['invalid UTF-8', Buffer.from([0x6c, 0x6f, 0x63, 0x6b, 0x25, 0xff, 0xfe, 0x0a])],
  ['more than the record limit', Buffer.alloc(70 * 1024, 0x61)],
];

for (const [label, bytes] of UNREADABLE_LOCKS) {
  test(`repair, a lock that cannot be read (${label}): like one without owner, kept until the lock timeout, then removed; one warning each way`, async () => {
    const w = world();
    await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
    await w.memory.put(p('.a.txt.lock'), bytes);
    const relay = w.relay('bob');
    const { data, record } = recordFor('placeholder-plain', 'a.txt');
    // before the timeout: the file waits, at every look, with one warning in all
    for (let round = 0; round < 3; round++) {
      const report = await relay.repair(await relay.crawl(), noLocal);
      assert.deepEqual(report.repaired, []);
      assert.deepEqual(report.untouched, ['a.txt']);
      assert.equal(await relay.beginPull(p('a.txt')), 'locked');
      assert.equal(await relay.push(p('a.txt'), record, async () => Readable.from([data]), { size: data.length }), 'locked');
    }
    const seen = () => w.logs.filter((r) => r.level === 'warning' && /the lock of 'a\.txt' cannot be read/.test(r.message));
    assert.equal(seen().length, 1);
    assert.match(seen()[0]?.message ?? '', /treated as a lock without owner.*older than the lock timeout \(3600 s\) by the relay's clock/);
    // the 'expired' scope (every round) keeps it too, and warns no more
    assert.deepEqual((await relay.repair(await relay.crawl(), noLocal, undefined, 'expired')).repaired, []);
    assert.equal(seen().length, 1);
    // past the timeout: removed with the data and the placeholder (the pusher sends again), one more warning
    w.clock.ms += 3601_000 + 60_000;
    const report = await relay.repair(await relay.crawl(), noLocal, undefined, 'expired');
    assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'unreadable', outcome: 'resend-requested' }]);
    const tree = await dump(w.memory);
    for (const gone of ['a.txt', '.a.txt.placeholder', '.a.txt.lock']) assert.equal(tree.has(gone), false, gone);
    assert.equal(w.logs.filter((r) => r.level === 'warning' && /breaking the unreadable lock of 'a\.txt': it is .* old by the relay's clock \(lock timeout 3600 s\)/.test(r.message)).length, 1);
    assert.equal(seen().length, 1);
    // a new unreadable lock later is news again
    await w.memory.put(p('.a.txt.lock'), bytes);
    await relay.repair(await relay.crawl(), noLocal);
    assert.equal(seen().length, 2);
  });
}

test('repair: a lock the relay refuses to read (PermissionDenied) is an unreadable lock, not a round failure', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  await w.memory.put(p('.a.txt.lock'), Buffer.from('lock%1.0\nowner: carol\nmode: w'));
  const refusing = new Proxy(w.spy, {
    get(target, name, receiver) {
      if (name === 'get') return async (path: RelPath, options?: Op) => (path === '.a.txt.lock' ? Promise.reject(new EscaleError('PermissionDenied', 'EACCES: permission denied', { path })) : target.get(path, options));
      return Reflect.get(target, name, receiver) as unknown;
    },
  });
  const relay = new PlaceholderRelay(refusing, { client: 'bob', lockTimeoutSec: 3600, now: () => w.clock.ms, logger: createLogger([memorySink(w.logs)]) });
  assert.deepEqual((await relay.repair(await relay.crawl(), noLocal)).untouched, ['a.txt']);
  assert.equal(await relay.beginPull(p('a.txt')), 'locked');
  assert.ok(w.logs.some((r) => /cannot be read \(EACCES: permission denied\)/.test(r.message)));
});

test("the 'expired' repair scope breaks only locks past the timeout without owner, never own or foreign ones", async () => {
  for (const [lock, repaired] of [['', true], ['lock%1.0\nmode: w', true], ['lock%1.0\nowner: bob\nmode: w', false], ['lock%1.0\nowner: carol\nmode: w', false]] as const) {
    const { w, relay } = await repairWorld(lock);
    assert.deepEqual((await relay.repair(await relay.crawl(), noLocal, undefined, 'expired')).repaired, [], `${lock}: young`);
    w.clock.ms += 3601_000 + 60_000;
    const report = await relay.repair(await relay.crawl(), noLocal, undefined, 'expired');
    assert.equal(report.repaired.length, repaired ? 1 : 0, lock);
    assert.equal((await dump(w.memory)).has('.a.txt.lock'), !repaired, lock);
    if (!repaired) {
      // an old lock of another client is read once per listing mtime, not at every round
      w.spy.calls.length = 0;
      await relay.repair(await relay.crawl(), noLocal, undefined, 'expired');
      assert.deepEqual(w.spy.gets(), [], lock);
    }
  }
});

// --- requestResend (a puller that does not record itself, puller count 2) ------------------------

/** The relay after a 0.7 puller with puller count 2 pulled a.txt: data deleted, placeholder written back unchanged. */
async function pulledBy07(): Promise<{ w: World; record: { pusher: string; timestamp: number | undefined; checksum: string; pullers: string[] } }> {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-pullers2', 'relay-after-push'));
  await w.memory.delete(p('a.txt'));
  return { w, record: recordFor('placeholder-pullers2', 'a.txt').record };
}

test("requestResend deletes the placeholder under a 'mode: r' lock, and the pusher then sees the file as new", async () => {
  const { w, record } = await pulledBy07();
  const bob = w.relay('bob', { pullerCount: 2 });
  w.spy.calls.length = 0;
  assert.equal(await bob.requestResend(p('a.txt'), record), 'requested');
  const writes = w.spy.calls.filter((c) => c.startsWith('put ') || c.startsWith('delete '));
  assert.deepEqual(writes, ['put .a.txt.lock (exclusive)', 'delete .a.txt.placeholder', 'delete .a.txt.lock']);
  const tree = await dump(w.memory);
  assert.equal(tree.has('.a.txt.placeholder'), false);
  assert.equal(tree.has('.a.txt.lock'), false);
  assert.equal((await bob.describe(await bob.crawl())).has(p('a.txt')), false);
});

test('requestResend deletes nothing when the version changed, enough pullers recorded, this client is one, or the data is back', async () => {
  const cases: Array<[string, (w: World) => Promise<void>, string]> = [
    ['another version', async (w) => void await w.memory.put(p('.a.txt.placeholder'), Buffer.from(formatMetadata({ pusher: 'alice', timestamp: 1800000000, checksum: 'ab', pullers: [] }))), 'changed'],
    ['two pullers', async (w) => void await w.memory.put(p('.a.txt.placeholder'), Buffer.from(`${(await dump(w.memory)).get('.a.txt.placeholder')?.toString()}\ncarol\ndave`)), 'changed'],
    ['this client pulled it', async (w) => void await w.memory.put(p('.a.txt.placeholder'), Buffer.from(`${(await dump(w.memory)).get('.a.txt.placeholder')?.toString()}\nbob`)), 'changed'],
    ['the data is back', async (w) => void (await w.memory.put(p('a.txt'), Buffer.from('hello from alice\n'))), 'has-data'],
    ['no placeholder any more', async (w) => w.memory.delete(p('.a.txt.placeholder')), 'gone'],
    ['a junk placeholder', async (w) => void (await w.memory.put(p('.a.txt.placeholder'), Buffer.from('\u0000junk'))), 'changed'],
  ];
  for (const [label, change, expected] of cases) {
    const { w, record } = await pulledBy07();
    await change(w);
    const before = await dump(w.memory);
    assert.equal(await w.relay('bob', { pullerCount: 2 }).requestResend(p('a.txt'), record), expected, label);
    assertSameTree(await dump(w.memory), before);
  }
  const { w, record } = await pulledBy07();
  await w.memory.put(p('.a.txt.lock'), Buffer.from('lock%1.0\nowner: carol\nmode: r'));
  assert.equal(await w.relay('bob', { pullerCount: 2 }).requestResend(p('a.txt'), record), 'locked');
  assert.equal((await dump(w.memory)).has('.a.txt.placeholder'), true);
});

test('requestResend interrupted after its lock: the start-up repair finishes the request (no lock left)', async () => {
  const { w, record } = await pulledBy07();
  const failing = new Proxy(w.spy, {
    get(target, name, receiver) {
      if (name === 'stat') return async () => Promise.reject(new EscaleError('Unavailable', 'connection reset'));
      return Reflect.get(target, name, receiver) as unknown;
    },
  });
  const logger = createLogger([memorySink(w.logs)]);
  const bob = new PlaceholderRelay(failing, { client: 'bob', lockTimeoutSec: 3600, now: () => w.clock.ms, logger, pullerCount: 2 });
  await assert.rejects(bob.requestResend(p('a.txt'), record), /connection reset/);
  assert.equal((await dump(w.memory)).has('.a.txt.lock'), false, 'released on failure');
  await w.memory.put(p('.a.txt.lock'), Buffer.from('lock%1.0\nowner: bob\nmode: r'));
  const report = await w.relay('bob', { pullerCount: 2 }).repair(await w.relay('bob').crawl(), noLocal);
  assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'download', outcome: 'resend-requested' }]);
  assert.equal((await dump(w.memory)).has('.a.txt.placeholder'), false);
});

test('a commit that fails leaves the own lock, and repair then finishes the pull', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const bob = w.relay('bob');
  const handle = (await bob.beginPull(p('a.txt'))) as PullHandle;
  w.spy.failPut = (path) => path === '.a.txt.placeholder';
  await assert.rejects(handle.commit({ keep: false }));
  assert.equal((await dump(w.memory)).has('.a.txt.lock'), true);
  w.spy.failPut = undefined;
  const report = await bob.repair(await bob.crawl(), localWith({ 'a.txt': 'hello from alice\n' }));
  assert.deepEqual(report.repaired, [{ path: 'a.txt', lock: 'download', outcome: 'download-completed' }]);
  const tree = await dump(w.memory);
  assert.equal(tree.get('.a.txt.placeholder')?.toString().endsWith('\nbob'), true);
  assert.equal(tree.has('.a.txt.lock'), false);
});

test('formatMetadata output is what push writes (same text for the same inputs)', async () => {
  const w = world();
  const record = { pusher: 'alice', timestamp: 1700000000, checksum: sha512('hello\n'), pullers: [] };
  await w.relay('alice').push(p('a.txt'), record, async () => Readable.from([Buffer.from('hello\n')]), { size: 6 });
  const tree = await dump(w.memory);
  assert.equal(tree.get('.a.txt.placeholder')?.toString(), formatMetadata(record));
  assert.equal(tree.get('.a.txt.placeholder')?.length, 204);
});

test('requests per file at the floor the bytes allow: a push is 4, a pull 7 (its placeholder read when planning included)', async () => {
  const w = world();
  await pushAll(w.relay('alice'), 'placeholder-plain');
  const files = Object.keys(SOURCES).length;
  assert.equal(w.spy.calls.length, 4 * files, w.spy.calls.join('\n'));
  w.spy.calls.length = 0;
  await pullAll(w.relay('bob'), 'placeholder-plain');
  const requests = w.spy.calls.filter((c) => !c.startsWith('list '));
  assert.equal(requests.length, 7 * files, requests.join('\n'));
  assert.equal(requests.filter((c) => c === 'get .a.txt.placeholder').length, 2, 'read when planning, and once under the lock');
  assert.ok(!requests.some((c) => c.startsWith('stat ')), 'the data is opened, not looked at first');
  assertSameTree(await dump(w.memory), fixtureTree('placeholder-plain', 'relay-after-pull'));
});

for (const mode of ['w', 'r'] as const) {
  test(`an exclusive lock creation whose reply was lost is retried and recognised as our own lock (mode ${mode}), not as a foreign one`, async () => {
    const w = world();
    await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
    // why: the first put (the lock) is stored, then its reply is lost; the retry finds the lock there.
    const lossy = withRetry(withFaults(w.memory, failNth('put', 1, 'Unavailable', 'after')), { sleep: async () => undefined });
    const relay = new PlaceholderRelay(lossy, { client: 'bob', lockTimeoutSec: null, now: () => 0, logger: silentLogger });
    if (mode === 'w') {
      const { data, record } = recordFor('placeholder-plain', 'a.txt', 'bob');
      assert.equal(await relay.push(p('a.txt'), record, async () => data, { size: data.length }), 'pushed');
    } else {
      const handle = await relay.beginPull(p('a.txt'));
      assert.equal(typeof handle, 'object', String(handle));
      await readAll(await (handle as PullHandle).open());
      await (handle as PullHandle).commit({ keep: false });
    }
    const tree = await dump(w.memory);
    assert.equal(tree.has('.a.txt.lock'), false, 'unlocked');
    if (mode === 'r') assertSameTree(new Map([...tree].filter(([k]) => k.includes('a.txt'))), new Map([...fixtureTree('placeholder-plain', 'relay-after-pull')].filter(([k]) => k.includes('a.txt'))));
  });
}

test('two clients racing for one lock: the exclusive creation lets one in, the other is refused without overwriting it', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const bob = w.relay('bob');
  const carol = w.relay('carol');
  const [first, second] = await Promise.all([bob.beginPull(p('a.txt')), carol.beginPull(p('a.txt'))]);
  const winners = [first, second].filter((h) => typeof h === 'object') as PullHandle[];
  assert.equal(winners.length, 1, `one pull may go on: ${String(first)}, ${String(second)}`);
  assert.ok([first, second].includes('locked'));
  const owner = (await dump(w.memory)).get('.a.txt.lock')?.toString();
  assert.match(owner ?? '', /^lock%1\.0\nowner: (bob|carol)\nmode: r$/);
  await winners[0]!.abort();
});

test('patched: the listing with what the client did applied equals a new listing; unknown after a lost reply', async () => {
  const w = world();
  await load(w.memory, fixtureTree('placeholder-plain', 'relay-after-push'));
  const bob = w.relay('bob');
  const snapshot = await bob.crawl();
  await bob.describe(snapshot);
  const handle = (await bob.beginPull(p('a.txt'))) as PullHandle;
  await readAll(await handle.open());
  await handle.commit({ keep: false });
  assert.equal(await bob.consume(p('dir/b.bin')), 'consumed');
  const { data, record } = recordFor('placeholder-plain', 'a.txt', 'bob');
  assert.equal(await bob.push(p('new/c.txt'), record, async () => data, { size: data.length }), 'pushed');
  const patched = bob.patched(snapshot);
  assert.ok(patched !== undefined);
  const listed = await bob.crawl();
  const shape = (s: typeof listed) => new Map([...s.resources].map(([k, v]) => [k, JSON.stringify({ data: v.data, lock: v.lock, placeholder: v.placeholder })]));
  assert.deepEqual(shape(patched), shape(listed));
  w.spy.calls.length = 0;
  await bob.describe(patched);
  assert.deepEqual(w.spy.gets(), [], 'the placeholders bob wrote are known without reading them');
  // A change whose outcome is unknown: the snapshot cannot be patched any more.
  const lossy = new PlaceholderRelay(withFaults(w.memory, failNth('delete', 1, 'Unavailable', 'after')), { client: 'bob', lockTimeoutSec: null, now: () => 0, logger: silentLogger });
  const again = await lossy.crawl();
  await assert.rejects(lossy.push(p('new/c.txt'), record, async () => data, { size: data.length }));
  assert.equal(lossy.patched(again), undefined);
});
