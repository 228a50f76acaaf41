// Fuzzed configuration: 1,200 configuration files generated from a seeded generator (mutations of the
// examples and of a rich base that uses every key of the schema) are each either valid or refused
// with an EscaleError naming the file; none throws anything else, none hangs. Fifty of them also go
// through the real `escale --check`: exit 0 or 2, never a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { OPTIONS } from '../../src/config/schema.js';
import { runEscale } from '../e2e/harness.js';
import type { FuzzVerdict } from './config-fuzz-worker.js';
import { between, mulberry32, pick, type Random } from './random.js';

const COUNT = 1200;
const CLI_COUNT = 30;
const PER_FILE_MS = 5000;
const EXAMPLES = fileURLToPath(new URL('../../../examples/', import.meta.url));
const WORKER = fileURLToPath(new URL('./config-fuzz-worker.js', import.meta.url));

const VALUES = [
  '', 'yes', 'no', 'on', 'off', 'true', 'False', '1', '0', '-1', '3.5', '1e309', 'NaN', 'Infinity', '0x10',
  '10MB', '2 GiB', '1.5k', '5 TB', '-3MB', '99999999999999999999999999', '12 parsecs',
  '%(home)s', '%(', '%%', '%(missing)s/x', '%(local path)s', '100%',
  '~', '~/x', '~nobody/x', '/', '/dev/zero', '/dev/null', '/proc/self/mem', '/etc/shadow', '.', '..', '../../etc',
  'ftp://u:p@h:99999/x', 'ftps://[::1]:21/a', 'https://host/dav', 'sftp://u@h:22/p', 'file', 'memory', 'webdav', 'dropbox',
  'topdir', 'topdir:3', 'topdir:-1', 'fernet', 'blowfish', 'blowfish.blowfish', 'native', 'plain', 'sha512', 'md5', 'nohash',
  'upload', 'download', 'shared', 'conservative', 'DEBUG', 'chatty', '*.txt, *.md', '/^(build|\\.git)$/', '/[unclosed/', '*', 'SSLv23', 'TLSv1.3',
  'é', 'ünïcödé/路径', '\u202etxt.exe', '\ud800', '\u0000', 'a\tb', '"quoted"', "'single'", '; not a comment', '# hash',
];

const SECTION_NAMES = ['alice', 'bob', 'DEFAULT', 'default', '', ' ', 'a]b', '[x', 'é', 'x'.repeat(300), 'global', 'escale'];

/** Every key of the schema, plus misspellings of some. */
function keyPool(random: Random): string[] {
  const keys = OPTIONS.flatMap((o) => o.keys);
  const misspelt = keys.slice(0, 25).map((k) => {
    const i = Math.floor(random() * k.length);
    return k.slice(0, i) + k.slice(i + 1);
  });
  return [...keys, ...misspelt, 'KEY', 'Local Path', 'local  path', 'local_path', 'rclone binary', 'unknown key'];
}

/** A base configuration that sets every key of the schema to a plausible value. */
function richBase(home: string): string {
  const plausible: Record<string, string> = {
    path: join(home, 'p'), bool: 'yes', int: '3', number: '2.5', size: '10MB', list: 'jpg, png', 'int-list': '1, 2', patterns: '*.txt',
    'bool-or-number': '30', 'bool-or-string': 'yes', 'bool-or-path': 'yes', secret: 'hunter2', string: 'x',
  };
  const special: Record<string, string> = {
    localPath: join(home, 'local'), protocol: 'file', address: join(home, 'relay'), directory: '', mode: 'shared', encryption: 'no',
    passphrase: '', logLevel: 'INFO', logFile: join(home, 'fuzz.log'), sslVersion: 'TLS', index: 'no', checksum: 'sha512', clientName: 'fuzz', priority: 'low',
    timestamp: 'yes', port: '21',
  };
  const globals = OPTIONS.filter((o) => o.scope === 'global').map((o) => `${o.keys[0]} = ${special[o.id] ?? plausible[o.type] ?? 'x'}`);
  const client = OPTIONS.filter((o) => o.scope === 'client' && o.id !== 'passphrase').map((o) => `${o.keys[0]} = ${special[o.id] ?? plausible[o.type] ?? 'x'}`);
  return [...globals, '', '[one]', ...client, '', '[two]', `local path = ${join(home, 'two')}`, `relay path = ${join(home, 'relay')}`, 'protocol = file', 'mode = download'].join('\n');
}

/** Applies 1 to 6 random mutations to `base`. */
function mutate(base: string, random: Random, keys: string[]): string {
  let lines = base.split('\n');
  const count = between(random, 1, 6);
  for (let i = 0; i < count; i += 1) {
    const at = Math.floor(random() * (lines.length + 1));
    switch (Math.floor(random() * 14)) {
      case 0:
        lines.splice(at, 1);
        break;
      case 1:
        if (lines[at] !== undefined) lines.splice(at, 0, lines[at] as string);
        break;
      case 2:
        lines.splice(at, 0, `${pick(random, keys)} = ${pick(random, VALUES)}`);
        break;
      case 3: {
        const line = lines[at];
        if (line !== undefined && line.includes('=')) lines[at] = `${line.slice(0, line.indexOf('='))}= ${pick(random, VALUES)}`;
        break;
      }
      case 4:
        lines.splice(at, 0, `[${pick(random, SECTION_NAMES)}]`);
        break;
      case 5:
        lines.splice(at, 0, Buffer.from(Array.from({ length: between(random, 1, 64) }, () => Math.floor(random() * 256))).toString('latin1'));
        break;
      case 6:
        lines = lines.slice(0, at);
        break;
      case 7:
        lines.splice(at, 0, `${pick(random, keys)} = ${'%'.repeat(between(random, 1, 3))}(${pick(random, keys)})s${pick(random, VALUES)}`);
        break;
      case 8:
        lines.splice(at, 0, `${pick(random, keys)} = ${pick(random, VALUES).repeat(between(random, 1000, 20000))}`);
        break;
      case 9:
        lines.splice(at, 0, `   continued ${pick(random, VALUES)}`);
        break;
      case 10:
        lines.splice(at, 0, pick(random, ['; comment', '# comment', '=', '= value', 'key only', ' = ', '[', ']', '[]', '\ufeff[bom]', 'key : colon value']));
        break;
      case 11: {
        const a = Math.floor(random() * lines.length);
        const b = Math.floor(random() * lines.length);
        [lines[a], lines[b]] = [lines[b] as string, lines[a] as string];
        break;
      }
      case 12:
        lines = lines.map((l) => (random() < 0.3 ? l.toUpperCase() : l));
        break;
      default:
        lines.splice(at, 0, `${pick(random, keys)}=${pick(random, VALUES)}${random() < 0.5 ? '\r' : ''}`);
    }
  }
  return lines.join(random() < 0.1 ? '\r\n' : '\n');
}

/** Runs every text through the worker, one at a time, each within PER_FILE_MS. */
async function judgeAll(texts: string[], home: string): Promise<{ verdicts: FuzzVerdict[]; hangs: number[] }> {
  const verdicts: FuzzVerdict[] = [];
  const hangs: number[] = [];
  let worker = new Worker(WORKER, { workerData: { home } });
  for (const [id, text] of texts.entries()) {
    const file = join(home, `fuzz-${id}.conf`);
    const verdict = await new Promise<FuzzVerdict | 'hang'>((resolve) => {
      const timer = setTimeout(() => resolve('hang'), PER_FILE_MS);
      const done = (v: FuzzVerdict): void => {
        clearTimeout(timer);
        worker.off('message', done);
        resolve(v);
      };
      worker.on('message', done);
      worker.postMessage({ id, text, file });
    });
    if (verdict === 'hang') {
      hangs.push(id);
      await worker.terminate();
      worker = new Worker(WORKER, { workerData: { home } });
    } else verdicts.push(verdict);
  }
  await worker.terminate();
  return { verdicts, hangs };
}

test(`${COUNT} fuzzed configuration files: valid or a clear EscaleError naming the file; no other exception, no hang`, { timeout: 150_000 }, async () => {
  const home = await mkdtemp(join(tmpdir(), 'escale-fuzz-'));
  try {
    const random = mulberry32(20_261_125);
    const keys = keyPool(random);
    const examples = await Promise.all((await readdir(EXAMPLES)).filter((n) => n.endsWith('.conf')).map((n) => readFile(join(EXAMPLES, n), 'utf8')));
    const bases = [...examples, richBase(home)];
    const texts = Array.from({ length: COUNT }, () => mutate(pick(random, bases), random, keys));
    const { verdicts, hangs } = await judgeAll(texts, home);
    assert.deepEqual(hangs, [], `configuration files that hung the loader: ${hangs.map((i) => JSON.stringify(texts[i]?.slice(0, 300))).join('\n')}`);
    const others = verdicts.filter((v) => v.outcome === 'other-error');
    assert.deepEqual(others.map((v) => `#${v.id}: ${v.message}\n--- text:\n${texts[v.id]?.slice(0, 500)}`), [], 'the loader threw something other than an EscaleError');
    const unclear = verdicts.filter((v) => v.outcome === 'escale-error' && (!v.namesFile || !['Config', 'Usage', 'NotFound', 'PermissionDenied', 'Crypto'].includes(v.code ?? '')));
    assert.deepEqual(unclear.map((v) => `#${v.id} ${v.code}: ${v.message?.slice(0, 300)}`), [], 'errors that do not name the configuration file');
    const valid = verdicts.filter((v) => v.outcome === 'valid').length;
    // why: a fuzzer that only produces invalid files proves little; some must survive the mutations.
    assert.ok(valid >= COUNT / 20, `only ${valid} of ${COUNT} files were valid`);
    assert.ok(verdicts.length - valid >= COUNT / 4, `only ${verdicts.length - valid} of ${COUNT} files were refused`);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});

test(`${CLI_COUNT} fuzzed configuration files through the real 'escale --check': exit 0 or 2, never a stack trace`, { timeout: 150_000 }, async () => {
  const home = await mkdtemp(join(tmpdir(), 'escale-fuzz-cli-'));
  try {
    const random = mulberry32(77);
    const keys = keyPool(random);
    const examples = await Promise.all((await readdir(EXAMPLES)).filter((n) => n.endsWith('.conf')).map((n) => readFile(join(EXAMPLES, n), 'utf8')));
    const bases = [...examples, richBase(home)];
    const failures: string[] = [];
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < CLI_COUNT) {
        const id = next++;
        const file = join(home, `cli-${id}.conf`);
        await writeFile(file, mutate(pick(random, bases), random, keys));
        const result = await runEscale(['--check', '-c', file], { env: { HOME: home, ESCALE_DEBUG: '' }, timeoutMs: 30_000 });
        const trace = /^\s+at .+[:(]\d+:\d+\)?$/m.test(result.stderr) || /internal error/.test(result.stderr);
        if ((result.code !== 0 && result.code !== 2) || trace) failures.push(`${file}: exit ${result.code}\n${result.stderr.slice(0, 800)}`);
        else if (result.code === 2 && !result.stderr.includes(file)) failures.push(`${file}: exit 2 without naming the file:\n${result.stderr.slice(0, 400)}`);
      }
    };
    await Promise.all([worker(), worker()]);
    assert.deepEqual(failures, []);
  } finally {
    await rm(home, { recursive: true, force: true });
  }
});
