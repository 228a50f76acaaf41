import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, describe, it } from 'node:test';
import { EscaleError } from '../../core/errors.js';
import { relPath, type RelPath } from '../../core/relpath.js';
import { packTar, packUpdate, readTarMembers, type ArchiveSource } from './archive.js';
import { unpackUpdate } from '../../local/archive-extract.js';
import { bzip2CompressBytes } from '../../system/bzip2.js';

const FIXTURES = join(process.cwd(), 'test/fixtures/escale-0.7');
const MiB = 1024 * 1024;
const LIMITS = { maxBytes: 64 * MiB, maxEntries: 1000 };
const scratch = mkdtempSync(join(tmpdir(), 'escale-archive-test-'));
after(() => rmSync(scratch, { recursive: true, force: true }));
let counter = 0;

/** A fresh parent folder with an empty `target` inside, so escapes are visible as siblings. */
function freshTarget(): { parent: string; target: string } {
  const parent = join(scratch, `case-${++counter}`);
  mkdirSync(parent);
  return { parent, target: join(parent, 'target') };
}

/** All files below `dir` (relative NFC paths → bytes). */
function tree(dir: string): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  const walk = (d: string, prefix: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path, `${prefix}${name}/`);
      else out.set((prefix + name).normalize('NFC'), readFileSync(path));
    }
  };
  walk(dir, '');
  return out;
}

function assertSameTree(actual: Map<string, Buffer>, expected: Map<string, Buffer>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [path, bytes] of expected) assert.ok(actual.get(path)?.equals(bytes), `content of ${path}`);
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sourcesOf(dir: string): ArchiveSource[] {
  return [...tree(dir).keys()].sort().map((path) => {
    const full = join(dir, ...path.split('/'));
    return { path: relPath(path), size: statSync(full).size, mtimeSec: 1700000000, open: async () => createReadStream(full) };
  });
}

async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  yield* items;
}

interface RawMember {
  name: string;
  /** The name field as raw bytes (for names that are not UTF-8). */
  nameBytes?: Buffer;
  type?: string;
  size?: number;
  data?: Buffer;
  linkname?: string;
}

/** A minimal ustar writer for hostile archives (independent of the code under test). */
function rawTar(members: RawMember[]): Buffer {
  const parts: Buffer[] = [];
  for (const m of members) {
    const data = m.data ?? Buffer.alloc(0);
    const size = m.size ?? data.length;
    const h = Buffer.alloc(512);
    if (m.nameBytes !== undefined) m.nameBytes.copy(h, 0, 0, 100);
    else h.write(m.name, 0, 100, 'utf8');
    h.write('0000644\0', 100, 'latin1');
    h.write('0000000\0', 108, 'latin1');
    h.write('0000000\0', 116, 'latin1');
    h.write(size.toString(8).padStart(11, '0') + '\0', 124, 'latin1');
    h.write('14524770544\0', 136, 'latin1');
    h.write(m.type ?? '0', 156, 'latin1');
    if (m.linkname !== undefined) h.write(m.linkname, 157, 100, 'utf8');
    h.write('ustar\u000000', 257, 'latin1');
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
    parts.push(h, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

function code(error: unknown): string | undefined {
  return error instanceof EscaleError ? error.code : undefined;
}

const hasPython = spawnSync('python3', ['-c', 'import tarfile, bz2'], { stdio: 'ignore' }).status === 0;

describe('archive: escale 0.7 fixtures', () => {
  for (const scenario of ['index-plain', 'index-topdir', 'index-pullers2']) {
    it(`${scenario}: the .data files of relay-after-push unpack to exactly source/`, async () => {
      const relay = join(FIXTURES, scenario, 'relay-after-push');
      const { target } = freshTarget();
      const listed = new Map<string, number>();
      for (const name of readdirSync(relay).filter((n) => n.endsWith('.data'))) {
        const files = await unpackUpdate(createReadStream(join(relay, name)), target, LIMITS);
        for (const f of files) listed.set(f.path, f.size);
      }
      const source = tree(join(FIXTURES, scenario, 'source'));
      assertSameTree(tree(target), source);
      assert.deepEqual(new Map([...listed].sort()), new Map([...source].map(([p, b]) => [p, b.length] as [string, number]).sort()));
    });
  }
});

describe('archive: pack and unpack', () => {
  const src = join(scratch, 'src');
  const longDir = 'long-folder-name-'.repeat(5);
  const files: Record<string, Buffer> = {
    'ünïcødé/ñested/файл 😀.txt': Buffer.from('unicode content\n'),
    'empty.txt': Buffer.alloc(0),
    'dir/empty too.bin': Buffer.alloc(0),
    'big.bin': randomBytes(5 * MiB),
    [`${longDir}/${'x'.repeat(90)}.txt`]: Buffer.from('ustar prefix split\n'),
    [`${'y'.repeat(200)}.txt`]: Buffer.from('PAX path\n'),
    'exact512.bin': randomBytes(512),
  };
  for (const [path, data] of Object.entries(files)) {
    mkdirSync(join(src, path, '..'), { recursive: true });
    writeFileSync(join(src, path), data);
  }
  const expected = new Map(Object.entries(files).map(([p, b]) => [p.normalize('NFC'), b] as [string, Buffer]));
  let packed: Buffer;

  it('packs a bzip2 tar that unpacks to the same names and bytes', async () => {
    packed = await collect(packUpdate(iterate(sourcesOf(src))));
    // why: 5 MiB of tar in 2 MiB segments: several bzip2 streams, which the Python test below reads too;
    // each mostly the random content of big.bin, so at level 1 (bzip2.test.ts has text at level 9).
    const levels = [...packed.toString('latin1').matchAll(/BZh([1-9])1AY&SY/g)].map((m) => m[1]);
    assert.deepEqual(levels, ['1', '1', '1'], 'the archive is multi-stream');
    const { target } = freshTarget();
    const result = await unpackUpdate(Readable.from([packed]), target, { ...LIMITS, algorithm: 'sha256' });
    assertSameTree(tree(target), expected);
    assert.equal(result.length, expected.size);
    for (const file of result) assert.equal(file.checksum, createHash('sha256').update(expected.get(file.path) ?? '').digest('hex'), file.path);
  });

  it('is read by Python tarfile (r:bz2) with the same names and sizes', { skip: !hasPython && 'python3 not found' }, () => {
    const archive = join(scratch, 'packed.tar.bz2');
    writeFileSync(archive, packed);
    const script = 'import sys,tarfile,json\nt=tarfile.open(sys.argv[1],"r:bz2")\nprint(json.dumps(sorted([m.name,m.size,m.type.decode()] for m in t.getmembers())))';
    const listed = JSON.parse(execFileSync('python3', ['-c', script, archive], { encoding: 'utf8' })) as [string, number, string][];
    const want = [...expected].map(([p, b]): [string, number, string] => [p, b.length, '0']);
    assert.deepEqual(new Set(listed.map((m) => JSON.stringify(m))), new Set(want.map((m) => JSON.stringify(m))));
  });

  for (const format of ['GNU_FORMAT', 'PAX_FORMAT', 'USTAR_FORMAT']) {
    it(`reads archives Python writes in ${format} (with folder members)`, { skip: !hasPython && 'python3 not found' }, async () => {
      const archive = join(scratch, `${format}.tar.bz2`);
      const shortOnly = format === 'USTAR_FORMAT'; // ustar cannot store the 200-character name
      const script = `import sys,os,tarfile\nt=tarfile.open(sys.argv[2],"w:bz2",format=tarfile.${format})\nfor n in sorted(os.listdir(sys.argv[1])):\n  if not (${shortOnly ? 'True' : 'False'} and n.startswith("yyy")): t.add(os.path.join(sys.argv[1],n),arcname=n)\nt.close()`;
      execFileSync('python3', ['-c', script, src, archive]);
      const { target } = freshTarget();
      await unpackUpdate(createReadStream(archive), target, LIMITS);
      const want = new Map([...expected].filter(([p]) => !(shortOnly && p.startsWith('yyy'))));
      assertSameTree(tree(target), want);
    });
  }

  it('reads members one by one; content left unread is skipped', async () => {
    const big = randomBytes(MiB + MiB / 2 + 7);
    const sources: ArchiveSource[] = [
      { path: relPath('.dot/.a.lock'), size: 3, mtimeSec: 0, open: async () => Readable.from([Buffer.from('abc')]) },
      { path: relPath('big.bin'), size: big.length, mtimeSec: 0, open: async () => Readable.from([big]) },
      { path: relPath('last.txt'), size: 4, mtimeSec: 0, open: async () => Readable.from([Buffer.from('last')]) },
    ];
    const seen: string[] = [];
    for await (const member of readTarMembers(packTar(iterate(sources)), { ...LIMITS, label: 'test archive' })) {
      if (member.path === 'big.bin') {
        // take one chunk only, as a failed upload would
        for await (const chunk of member.content) {
          assert.ok(chunk.equals(big.subarray(0, chunk.length)));
          break;
        }
        seen.push(member.path);
      } else {
        const chunks: Buffer[] = [];
        for await (const chunk of member.content) chunks.push(chunk);
        seen.push(`${member.path}=${Buffer.concat(chunks).toString()}`);
      }
    }
    assert.deepEqual(seen, ['.dot/.a.lock=abc', 'big.bin', 'last.txt=last']);
  });

  it('fails with Conflict when a file does not have its announced size', async () => {
    const source: ArchiveSource = { path: 'a.txt' as RelPath, size: 10, mtimeSec: 0, open: async () => Readable.from([Buffer.from('short')]) };
    await assert.rejects(collect(packUpdate(iterate([source]))), (e: unknown) => code(e) === 'Conflict');
  });
});

describe('archive: hostile archives are refused', () => {
  const cases: [string, RawMember[], string, RegExp, Partial<typeof LIMITS>?][] = [
    ['a member ../evil', [{ name: '../evil', data: Buffer.from('x') }], 'InvalidName', /refused member "\.\.\/evil"/],
    ['a member a/../../evil', [{ name: 'a/../../evil', data: Buffer.from('x') }], 'InvalidName', /refused member/],
    ['an absolute member /abs', [{ name: '/tmp/abs-escale-test', data: Buffer.from('x') }], 'InvalidName', /is absolute/],
    ['a symlink member', [{ name: 'link', type: '2', linkname: '/etc' }, { name: 'link/passwd', data: Buffer.from('x') }], 'CorruptRecord', /"link" is a symbolic link/],
    ['a hard link member', [{ name: 'hard', type: '1', linkname: '/etc/passwd' }], 'CorruptRecord', /is a hard link/],
    ['a device member', [{ name: 'dev', type: '3' }], 'CorruptRecord', /character device/],
    ['a FIFO member', [{ name: 'fifo', type: '6' }], 'CorruptRecord', /FIFO/],
    ['a member larger than maxBytes', [{ name: 'big', data: Buffer.alloc(2 * MiB) }], 'CorruptRecord', /over the limit of 1048576 bytes/, { maxBytes: MiB }],
    ['too many members', [{ name: 'a' }, { name: 'b' }, { name: 'c' }], 'CorruptRecord', /more than 2 members/, { maxEntries: 2 }],
    ['a member whose size runs past the end', [], 'CorruptRecord', /truncated/],
  ];
  for (const [what, members, errorCode, message, limits] of cases) {
    it(`refuses ${what}`, async () => {
      let tar = rawTar(members);
      if (members.length === 0) tar = rawTar([{ name: 'cut', size: 4096, data: Buffer.alloc(100) }]).subarray(0, 512 + 100);
      const { parent, target } = freshTarget();
      await assert.rejects(unpackUpdate(Readable.from([await bzip2CompressBytes(tar)]), target, { ...LIMITS, ...limits }), (e: unknown) => code(e) === errorCode && message.test((e as Error).message));
      assert.deepEqual(readdirSync(parent), ['target']);
      assert.equal(existsSync('/tmp/abs-escale-test'), false);
    });
  }

  it('refuses a bzip2 bomb (100 MiB of zeros in one member, 10 MiB limit) before writing it', async () => {
    const header = rawTar([{ name: 'zeros', size: 100 * MiB }]).subarray(0, 512);
    const chunks: Buffer[] = [header];
    for (let i = 0; i < 100; i++) chunks.push(Buffer.alloc(MiB));
    chunks.push(Buffer.alloc(1024));
    const bomb = await bzip2CompressBytes(Buffer.concat(chunks));
    assert.ok(bomb.length < 20_000);
    const { parent, target } = freshTarget();
    await assert.rejects(unpackUpdate(Readable.from([bomb]), target, { maxBytes: 10 * MiB, maxEntries: 10 }), (e: unknown) => code(e) === 'CorruptRecord' && /over the limit/.test((e as Error).message));
    assert.deepEqual(readdirSync(parent), ['target']);
    assert.deepEqual(readdirSync(target), []);
  });

  it('refuses data that is not bzip2, and a bad header checksum', async () => {
    const { target } = freshTarget();
    await assert.rejects(unpackUpdate(Readable.from([Buffer.from('gAAAAAB-this-is-still-encrypted')]), target, LIMITS), (e: unknown) => code(e) === 'CorruptRecord');
    const tar = rawTar([{ name: 'a', data: Buffer.from('x') }]);
    tar[0] = 0x62; // change the name, keep the stored checksum
    await assert.rejects(unpackUpdate(Readable.from([await bzip2CompressBytes(tar)]), target, LIMITS), (e: unknown) => code(e) === 'CorruptRecord' && /checksum/.test((e as Error).message));
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const { target } = freshTarget();
    const tar = await bzip2CompressBytes(rawTar([{ name: 'a', data: Buffer.from('x') }]));
    await assert.rejects(unpackUpdate(Readable.from([tar]), target, { ...LIMITS, signal: controller.signal }), (e: unknown) => code(e) === 'Aborted');
  });
});

describe('archive: member names escale does not sync', () => {
  const refused: RawMember[] = [
    { name: 'a\\b.txt', data: Buffer.from('backslash') },
    { name: 'tab\tname.txt', data: Buffer.from('tab') },
    { name: 'esc\u001b.txt', data: Buffer.from('esc') },
    { name: 'latin1', nameBytes: Buffer.from([0x63, 0x61, 0x66, 0xe9]), data: Buffer.from('latin1') },
    { name: 'dir\\x', type: '5' },
  ];
  const ordinary: RawMember[] = [
    { name: 'ok.txt', data: Buffer.from('ok') },
    { name: 'Q: answers.txt', data: Buffer.from('colon') },
    { name: 'C:/x.txt', data: Buffer.from('drive') },
  ];

  it('with onRefused, each refused member is skipped and reported, and every other member is extracted', async () => {
    const tar = rawTar([refused[0]!, ordinary[0]!, refused[1]!, refused[2]!, ordinary[1]!, refused[3]!, refused[4]!, ordinary[2]!]);
    const { target } = freshTarget();
    const reported: [string, string][] = [];
    const files = await unpackUpdate(Readable.from([await bzip2CompressBytes(tar)]), target, { ...LIMITS, onRefused: (name, problem) => reported.push([name, problem]) });
    assert.deepEqual(files.map((f) => f.path).sort(), ['C:/x.txt', 'Q: answers.txt', 'ok.txt']);
    assert.deepEqual(readdirSync(target).sort(), ['C:', 'Q: answers.txt', 'ok.txt']);
    assert.equal(readFileSync(join(target, 'Q: answers.txt'), 'utf8'), 'colon');
    assert.deepEqual(reported, [
      ['a\\b.txt', 'contains a backslash'],
      ['tab\tname.txt', 'contains a control character'],
      ['esc\u001b.txt', 'contains a control character'],
      ['caf\ufffd', 'is not valid UTF-8 (it holds U+FFFD, the mark a lossy decoding leaves)'],
      ['dir\\x', 'contains a backslash'],
    ]);
  });

  it('without onRefused a refused member fails the archive; with it, hostile members still do', async () => {
    const { target } = freshTarget();
    const plain = await bzip2CompressBytes(rawTar([refused[0]!, ordinary[0]!]));
    await assert.rejects(unpackUpdate(Readable.from([plain]), target, LIMITS), (e: unknown) => code(e) === 'InvalidName' && /backslash/.test((e as Error).message));
    for (const name of ['../evil', '/tmp/abs-escale-test', 'a//b']) {
      const hostile = await bzip2CompressBytes(rawTar([{ name, data: Buffer.from('x') }, ordinary[0]!]));
      const fresh = freshTarget();
      await assert.rejects(unpackUpdate(Readable.from([hostile]), fresh.target, { ...LIMITS, onRefused: () => undefined }), (e: unknown) => code(e) === 'InvalidName', name);
      assert.deepEqual(readdirSync(fresh.parent), ['target']);
    }
  });

  it('an NFD member is extracted under its NFC name; readTarMembers gives both; packTar writes a spelling byte for byte', async () => {
    const nfd = 'cafe\u0301/x\u0308.txt';
    const tar = await collect(packTar(iterate([{ path: nfd as RelPath, size: 3, mtimeSec: 1, open: async () => Readable.from([Buffer.from('nfd')]) }])));
    const members = [];
    for await (const member of readTarMembers(iterate([tar]), { ...LIMITS, label: 'test' })) {
      members.push([member.path, member.name, member.rawName]);
      for await (const _part of member.content) void _part;
    }
    assert.deepEqual(members, [[nfd.normalize('NFC'), nfd, nfd]]);
    const { target } = freshTarget();
    const files = await unpackUpdate(Readable.from([await bzip2CompressBytes(tar)]), target, LIMITS);
    assert.deepEqual(files.map((f) => f.path), [nfd.normalize('NFC')]);
    assert.equal(readFileSync(join(target, ...nfd.normalize('NFC').split('/')), 'utf8'), 'nfd');
  });
});
