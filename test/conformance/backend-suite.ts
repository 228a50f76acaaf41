import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { EscaleError, type ErrorCode } from '../../src/core/errors.js';
import { joinRel, joinRelay, relPath, type RelayPath, type RelPath } from '../../src/core/relpath.js';
import type { Backend, Entry } from '../../src/relay/backend.js';
import { probeRelayClock } from '../../src/relay/relay-clock.js';
import { reportSkip } from './servers/harness.js';

/** A backend opened by a harness, and how to tear it (and its server) down. */
export interface StartedBackend {
  readonly backend: Backend;
  /** Closes the backend and stops whatever `start` started. */
  stop(): Promise<void>;
  /**
   * The folder on this machine that the backend's root maps to, when the server stores files as
   * they are named (a file system, sshd): the suite plants names there that no client can send.
   */
  readonly localRoot?: string;
}

/** What `start` returns when the server or tool it needs is missing. */
export interface Skip {
  readonly skip: string;
}

/** Tells the suite how a backend departs from the defaults. */
export interface SuiteOptions {
  /** Whether `put` with `exclusive` refuses an existing file (default true). */
  readonly exclusive?: boolean;
  /** Size of the large round trip (default 5 MiB). */
  readonly largeBytes?: number;
  /** Files in the "past one page" listing (default 1,200). */
  readonly manyFiles?: number;
  /** Timeout of each case in milliseconds (default 120 s). */
  readonly timeoutMs?: number;
  /** Longest name segment the server stores, in UTF-8 bytes (default 255, the relay name limit). */
  readonly longestName?: number;
}

/** Starts a server (if any) and opens a backend on it; the suite runs below a random sub-root. */
export interface BackendHarness {
  start(): Promise<StartedBackend | Skip>;
  readonly options?: SuiteOptions;
}

/** What each case receives. */
export interface CaseContext {
  readonly backend: Backend;
  /** This case's folder on this machine, when the harness gives the backend's `localRoot`. */
  readonly localDir?: string;
  /** This case's own empty folder (not created yet). */
  readonly dir: RelPath;
  /** A path inside `dir`. */
  p(...names: string[]): RelPath;
  readonly options: Required<SuiteOptions>;
}

type Case = (c: CaseContext) => Promise<void>;

const MiB = 1024 * 1024;

/**
 * Registers the backend conformance suite under `name`: every case runs against the backend the
 * harness opens, each in its own folder under a random per-run sub-root. A harness answering
 * `{ skip }` skips the suite with a loud line, or fails it under CI=true.
 */
export function describeBackend(name: string, harness: BackendHarness): void {
  const options: Required<SuiteOptions> = {
    exclusive: true,
    largeBytes: 5 * MiB,
    manyFiles: 1200,
    timeoutMs: 120_000,
    longestName: 255,
    ...harness.options,
  };
  describe(`backend conformance: ${name}`, () => {
    let started: StartedBackend | undefined;
    let skipReason = 'not started';
    const base = relPath(`conformance-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`);
    let caseNumber = 0;

    before(async () => {
      const result = await harness.start();
      if ('skip' in result) {
        skipReason = result.skip;
        reportSkip(`conformance ${name}`, result.skip);
        return;
      }
      started = result;
    });

    after(async () => {
      if (!started) return;
      try {
        const files: RelayPath[] = [];
        for await (const entry of started.backend.list(base, { recursive: true })) if (entry.kind === 'file') files.push(entry.path);
        for (const file of files) await started.backend.delete(file).catch(() => undefined);
      } finally {
        await started.stop();
      }
    });

    for (const [title, body] of Object.entries(CASES)) {
      const folder = joinRel(base, `case-${String(++caseNumber).padStart(2, '0')}`);
      it(title, { timeout: options.timeoutMs }, async (t) => {
        if (!started) {
          t.skip(skipReason);
          return;
        }
        const backend = started.backend;
        const localDir = started.localRoot === undefined ? undefined : `${started.localRoot}/${folder}`;
        await body({ backend, dir: folder, p: (...names) => joinRel(folder, ...names), options, ...(localDir === undefined ? {} : { localDir }) });
      });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Helpers

/** Reads a whole stream into one Buffer. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer | string>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

/** Collects an async iterable into an array. */
export async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

/** Asserts that `promise` rejects with an EscaleError carrying one of `codes`. */
export async function expectCode(promise: Promise<unknown>, ...codes: ErrorCode[]): Promise<EscaleError> {
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  assert.ok(caught !== undefined, `expected a failure with ${codes.join('|')}, but the call succeeded`);
  assert.ok(caught instanceof EscaleError, `expected an EscaleError with ${codes.join('|')}, got ${String(caught)}`);
  assert.ok(codes.includes(caught.code), `expected ${codes.join('|')}, got ${caught.code}: ${caught.message}`);
  return caught;
}

async function getBytes(backend: Backend, path: RelayPath): Promise<Buffer> {
  return readAll(await backend.get(path));
}

/** Sorted paths of the listing of `dir` (files and folders). */
async function listed(backend: Backend, dir: RelPath, recursive = false): Promise<string[]> {
  const entries = await collect(backend.list(dir, { recursive }));
  return entries.filter((e) => !recursive || e.kind === 'file').map((e) => e.path).sort();
}

function sorted(paths: string[]): string[] {
  return [...paths].sort();
}

/** A body that sends `bytes` in 64 KiB chunks. */
function chunked(bytes: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += 64 * 1024) chunks.push(bytes.subarray(i, i + 64 * 1024));
  return Readable.from(chunks);
}

/** A body that sends `bytes`, then fails. */
function failingBody(bytes: Buffer): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(bytes);
        return;
      }
      setImmediate(() => this.destroy(new Error('the source failed halfway')));
    },
  });
}

/** A body that sends `bytes`, then stalls until destroyed; `reading` resolves once the backend reads past the first chunk. */
function stalledBody(bytes: Buffer): { body: Readable; reading: Promise<void> } {
  let sent = false;
  let signalReading: () => void = () => undefined;
  const reading = new Promise<void>((resolve) => {
    signalReading = resolve;
  });
  const body = new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(bytes);
        return;
      }
      signalReading();
    },
  });
  return { body, reading };
}

function pattern(size: number, seed: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 1) out[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return out;
}

/** Runs `work` over `items` with at most `width` at once. */
async function pool<T>(items: T[], width: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.max(1, Math.min(width, items.length)) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(runners);
}

/** Names that break naive quoting, URL encoding, globbing or normalisation. */
export const HOSTILE_NAMES: readonly string[] = [
  'with space.txt',
  ' leading space.txt',
  'per%cent%20.txt',
  '%2F.txt',
  'hash#tag.txt',
  'question?mark.txt',
  'plus+sign.txt',
  'amp&ersand=1;x,y.txt',
  'star*[ab]{c}.txt',
  '.x.lock',
  '.hidden placeholder',
  '..double-dot',
  "quote'single.txt",
  'quote"double.txt',
  'back`tick$HOME.txt',
  'café-nfc.txt',
  'cafe\u0301-nfd.txt',
  'Q: answers.txt',
  'C:',
  'trailing space ',
  '日本語-ファイル.txt',
  'emoji-😀.txt',
  `${'n'.repeat(196)}.txt`,
  '~tilde',
  '-dash-first',
];

// ---------------------------------------------------------------------------------------------
// Cases

const CASES: Record<string, Case> = {
  async 'lists nothing for a missing folder and for an empty one'({ backend, dir, p }) {
    assert.deepEqual(await listed(backend, dir), []);
    assert.deepEqual(await listed(backend, p('missing', 'deeper')), []);
    assert.deepEqual(await listed(backend, p('missing'), true), []);
    await backend.mkdir(p('empty'));
    assert.deepEqual(await listed(backend, p('empty')), []);
    assert.deepEqual(await listed(backend, p('empty'), true), []);
  },

  async 'mkdir makes nested folders and is idempotent'({ backend, p }) {
    await backend.mkdir(p('a', 'b', 'c'));
    await backend.mkdir(p('a', 'b', 'c'));
    await backend.mkdir(p('a', 'b'));
    const entry = await backend.stat(p('a', 'b', 'c'));
    assert.equal(entry.kind, 'dir');
    assert.equal(entry.path, p('a', 'b', 'c'));
    const entries = await collect(backend.list(p('a')));
    assert.deepEqual(entries.map((e) => [e.path, e.kind]), [[p('a', 'b'), 'dir']]);
  },

  async 'round-trips 0 B, 1 B, all 256 byte values and a large file'({ backend, p, options }) {
    const allBytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const large = pattern(options.largeBytes, 1);
    const cases: Array<[string, Buffer, boolean]> = [
      ['empty.bin', Buffer.alloc(0), false],
      ['empty-stream.bin', Buffer.alloc(0), true],
      ['one.bin', Buffer.from([0x5a]), false],
      ['bytes.bin', allBytes, false],
      ['bytes-stream.bin', Buffer.concat([allBytes, allBytes.reverse()]), true],
      ['large.bin', large, true],
      ['large-buffer.bin', large.subarray(0, MiB + 3), false],
    ];
    for (const [name, bytes, stream] of cases) {
      const entry = await backend.put(p(name), stream ? chunked(bytes) : new Uint8Array(bytes), { size: bytes.length });
      assert.equal(entry.path, p(name));
      assert.equal(entry.kind, 'file');
      assert.equal(entry.size, bytes.length, `put size of ${name}`);
      assert.equal((await backend.stat(p(name))).size, bytes.length, `stat size of ${name}`);
      const back = await getBytes(backend, p(name));
      assert.equal(back.length, bytes.length, `length of ${name}`);
      assert.ok(back.equals(bytes), `content of ${name}`);
    }
  },

  async 'put creates missing parent folders'({ backend, p }) {
    await backend.put(p('x', 'y', 'z.txt'), Buffer.from('deep'));
    assert.equal((await getBytes(backend, p('x', 'y', 'z.txt'))).toString(), 'deep');
    assert.equal((await backend.stat(p('x', 'y'))).kind, 'dir');
  },

  async 'put overwrites, longer and shorter'({ backend, p }) {
    await backend.put(p('f.txt'), Buffer.from('first version'));
    await backend.put(p('f.txt'), Buffer.from('second, longer version of the file'));
    assert.equal((await getBytes(backend, p('f.txt'))).toString(), 'second, longer version of the file');
    const entry = await backend.put(p('f.txt'), chunked(Buffer.from('3rd')));
    assert.equal(entry.size, 3);
    assert.equal((await getBytes(backend, p('f.txt'))).toString(), '3rd');
    assert.deepEqual(await listed(backend, p()), [p('f.txt')]);
  },

  async 'a put whose body fails halfway leaves nothing and keeps the old content'({ backend, p }) {
    await expectFailure(backend.put(p('new.bin'), failingBody(pattern(200_000, 2))));
    await expectCode(backend.stat(p('new.bin')), 'NotFound');
    await expectFailure(backend.put(p('sub', 'new.bin'), failingBody(pattern(70_000, 3))));
    await expectCode(backend.stat(p('sub', 'new.bin')), 'NotFound');
    const old = pattern(1000, 4);
    await backend.put(p('old.bin'), old);
    await expectFailure(backend.put(p('old.bin'), failingBody(pattern(300_000, 5))));
    assert.ok((await getBytes(backend, p('old.bin'))).equals(old), 'old content intact');
    // why: the listing must show neither the failed targets nor a temporary name.
    assert.deepEqual(await listed(backend, p(), true), [p('old.bin')]);
    assert.ok(!(await listed(backend, p())).some((e) => e !== p('old.bin') && e !== p('sub')), 'no temporaries listed');
  },

  async 'an aborted put changes nothing'({ backend, p }) {
    const pre = new AbortController();
    pre.abort();
    await expectCode(backend.put(p('pre.bin'), Buffer.from('x'), { signal: pre.signal }), 'Aborted');
    await expectCode(backend.stat(p('pre.bin')), 'NotFound');

    const old = Buffer.from('old content');
    await backend.put(p('mid.bin'), old);
    const mid = new AbortController();
    const { body, reading } = stalledBody(pattern(128 * 1024, 6));
    const put = backend.put(p('mid.bin'), body, { signal: mid.signal });
    await Promise.race([reading, put.catch(() => undefined)]);
    mid.abort();
    await expectCode(put, 'Aborted');
    assert.ok((await getBytes(backend, p('mid.bin'))).equals(old), 'old content intact');
    const fresh = new AbortController();
    const stalled = stalledBody(pattern(128 * 1024, 7));
    const putNew = backend.put(p('new', 'mid.bin'), stalled.body, { signal: fresh.signal });
    await Promise.race([stalled.reading, putNew.catch(() => undefined)]);
    fresh.abort();
    await expectCode(putNew, 'Aborted');
    await expectCode(backend.stat(p('new', 'mid.bin')), 'NotFound');
    assert.deepEqual(await listed(backend, p(), true), [p('mid.bin')]);
  },

  async 'an aborted get or list changes nothing'({ backend, p, options }) {
    const data = pattern(Math.min(options.largeBytes, 2 * MiB), 8);
    await backend.put(p('g.bin'), data);
    await backend.put(p('h.bin'), Buffer.from('h'));
    const pre = new AbortController();
    pre.abort();
    await expectCode(backend.get(p('g.bin'), { signal: pre.signal }), 'Aborted');
    await expectCode(collect(backend.list(p(), { signal: pre.signal })), 'Aborted');

    const mid = new AbortController();
    const stream = await backend.get(p('g.bin'), { signal: mid.signal });
    const iterator = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    await iterator.next();
    mid.abort();
    try {
      while (!(await iterator.next()).done) {
        // drain: the stream may end or fail with Aborted; both are fine
      }
    } catch (error) {
      assert.ok(error instanceof EscaleError || (error as Error).name === 'AbortError', `unexpected ${String(error)}`);
    }
    stream.destroy();

    const listAbort = new AbortController();
    try {
      for await (const _entry of backend.list(p(), { signal: listAbort.signal })) listAbort.abort();
    } catch (error) {
      assert.ok(error instanceof EscaleError && error.code === 'Aborted', `unexpected ${String(error)}`);
    }
    assert.ok((await getBytes(backend, p('g.bin'))).equals(data));
    assert.deepEqual(await listed(backend, p()), [p('g.bin'), p('h.bin')]);
  },

  async 'get and stat of a missing file fail with NotFound'({ backend, p }) {
    await expectCode(backend.get(p('missing.txt')), 'NotFound');
    await expectCode(backend.stat(p('missing.txt')), 'NotFound');
    await backend.mkdir(p());
    await expectCode(backend.get(p('missing.txt')), 'NotFound');
    await expectCode(backend.stat(p('missing.txt')), 'NotFound');
    await expectCode(backend.get(p('no', 'such', 'file')), 'NotFound');
  },

  async 'delete removes a file; a missing one fails with NotFound'({ backend, p }) {
    await backend.put(p('d.txt'), Buffer.from('d'));
    await backend.put(p('keep.txt'), Buffer.from('k'));
    await backend.delete(p('d.txt'));
    await expectCode(backend.stat(p('d.txt')), 'NotFound');
    await expectCode(backend.delete(p('d.txt')), 'NotFound');
    await expectCode(backend.delete(p('nowhere', 'd.txt')), 'NotFound');
    assert.deepEqual(await listed(backend, p()), [p('keep.txt')]);
  },

  async 'rename to a new name, into a new folder, over an existing file, from a missing one'({ backend, p }) {
    await backend.put(p('a.txt'), Buffer.from('A'));
    await backend.rename(p('a.txt'), p('b.txt'));
    await expectCode(backend.stat(p('a.txt')), 'NotFound');
    assert.equal((await getBytes(backend, p('b.txt'))).toString(), 'A');

    await backend.rename(p('b.txt'), p('new', 'dir', 'c.txt'));
    assert.equal((await getBytes(backend, p('new', 'dir', 'c.txt'))).toString(), 'A');

    await backend.put(p('src.txt'), Buffer.from('source'));
    await backend.put(p('dst.txt'), Buffer.from('old target'));
    if (backend.features.renameOverwrites) {
      await backend.rename(p('src.txt'), p('dst.txt'));
      assert.equal((await getBytes(backend, p('dst.txt'))).toString(), 'source');
      await expectCode(backend.stat(p('src.txt')), 'NotFound');
    } else {
      await expectCode(backend.rename(p('src.txt'), p('dst.txt')), 'AlreadyExists');
      assert.equal((await getBytes(backend, p('dst.txt'))).toString(), 'old target');
    }
    await expectCode(backend.rename(p('missing.txt'), p('other.txt')), 'NotFound');
    await expectCode(backend.stat(p('other.txt')), 'NotFound');
  },

  async 'hostile names round-trip and list exactly, each in its own spelling (NFD stays NFD)'({ backend, dir, p, options }) {
    const q = (...names: string[]): RelayPath => joinRelay(dir, ...names);
    // why: the longest name the server takes, mostly in two-byte characters.
    const pairs = Math.floor((options.longestName - 1) / 2);
    const longest = 'é'.repeat(pairs) + 'x'.repeat(options.longestName - 2 * pairs);
    const names = [...HOSTILE_NAMES, longest];
    assert.equal(Buffer.byteLength(longest), options.longestName);
    for (const [i, name] of names.entries()) {
      await backend.put(q(name), Buffer.from(`content ${i}`));
    }
    await backend.put(p('dir with space', '#x', '.y.placeholder'), Buffer.from('nested'));
    const expected = sorted([...names.map((n) => q(n)), p('dir with space')]);
    assert.deepEqual(await listed(backend, p()), expected);
    for (const [i, name] of names.entries()) {
      assert.equal((await getBytes(backend, q(name))).toString(), `content ${i}`, `content of ${JSON.stringify(name)}`);
      assert.equal((await backend.stat(q(name))).size, Buffer.byteLength(`content ${i}`));
    }
    assert.deepEqual(await listed(backend, p('dir with space'), true), [p('dir with space', '#x', '.y.placeholder')]);
    for (const name of names) await backend.rename(q(name), q(`${name.slice(0, 100)}-renamed`));
    assert.ok((await listed(backend, p())).includes(q('cafe\u0301-nfd.txt-renamed')), 'a rename keeps the spelling');
    for (const name of names) await backend.delete(q(`${name.slice(0, 100)}-renamed`));
    assert.deepEqual(await listed(backend, p()), [p('dir with space')]);
  },

  async 'names no client can send (backslash, control characters, bytes that are not UTF-8) are never listed; where the server shows them they go to onRefused'({ backend, p, localDir }) {
    if (localDir === undefined) return;
    const planted: Array<[Buffer, string]> = [
      [Buffer.from('back\\slash.txt'), 'contains a backslash'],
      [Buffer.from('tab\tname.txt'), 'contains a control character'],
      [Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]), 'is not valid UTF-8'],
    ];
    await backend.put(p('ok.txt'), Buffer.from('ok'));
    for (const [name] of planted) writeFileSync(Buffer.concat([Buffer.from(`${localDir}/`), name]), 'planted');
    const refused: Array<[string, string]> = [];
    const entries = await collect(backend.list(p(), { recursive: true, onRefused: (name, problem) => refused.push([name, problem]) }));
    assert.deepEqual(entries.map((e) => e.path), [p('ok.txt')]);
    assert.equal(refused.length, planted.length, JSON.stringify(refused));
    for (const [name, problem] of refused) assert.ok(planted.some(([, why]) => problem.startsWith(why)), `${name}: ${problem}`);
  },

  async 'lists past one page of entries'({ backend, p, options }) {
    const names = Array.from({ length: options.manyFiles }, (_, i) => `file-${String(i).padStart(5, '0')}.txt`);
    await pool(names, Math.min(backend.features.maxConnections, 16), async (name) => {
      await backend.put(p('many', name), Buffer.from(name));
    });
    const flat = await collect(backend.list(p('many')));
    assert.equal(flat.length, names.length);
    assert.deepEqual(flat.map((e) => e.path).sort(), names.map((n) => p('many', n)));
    assert.ok(flat.every((e) => e.kind === 'file' && e.size === Buffer.byteLength(basename(e.path))));
    const deep = await listed(backend, p(), true);
    assert.equal(deep.length, names.length);
  },

  async 'recursive listing of a nested tree'({ backend, p }) {
    const files = ['a.txt', '.dot', 'd1/b.txt', 'd1/d2/c.txt', 'd1/d2/d3/e.txt', '.hidden/f.txt', 'z/y/x/w/v.txt'];
    for (const f of files) await backend.put(p(...f.split('/')), Buffer.from(f));
    await backend.mkdir(p('empty'));
    assert.deepEqual(await listed(backend, p(), true), sorted(files.map((f) => p(...f.split('/')))));
    const top = await collect(backend.list(p()));
    assert.deepEqual(
      top.map((e) => `${e.kind}:${e.path}`).sort(),
      sorted(['file:a.txt', 'file:.dot', 'dir:d1', 'dir:.hidden', 'dir:z', 'dir:empty'].map((s) => s.replace(':', `:${p()}/`))),
    );
    assert.deepEqual(await listed(backend, p('d1'), true), [p('d1', 'b.txt'), p('d1', 'd2', 'c.txt'), p('d1', 'd2', 'd3', 'e.txt')]);
    const sub = await collect(backend.list(p('d1')));
    assert.deepEqual(sub.map((e) => `${e.kind}:${e.path}`).sort(), [`dir:${p('d1', 'd2')}`, `file:${p('d1', 'b.txt')}`]);
    const bEntry = top.find((e) => e.path === p('a.txt')) as Entry;
    assert.equal(bEntry.size, 5);
  },

  async 'parallel puts up to maxConnections'({ backend, p }) {
    const width = Math.min(backend.features.maxConnections, 16);
    const bodies = Array.from({ length: width * 2 }, (_, i) => pattern(100_000 + i * 1000, 10 + i));
    await Promise.all(bodies.map((b, i) => backend.put(p(`par-${i}.bin`), chunked(b))));
    await Promise.all(bodies.map(async (b, i) => assert.ok((await getBytes(backend, p(`par-${i}.bin`))).equals(b), `par-${i}`)));
    await Promise.all(bodies.map((_, i) => backend.put(p('same.bin'), pattern(50_000, i))));
    const last = await getBytes(backend, p('same.bin'));
    assert.ok(bodies.some((_, i) => last.equals(pattern(50_000, i))), 'one whole version wins');
  },

  async 'exclusive put refuses an existing file'({ backend, p, options }) {
    if (!options.exclusive) return;
    await backend.put(p('x.lock'), Buffer.from('mine'), { exclusive: true });
    await expectCode(backend.put(p('x.lock'), Buffer.from('theirs'), { exclusive: true }), 'AlreadyExists');
    await expectCode(backend.put(p('x.lock'), chunked(Buffer.from('theirs')), { exclusive: true }), 'AlreadyExists');
    assert.equal((await getBytes(backend, p('x.lock'))).toString(), 'mine');
    await backend.put(p('x.lock'), Buffer.from('overwrite'));
    assert.equal((await getBytes(backend, p('x.lock'))).toString(), 'overwrite');
    const racers = await Promise.allSettled(Array.from({ length: 4 }, (_, i) => backend.put(p('race.lock'), Buffer.from(`r${i}`), { exclusive: true })));
    assert.equal(racers.filter((r) => r.status === 'fulfilled').length, 1, 'exactly one exclusive put wins');
    assert.deepEqual(await listed(backend, p()), [p('race.lock'), p('x.lock')]);
  },

  async 'mtimes are present when the features say so'({ backend, p }) {
    const precision = backend.features.mtimePrecisionMs;
    if (precision === undefined) return;
    const slack = precision + 120_000;
    const before = Date.now();
    const put = await backend.put(p('m.txt'), Buffer.from('m'));
    const afterPut = Date.now();
    const stat = await backend.stat(p('m.txt'));
    const [entry] = await collect(backend.list(p()));
    for (const [label, e] of [['stat', stat], ['list', entry], ['put', put]] as const) {
      if (label === 'put' && e?.mtimeMs === undefined) continue;
      assert.equal(typeof e?.mtimeMs, 'number', `${label} gives an mtime`);
      const mtime = e?.mtimeMs as number;
      assert.ok(mtime >= before - slack && mtime <= afterPut + slack, `${label} mtime ${new Date(mtime).toISOString()} near now`);
    }
    assert.ok(Math.abs((stat.mtimeMs as number) - (entry?.mtimeMs as number)) <= precision, 'stat and list agree');
  },

  async "the relay clock is known after a put or one probe, and agrees with the server's mtimes"({ backend, p }) {
    const precision = backend.features.mtimePrecisionMs;
    if (precision === undefined) return;
    await backend.put(p('clock.txt'), Buffer.from('c'));
    // why: a put that answers without an mtime (WebDAV, rclone) leaves the clock to the probe.
    await probeRelayClock(backend);
    assert.equal(backend.clock.known, true);
    const relay = backend.clock.now();
    const local = Date.now();
    assert.ok(relay !== undefined);
    // the servers run on this machine, so the relay's clock is this machine's
    const slack = precision + 120_000;
    assert.ok(relay.earliest <= local + slack && relay.latest >= local - slack, `relay ${new Date(relay.earliest).toISOString()} vs local ${new Date(local).toISOString()}`);
    assert.ok(relay.latest - relay.earliest <= 2 * precision + 60_000, `bounds ${relay.latest - relay.earliest} ms wide`);
    const written = await backend.stat(p('clock.txt'));
    assert.equal(backend.clock.judge(`conformance ${p('clock.txt')}`, written, 3600_000).stale, false, 'a file just written is young by the relay clock');
    assert.deepEqual((await listed(backend, '' as RelPath)).filter((path) => path.startsWith('.escale-put-')), [], 'the probe left nothing in a listing');
  },
};

async function expectFailure(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(promise, (error: unknown) => error instanceof Error);
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
