import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FileFilter } from './filter.js';
import { scanLocal, localPathOf, type ScannedFile } from './scanner.js';
import type { EscaleError } from '../core/errors.js';

async function tempTree(files: Record<string, string>): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'escale-scan-'));
  for (const [path, content] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), content);
  }
  return root;
}

async function scan(root: string, filter = FileFilter.acceptAll()): Promise<{ files: ScannedFile[]; errors: [string, EscaleError][] }> {
  const files: ScannedFile[] = [];
  const errors: [string, EscaleError][] = [];
  for await (const file of scanLocal(root, filter, { onError: (path, error) => errors.push([path, error]) })) files.push(file);
  files.sort((a, b) => (a.path < b.path ? -1 : 1));
  return { files, errors };
}

test('lists nested regular files with size and mtime; skips dot files and dot folders at every depth', async (t) => {
  const root = await tempTree({
    'a.txt': 'aaa',
    'd/b.txt': 'bb',
    'd/e/f/c.bin': 'c',
    '.hidden': 'x',
    'd/.hidden': 'x',
    '.git/config': 'x',
    'd/.cache/deep/file': 'x',
    'd/.escale-0123456789abcdef.tmp': 'x',
  });
  t.after(() => rm(root, { recursive: true, force: true }));
  const { files, errors } = await scan(root);
  assert.deepEqual(files.map((f) => [f.path, f.size]), [['a.txt', 3], ['d/b.txt', 2], ['d/e/f/c.bin', 1]]);
  assert.deepEqual(errors, []);
  for (const f of files) assert.ok(f.mtimeMs > 0 && f.diskPath === undefined);
});

test('a missing root yields nothing; a file as root throws NotFound', async (t) => {
  const root = await tempTree({ f: 'x' });
  t.after(() => rm(root, { recursive: true, force: true }));
  assert.deepEqual((await scan(join(root, 'missing'))).files, []);
  await assert.rejects(scan(join(root, 'f')), { code: 'NotFound' });
});

test('directory and file filters are applied while crawling; root files skip directory filters', async (t) => {
  const root = await tempTree({ 'top.txt': '', 'docs/a.txt': '', 'docs/x/b.txt': '', 'src/c.txt': '', 'docs/skip.bin': '' });
  t.after(() => rm(root, { recursive: true, force: true }));
  const filter = new FileFilter({
    extensions: ['txt'],
    include: [],
    exclude: [],
    includeDirs: [{ source: 'docs', regex: /docs/ }],
    excludeDirs: [],
  });
  const { files } = await scan(root, filter);
  assert.deepEqual(files.map((f) => f.path), ['docs/a.txt', 'docs/x/b.txt', 'top.txt']);
});

test('unicode names: NFD on disk is reported as NFC with its disk spelling; an NFC twin is reported, not duplicated', async (t) => {
  const nfd = 'e\u0301t\u00e9-nfd.txt'.normalize('NFD');
  const root = await tempTree({ [nfd]: 'nfd', 'caf\u00e9.txt': 'nfc' });
  t.after(() => rm(root, { recursive: true, force: true }));
  const { files, errors } = await scan(root);
  const byPath = new Map(files.map((f) => [f.path as string, f]));
  const nfdFile = byPath.get(nfd.normalize('NFC'));
  assert.ok(nfdFile, 'NFD name listed in NFC');
  assert.equal(nfdFile.diskPath, nfd);
  assert.equal(localPathOf(root, nfdFile), join(root, nfd));
  assert.equal(byPath.get('caf\u00e9.txt')?.diskPath, undefined);
  assert.deepEqual(errors, []);

  // Same name in both forms in one folder (possible on Linux): one is listed, the other reported.
  const twinNfc = 'tw\u00efn';
  await writeFile(join(root, twinNfc), '1');
  await writeFile(join(root, twinNfc.normalize('NFD')), '2');
  if ((await readdir(root)).filter((n) => n.normalize('NFC') === twinNfc).length === 2) {
    const again = await scan(root);
    assert.equal(again.files.filter((f) => f.path === twinNfc).length, 1);
    assert.equal(again.errors.length, 1);
    assert.equal(again.errors[0]?.[1].code, 'InvalidName');
  }
});

test('names that are not safe relative paths are reported and skipped', async (t) => {
  const root = await tempTree({ 'ok.txt': '', 'back\\slash.txt': '', 'line\nfeed.txt': '', 'bad\\dir/inner.txt': '' });
  t.after(() => rm(root, { recursive: true, force: true }));
  const { files, errors } = await scan(root);
  assert.deepEqual(files.map((f) => f.path), ['ok.txt']);
  assert.deepEqual(errors.map(([p, e]) => [p, e.code]).sort(), [['back\\slash.txt', 'InvalidName'], ['bad\\dir', 'InvalidName'], ['line\nfeed.txt', 'InvalidName']]);
});

test('refused names go to onRefused with their reason: not UTF-8 (as lone surrogates), tab, control characters, backslash, too deep', async (t) => {
  const root = await tempTree({ 'ok.txt': 'ok', 'Q: answers.txt': 'colon', 'C:/x.txt': 'drive', ' lead and trail .txt ': 'spaces', 'tab\there.txt': '', 'esc\u001b.txt': '', 'back\\slash.txt': '' });
  // why: Node's rm fails with ENAMETOOLONG on the deep tree below; coreutils' rm walks it relatively.
  t.after(() => void spawnSync('rm', ['-rf', root]));
  const raw = (name: number[]): Buffer => Buffer.concat([Buffer.from(`${root}/`), Buffer.from(name)]);
  await writeFile(raw([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x74, 0x78, 0x74]), 'latin1 file');
  await mkdir(raw([0x64, 0x69, 0x72, 0xff]));
  await writeFile(Buffer.concat([raw([0x64, 0x69, 0x72, 0xff]), Buffer.from('/inner.txt')]), 'inside a latin1 folder');
  // why: a tree whose full path passes PATH_MAX; built with relative paths (each call stays short).
  let deep = join(root, 'deep');
  await mkdir(deep);
  for (let depth = 0; Buffer.byteLength(deep) < 4200; depth += 1) {
    deep = join(deep, 'd'.repeat(200));
    spawnSync('mkdir', ['d'.repeat(200)], { cwd: deep.slice(0, deep.lastIndexOf('/')) });
  }
  const files: string[] = [];
  const refused: [string, string][] = [];
  const errors: string[] = [];
  for await (const file of scanLocal(root, FileFilter.acceptAll(), { onRefused: (path, problem) => refused.push([path, problem]), onError: (path) => errors.push(path) })) files.push(file.path);
  assert.deepEqual(files.sort(), [' lead and trail .txt ', 'C:/x.txt', 'Q: answers.txt', 'ok.txt']);
  assert.deepEqual(errors, []);
  const reasons = new Map(refused);
  assert.equal(reasons.get('caf\udce9.txt'), 'is not valid UTF-8');
  assert.equal(reasons.get('dir\udcff'), 'is not valid UTF-8', 'a folder is refused once, not descended into');
  assert.equal(reasons.get('tab\there.txt'), 'contains a control character');
  assert.equal(reasons.get('esc\u001b.txt'), 'contains a control character');
  assert.equal(reasons.get('back\\slash.txt'), 'contains a backslash');
  const tooDeep = refused.filter(([path]) => path.startsWith('deep/'));
  assert.equal(tooDeep.length, 1, 'the first folder past the limit is refused once, and not entered');
  assert.match(tooDeep[0]?.[1] ?? '', /longer than 4095 bytes|too deep/);
  assert.equal(refused.length, 6, JSON.stringify(refused));
});

test('symbolic links are followed; a loop is reported and does not hang; dangling links are skipped', async (t) => {
  const root = await tempTree({ 'real/f.txt': 'data', 'outside/o.txt': 'o' });
  t.after(() => rm(root, { recursive: true, force: true }));
  const tree = join(root, 'tree');
  await mkdir(join(tree, 'a/b'), { recursive: true });
  await writeFile(join(tree, 'a/b/x.txt'), 'x');
  await symlink(join(root, 'real/f.txt'), join(tree, 'link-to-file.txt'));
  await symlink(join(root, 'outside'), join(tree, 'linked-dir'));
  await symlink('../..', join(tree, 'a/b/up')); // loop: a/b/up -> tree
  await symlink('self', join(tree, 'self')); // ELOOP
  await symlink('nowhere', join(tree, 'dangling'));
  const { files, errors } = await scan(tree);
  assert.deepEqual(files.map((f) => [f.path, f.size]), [['a/b/x.txt', 1], ['link-to-file.txt', 4], ['linked-dir/o.txt', 1]]);
  assert.deepEqual(errors.map(([p, e]) => [p, e.code]).sort(), [['a/b/up', 'InvalidName'], ['self', 'InvalidName']]);
  assert.match(errors.find(([p]) => p === 'a/b/up')?.[1].message ?? '', /loop/);
});

test('dangling links go to onDanglingLink; skip leaves out files and folders by identity, whatever their names', async (t) => {
  const root = await tempTree({ 'keep.txt': 'k', 'cc0123': 'cache', 'data/am0123': 'access', 'sub/keep2.txt': 'k2', 'sub/hard.txt': 'h' });
  t.after(() => rm(root, { recursive: true, force: true }));
  await symlink('missing-target', join(root, 'dangling'));
  await symlink(join(root, 'cc0123'), join(root, 'alias-of-cache'));
  const dangling: string[] = [];
  const { statSync } = await import('node:fs');
  const own = [join(root, 'cc0123'), join(root, 'data')].map((path) => statSync(path, { bigint: true })).map((s) => `${s.dev}:${s.ino}`);
  const files: string[] = [];
  for await (const file of scanLocal(root, FileFilter.acceptAll(), { onDanglingLink: (path) => dangling.push(path), skip: (_abs, id) => own.includes(`${id.dev}:${id.ino}`) })) files.push(file.path);
  assert.deepEqual(files.sort(), ['keep.txt', 'sub/hard.txt', 'sub/keep2.txt']);
  assert.deepEqual(dangling, ['dangling']);
});

test('an abort stops the walk with Aborted', async (t) => {
  const root = await tempTree({ 'a/1': '', 'a/2': '', 'b/3': '' });
  t.after(() => rm(root, { recursive: true, force: true }));
  const controller = new AbortController();
  const seen: string[] = [];
  await assert.rejects(async () => {
    for await (const file of scanLocal(root, FileFilter.acceptAll(), { signal: controller.signal })) {
      seen.push(file.path);
      controller.abort();
    }
  }, { code: 'Aborted' });
  assert.equal(seen.length, 1);
});

const scannerModule = fileURLToPath(new URL('./scanner.js', import.meta.url));
const filterModule = fileURLToPath(new URL('./filter.js', import.meta.url));

test('an unreadable folder below the root is reported and the walk goes on', async (t) => {
  const root = await tempTree({ 'ok/a.txt': '', 'locked/secret.txt': '', 'z.txt': '' });
  t.after(async () => {
    await chmod(join(root, 'locked'), 0o755);
    await rm(root, { recursive: true, force: true });
  });
  await chmod(join(root, 'locked'), 0o000);
  if (process.getuid?.() !== 0) {
    const { files, errors } = await scan(root);
    assert.deepEqual(files.map((f) => f.path), ['ok/a.txt', 'z.txt']);
    assert.deepEqual(errors.map(([p, e]) => [p, e.code]), [['locked', 'PermissionDenied']]);
    return;
  }
  // why: root ignores permission bits, so the walk runs in a child process as user `nobody`.
  await chmod(root, 0o755);
  const script = `
    import { scanLocal } from ${JSON.stringify(scannerModule)};
    import { FileFilter } from ${JSON.stringify(filterModule)};
    const files = []; const errors = [];
    for await (const f of scanLocal(${JSON.stringify(root)}, FileFilter.acceptAll(), { onError: (p, e) => errors.push([p, e.code]) })) files.push(f.path);
    console.log(JSON.stringify({ files: files.sort(), errors }));`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8' });
  if (child.status !== 0) {
    t.skip(`cannot run the check as an unprivileged user here: ${child.error?.message ?? child.stderr.trim().split('\n').at(-1)}`);
    return;
  }
  assert.deepEqual(JSON.parse(child.stdout), { files: ['ok/a.txt', 'z.txt'], errors: [['locked', 'PermissionDenied']] });
});
