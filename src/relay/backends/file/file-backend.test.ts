import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, rm, stat, symlink, utimes, writeFile, chmod, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EscaleError, type ErrorCode } from '../../../core/errors.js';
import { relayPath, relPath, type RelPath } from '../../../core/relpath.js';
import { createLogger, memorySink, type LogRecord } from '../../../core/log.js';
import { RelayClock } from '../../relay-clock.js';
import { FILE_TEMP_PATTERN, openFileBackend, type FileBackend } from './file-backend.js';
import { fileRoot } from './file-descriptor.js';

const execFileAsync = promisify(execFile);

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof EscaleError, `not an EscaleError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    return true;
  });
}

async function paths(backend: FileBackend, dir = '', recursive = false): Promise<string[]> {
  const out: string[] = [];
  for await (const e of backend.list(relPath(dir), { recursive })) out.push(`${e.kind}:${e.path}`);
  return out.sort();
}

async function readAllText(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

describe('file backend', () => {
  let base: string;
  let outside: string;
  let root: string;
  let counter = 0;

  before(async () => {
    base = await mkdtemp(join(tmpdir(), 'escale-file-'));
    outside = join(base, 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret.txt'), 'secret');
  });
  after(() => rm(base, { recursive: true, force: true }));

  async function fresh(options: { now?: () => number; synchronous?: boolean } = {}): Promise<FileBackend> {
    root = join(base, `root-${++counter}`);
    await mkdir(root);
    return openFileBackend({ root, ...options });
  }

  it('refuses a relative, missing or non-folder root', async () => {
    await expectCode(openFileBackend({ root: 'relative/dir' }), 'Config');
    await expectCode(openFileBackend({ root: join(base, 'nope') }), 'NotFound');
    await writeFile(join(base, 'plain-file'), 'x');
    await expectCode(openFileBackend({ root: join(base, 'plain-file') }), 'NotFound');
  });

  it('creates a missing relay folder and its parents when asked (as 0.7), naming what it made; says which folder is missing otherwise', async () => {
    const wanted = join(base, 'made', 'by', 'escale');
    await assert.rejects(openFileBackend({ root: wanted }), (error: EscaleError) => error.code === 'NotFound' && error.message === `the relay folder '${wanted}' does not exist`);
    const made: string[][] = [];
    const backend = await openFileBackend({ root: wanted, create: { onCreated: (folders) => made.push([...folders]) } });
    assert.deepEqual(made, [[join(base, 'made'), join(base, 'made', 'by'), wanted]]);
    assert.ok((await stat(wanted)).isDirectory());
    await backend.put(relPath('x'), Buffer.from('x'));
    await openFileBackend({ root: wanted, create: { onCreated: (folders) => made.push([...folders]) } });
    assert.equal(made.length, 1, 'an existing folder is not reported');
    await writeFile(join(base, 'a-file'), 'x');
    await assert.rejects(openFileBackend({ root: join(base, 'a-file', 'relay'), create: { onCreated: () => assert.fail('nothing made') } }), (error: EscaleError) => /cannot create the relay folder/.test(error.message));
  });

  it('reports a relay entry it cannot stat (not deleted since) through onUnreadable, and lists the rest', async () => {
    const backend = await fresh();
    await writeFile(join(root, 'ok.txt'), 'ok');
    // why: as root no permission makes lstat fail; a path just over PATH_MAX does (ENAMETOOLONG), while its folder still opens.
    // a folder of 3839 bytes below the root and a name of 255: 4095 bytes relative (a valid relay path), more than PATH_MAX absolute
    const parts: string[] = [];
    let length = -1;
    while (length + 201 <= 3839) {
      parts.push('d'.repeat(200));
      length += 201;
    }
    if (3839 - length - 1 > 0) parts.push('e'.repeat(3839 - length - 1));
    const folder = parts.join('/');
    await mkdir(join(root, folder), { recursive: true });
    const name = 'f'.repeat(255);
    assert.ok(root.length + 1 + folder.length + 1 + name.length > 4095, 'the absolute path passes PATH_MAX');
    await execFileAsync('sh', ['-c', `printf x > ${name}`], { cwd: join(root, folder) });
    try {
      const reported: Array<[string, string]> = [];
      const listed: string[] = [];
      for await (const entry of backend.list(relPath(''), { recursive: true, onUnreadable: (path, error) => reported.push([path, error.code]) })) listed.push(entry.path);
      assert.deepEqual(listed, ['ok.txt']);
      assert.deepEqual(reported, [[`${folder}/${name}`, 'InvalidName']]);
    } finally {
      // why: the file's absolute path is too long for rm(); removed from inside its folder.
      await execFileAsync('rm', ['-f', name], { cwd: join(root, folder) });
    }
  });

  it('joins host address and host directory for the registry (configuration.md C5)', () => {
    assert.equal(fileRoot({ protocol: 'file', host: '/mnt/relay', directory: 'sub/dir', options: {} }), '/mnt/relay/sub/dir');
    assert.equal(fileRoot({ protocol: 'file', host: '/mnt/relay', directory: '', options: {} }), '/mnt/relay');
    assert.equal(fileRoot({ protocol: 'file', directory: '/abs', options: {} }), '/abs');
    assert.throws(() => fileRoot({ protocol: 'file', host: 'relative', directory: '', options: {} }), (e: unknown) => e instanceof EscaleError && e.code === 'Config');
  });

  for (const synchronous of [true, false]) {
  const calls = synchronous ? 'synchronous calls' : 'thread-pool calls';
  it(`skips a symlinked file in listings and refuses it everywhere (${calls})`, async () => {
    const backend = await fresh({ synchronous });
    await symlink(join(outside, 'secret.txt'), join(root, 'link.txt'));
    await symlink(join(outside, 'missing'), join(root, 'dangling'));
    await backend.put(relPath('real.txt'), Buffer.from('real'));
    assert.deepEqual(await paths(backend), ['file:real.txt']);
    assert.deepEqual(await paths(backend, '', true), ['file:real.txt']);
    await expectCode(backend.get(relPath('link.txt')), 'PermissionDenied');
    await expectCode(backend.stat(relPath('link.txt')), 'PermissionDenied');
    await expectCode(backend.delete(relPath('link.txt')), 'PermissionDenied');
    await expectCode(backend.put(relPath('link.txt'), Buffer.from('overwrite')), 'PermissionDenied');
    await expectCode(backend.put(relPath('dangling'), Buffer.from('create')), 'PermissionDenied');
    await expectCode(backend.rename(relPath('link.txt'), relPath('moved.txt')), 'PermissionDenied');
    await expectCode(backend.rename(relPath('real.txt'), relPath('link.txt')), 'PermissionDenied');
    assert.equal(await readFile(join(outside, 'secret.txt'), 'utf8'), 'secret');
    assert.deepEqual(await readdir(outside), ['secret.txt']);
  });

  it(`never goes through a symlinked folder (${calls})`, async () => {
    const backend = await fresh({ synchronous });
    await symlink(outside, join(root, 'escape'));
    await mkdir(join(root, 'inner'));
    await symlink(outside, join(root, 'inner', 'deeper'));
    assert.deepEqual(await paths(backend), ['dir:inner']);
    assert.deepEqual(await paths(backend, '', true), []);
    await expectCode(collectAll(backend, 'escape'), 'PermissionDenied');
    await expectCode(backend.get(relPath('escape/secret.txt')), 'PermissionDenied');
    await expectCode(backend.stat(relPath('escape/secret.txt')), 'PermissionDenied');
    await expectCode(backend.delete(relPath('inner/deeper/secret.txt')), 'PermissionDenied');
    await expectCode(backend.put(relPath('escape/new.txt'), Buffer.from('x')), 'PermissionDenied');
    await expectCode(backend.put(relPath('inner/deeper/sub/new.txt'), Buffer.from('x')), 'PermissionDenied');
    await expectCode(backend.mkdir(relPath('escape/sub')), 'PermissionDenied');
    await backend.put(relPath('ok.txt'), Buffer.from('ok'));
    await expectCode(backend.rename(relPath('ok.txt'), relPath('escape/ok.txt')), 'PermissionDenied');
    assert.deepEqual((await readdir(outside)).sort(), ['secret.txt']);
  });

  it(`a folder replaced by a symlink after calls went through it is caught by the next get and put, nothing read or left outside (${calls})`, async () => {
    const writer = await fresh({ synchronous });
    const reader = await openFileBackend({ root, synchronous });
    await writer.put(relPath('a/b/x.txt'), Buffer.from('relay'));
    assert.equal(await readAllText(await reader.get(relPath('a/b/x.txt'))), 'relay');
    // why: within a round both remember the folders a and a/b; a hostile relay swaps 'a' for a link now.
    const elsewhere = join(base, `elsewhere-${counter}`);
    await mkdir(join(elsewhere, 'b'), { recursive: true });
    await writeFile(join(elsewhere, 'b', 'x.txt'), 'outside');
    await execFileAsync('mv', [join(root, 'a'), join(root, 'a-moved')]);
    await symlink(elsewhere, join(root, 'a'));
    await expectCode(writer.put(relPath('a/b/y.txt'), Buffer.from('new')), 'PermissionDenied');
    await expectCode(reader.get(relPath('a/b/x.txt')), 'PermissionDenied');
    await expectCode(writer.delete(relPath('a/b/x.txt')), 'PermissionDenied');
    assert.deepEqual((await readdir(join(elsewhere, 'b'))).sort(), ['x.txt'], 'no file or temporary left outside');
    assert.equal(await readFile(join(elsewhere, 'b', 'x.txt'), 'utf8'), 'outside');
  });

  it(`reads and writes small and large files in one piece or in chunks, alike (${calls})`, async () => {
    const backend = await fresh({ synchronous });
    for (const size of [0, 1, 4096, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024 + 17]) {
      const data = Buffer.alloc(size, size % 251);
      for (let i = 0; i < size; i += 4093) data[i] = i % 256;
      const entry = await backend.put(relPath(`d/f${size}`), data);
      assert.equal(entry.size, size);
      const chunks: Buffer[] = [];
      for await (const chunk of await backend.get(relPath(`d/f${size}`))) chunks.push(chunk as Buffer);
      assert.ok(Buffer.concat(chunks).equals(data), `round trip of ${size} bytes`);
    }
  });
  }

  it('refuses paths that are not safe RelPaths even when cast', async () => {
    const backend = await fresh();
    for (const bad of ['../outside/secret.txt', '/etc/passwd', 'a/../../x', 'a//b', 'x\\y']) {
      await expectCode(backend.get(bad as RelPath), 'InvalidName');
      await expectCode(backend.put(bad as RelPath, Buffer.from('x')), 'InvalidName');
    }
  });

  it('hides temporaries, removes stale ones (by the relay clock) when listing, with the evidence, keeps fresh ones', async () => {
    let mono = 0;
    const clock = new RelayClock({ monotonic: () => mono });
    const logs: LogRecord[] = [];
    root = join(base, `root-${++counter}`);
    await mkdir(join(root, 'sub'), { recursive: true });
    const staleTop = join(root, '.escale-put-0123456789abcdef.tmp');
    const staleSub = join(root, 'sub', '.escale-put-fedcba9876543210.tmp');
    const freshSub = join(root, 'sub', '.escale-put-00000000000000aa.tmp');
    for (const f of [staleTop, staleSub, freshSub]) await writeFile(f, 'partial');
    const old = new Date(Date.now() - 2 * 3600 * 1000);
    await utimes(staleTop, old, old);
    await utimes(staleSub, old, old);
    const backend = await openFileBackend({ root, clock, logger: createLogger([memorySink(logs)]) });
    await stat(staleTop); // opening changes nothing
    assert.deepEqual(await paths(backend), ['dir:sub']);
    assert.equal(clock.known, true, 'a temporary to judge made the backend probe the relay clock');
    await assert.rejects(stat(staleTop), { code: 'ENOENT' });
    assert.deepEqual(await readdir(root), ['sub'], 'the probe left nothing');
    assert.match(logs.map((r) => r.message).join('\n'), /removed the upload temporary '\.escale-put-0123456789abcdef\.tmp' left by an interrupted put: it is 2 h 0 min old by the relay's clock/);
    await stat(staleSub); // a listing cleans the folders it reads
    assert.deepEqual(await paths(backend, 'sub'), []);
    await assert.rejects(stat(staleSub), { code: 'ENOENT' });
    await stat(freshSub);
    mono += 2 * 3600 * 1000;
    assert.deepEqual(await paths(backend, '', true), []);
    await assert.rejects(stat(freshSub), { code: 'ENOENT' });
    assert.ok(FILE_TEMP_PATTERN.test('.escale-put-0123456789abcdef.tmp'));
    assert.ok(!FILE_TEMP_PATTERN.test('.escale-put-0123456789abcdef.tmp.lock'));
  });

  it('a temporary that keeps growing is kept past the stale age; once it stops, it goes after the stale age of no progress', async () => {
    let mono = 0;
    const clock = new RelayClock({ monotonic: () => mono });
    root = join(base, `root-${++counter}`);
    await mkdir(root);
    const growing = join(root, '.escale-put-0000000000000bbb.tmp');
    await writeFile(growing, 'a');
    const backend = await openFileBackend({ root, clock, staleTempMs: 60_000 });
    for (let i = 0; i < 5; i++) {
      mono += 50_000;
      await writeFile(growing, 'more', { flag: 'a' });
      const future = new Date(Date.now() + 24 * 3600_000);
      await utimes(growing, future, future); // dated in the future (its writer's clock): never old by the relay's clock
      assert.deepEqual(await paths(backend), []);
      await stat(growing);
    }
    mono += 30_000;
    assert.deepEqual(await paths(backend), []);
    await stat(growing);
    mono += 31_000;
    assert.deepEqual(await paths(backend), []);
    await assert.rejects(stat(growing), { code: 'ENOENT' });
  });

  it('a failed put removes its temporary and the folders it made', async () => {
    const backend = await fresh();
    const { Readable } = await import('node:stream');
    const body = new Readable({
      read() {
        this.push(Buffer.alloc(1000));
        this.destroy(new Error('boom'));
      },
    });
    await assert.rejects(backend.put(relPath('a/b/c.bin'), body));
    assert.deepEqual(await readdir(root), []);
  });

  it('refuses to put over a folder and to make a folder through a file', async () => {
    const backend = await fresh();
    await backend.mkdir(relPath('d'));
    await expectCode(backend.put(relPath('d'), Buffer.from('x')), 'AlreadyExists');
    await backend.put(relPath('f'), Buffer.from('x'));
    await expectCode(backend.mkdir(relPath('f/sub')), 'AlreadyExists');
    await expectCode(backend.put(relPath('f/sub/x'), Buffer.from('x')), 'AlreadyExists');
    await expectCode(backend.get(relPath('d')), 'NotFound');
    await expectCode(backend.delete(relPath('d')), 'NotFound');
  });

  it('lists an NFD name in its own spelling and serves it back; a colon and a drive-like prefix are ordinary', async () => {
    const backend = await fresh();
    await writeFile(join(root, 'cafe\u0301.txt'), 'nfd');
    await writeFile(join(root, 'Q: answers.txt'), 'colon');
    await mkdir(join(root, 'C:'));
    await writeFile(join(root, 'C:', 'x'), 'drive');
    assert.deepEqual(await paths(backend, '', true), ['file:C:/x', 'file:Q: answers.txt', 'file:cafe\u0301.txt']);
    const nfd = relayPath('cafe\u0301.txt');
    assert.equal((await readFile(join(root, nfd))).toString(), 'nfd');
    assert.equal(Buffer.concat(await (await backend.get(nfd)).toArray()).toString(), 'nfd');
    await backend.put(nfd, Buffer.from('nfd 2'));
    assert.deepEqual((await readdir(root)).sort(), ['C:', 'Q: answers.txt', 'cafe\u0301.txt'], 'no NFC twin was created');
    await expectCode(backend.get(relPath('cafe\u0301.txt')), 'NotFound');
  });

  it('refuses names it cannot hand out (not UTF-8, control characters, backslash), each to onRefused, and does not descend into a refused folder', async () => {
    const backend = await fresh();
    const rawRoot = Buffer.from(root);
    const at = (...parts: (string | Buffer)[]): Buffer => Buffer.concat([rawRoot, ...parts.flatMap((part) => [Buffer.from('/'), Buffer.from(part)])]);
    await writeFile(at(Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74])), 'latin1');
    await writeFile(join(root, 'tab\there'), 'tab');
    await writeFile(join(root, 'back\\slash'), 'bs');
    await mkdir(join(root, 'dir\x01'));
    await writeFile(join(root, 'dir\x01', 'inside.txt'), 'hidden');
    await writeFile(join(root, 'ok.txt'), 'ok');
    const refused: Array<[string, string]> = [];
    const listed: string[] = [];
    for await (const entry of backend.list(relPath(''), { recursive: true, onRefused: (name, problem) => refused.push([name, problem]) })) listed.push(entry.path);
    assert.deepEqual(listed, ['ok.txt']);
    assert.deepEqual(refused.sort(), [
      ['back\\slash', 'contains a backslash'],
      ['caf\udce9.txt', 'is not valid UTF-8'],
      ['dir\x01', 'contains a control character'],
      ['tab\there', 'contains a control character'],
    ]);
  });

  it('translates permission errors', async (t) => {
    const backend = await fresh();
    const locked = join(root, 'locked');
    await mkdir(locked);
    await writeFile(join(locked, 'kept.txt'), 'kept');
    // why: root ignores mode bits; the immutable attribute (chattr +i) refuses writes to root too.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) {
      try {
        await execFileAsync('chattr', ['+i', locked]);
      } catch (error) {
        t.skip(`running as root and chattr +i is not possible: ${String(error)}`);
        return;
      }
    } else await chmod(locked, 0o500);
    try {
      await expectCode(backend.put(relPath('locked/x.txt'), Buffer.from('x')), 'PermissionDenied');
      await expectCode(backend.delete(relPath('locked/kept.txt')), 'PermissionDenied');
      await expectCode(backend.mkdir(relPath('locked/sub')), 'PermissionDenied');
      assert.deepEqual(await readdir(locked), ['kept.txt']);
    } finally {
      if (asRoot) await execFileAsync('chattr', ['-i', locked]);
      else await chmod(locked, 0o700);
    }
  });

  it('is unusable after close', async () => {
    const backend = await fresh();
    await backend.close();
    await expectCode(backend.stat(relPath('x')), 'Internal');
  });
});

async function collectAll(backend: FileBackend, dir: string): Promise<void> {
  for await (const _ of backend.list(relPath(dir))) {
    // drain
  }
}
