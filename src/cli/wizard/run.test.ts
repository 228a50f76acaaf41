import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, symlinkSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../config/load.js';
import { escaleMain } from '../escale.js';
import { EXIT, exitCodeFor, type Output } from '../output.js';
import { runImport } from './import.js';

// why: the real program, driven through a pipe as a user's script would drive it.
const ESCALE = fileURLToPath(new URL('../escale.js', import.meta.url));
const root = mkdtempSync(join(tmpdir(), 'escale-wizard-cli-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const silent: Output = { out: () => undefined, err: () => undefined };

function freshHome(): string {
  const dir = join(root, `h${counter++}`);
  mkdirSync(dir);
  return dir;
}

function escale(home: string, args: string[], answers?: string[]) {
  const r = spawnSync(process.execPath, [ESCALE, ...args], {
    encoding: 'utf8',
    cwd: home,
    input: answers === undefined ? '' : answers.map((a) => `${a}\n`).join(''),
    env: { ...process.env, HOME: home, ESCALE_DEBUG: '' },
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('escale -i (wizard through a pipe)', () => {
  it('writes a simplified FTP section that loads back, with a 0600 credential file, never echoing the password', async () => {
    const home = freshHome();
    const file = join(home, 'conf', 'sync.conf');
    const r = escale(home, ['-c', file, '-i'], ['', 'docs', '99', '4', 'ftp.example.org', 'shared/docs', 'alice', 'Sesame%42', 'n']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /Service \(required\): \n {2}choose a number from 1 to 14\nService \(required\): \n/);
    assert.match(r.out, /Password for 'alice@ftp\.example\.org' \(required\): /);
    assert.doesNotMatch(r.out + r.err, /Sesame/);
    const config = await loadConfig(file, { home, cwd: home, hostname: 'box' });
    const c = config.clients[0];
    assert.deepEqual([c?.section, c?.protocol, c?.host, c?.directory, c?.user, c?.password, c?.localPath], ['ftp', 'ftp', 'ftp.example.org', 'shared/docs', 'alice', 'Sesame%42', join(home, 'docs')]);
    assert.equal(mode(c?.credentialFile as string), 0o600);
    assert.equal(readFileSync(c?.credentialFile as string, 'utf8'), 'alice:Sesame%42');
  });

  it('creates ~/.config/escale/escale.conf when there is no configuration file', async () => {
    const home = freshHome();
    const r = escale(home, ['--interactive'], ['', 'l', '8', 'relay', 'n']);
    assert.equal(r.code, 0, r.err);
    const file = join(home, '.config', 'escale', 'escale.conf');
    assert.match(r.out, new RegExp(`Creating new configuration file '${file}'`));
    assert.equal((await loadConfig(undefined, { home, cwd: home })).clients[0]?.directory, join(home, 'relay'));
  });

  it('edits one section of an existing file and keeps the others and the comments', async () => {
    const home = freshHome();
    const file = join(home, 'e.conf');
    mkdirSync(join(home, 'dotfiles'));
    symlinkSync(join(home, 'dotfiles', 'e.conf'), file);
    const before = `# shared settings\nrefresh = 15\n\n[keep]\n# untouched\nlocal path = ${home}/k\nprotocol = file\nrelay path = ${home}/r\n\n[edit]\nlocal path = ${home}/e\nprotocol = file\nrelay path = ${home}/r\n`;
    writeFileSync(join(home, 'dotfiles', 'e.conf'), before);
    const r = escale(home, ['-i', '-c', file], ['edit', 'n', '', '', 'e-client', 'off', 'upload', '', 'n']);
    assert.equal(r.code, 0, r.err);
    const text = readFileSync(file, 'utf8');
    assert.ok(text.startsWith(`# shared settings\nrefresh = 15\n\n[keep]\n# untouched\nlocal path = ${home}/k\nprotocol = file\nrelay path = ${home}/r\n\n[edit]\n`), text);
    assert.ok(lstatSync(file).isSymbolicLink(), 'a linked configuration stays a link');
    const config = await loadConfig(file, { home, cwd: home });
    assert.deepEqual(config.clients.map((c) => [c.section, c.mode, c.clientName === 'e-client', c.refreshSec]), [['keep', 'shared', false, 15], ['edit', 'upload', true, 15]]);
  });

  it('aborts at the end of input (Ctrl-D) without writing anything', () => {
    const home = freshHome();
    const file = join(home, 'conf', 'x.conf');
    const r = escale(home, ['-c', file, '-i'], ['', 'docs', '4', 'ftp.example.org', '', 'alice']);
    assert.equal(r.code, 1);
    assert.equal(r.err, 'escale: the wizard was interrupted; nothing was written\n');
    assert.equal(existsSync(join(home, 'conf')), false, 'no configuration folder, file or credential file');
    assert.equal(existsSync(join(home, 'docs')), false, 'no local folder either');
  });

  it('refuses to edit a file with syntax errors before asking anything', async () => {
    const home = freshHome();
    const file = join(home, 'bad.conf');
    writeFileSync(file, '[a]\nthis is not a setting\n');
    await assert.rejects(escaleMain(['-c', file, '-i'], silent), (e: unknown) => exitCodeFor(e) === EXIT.usage && /cannot edit '.*bad\.conf' before its syntax errors are fixed:\n.*bad\.conf:2: /.test((e as Error).message));
    assert.equal(readFileSync(file, 'utf8'), '[a]\nthis is not a setting\n');
  });

  it('refuses options that conflict with the wizard or --import, as usage errors', async () => {
    const usage = (args: string[], message: RegExp) => assert.rejects(escaleMain(args, silent), (e: unknown) => exitCodeFor(e) === EXIT.usage && message.test((e as Error).message));
    await usage(['-i', '--interactive'], /'-i' and '--interactive' conflict/);
    await usage(['-i', 'x.conf', '--import', 'y.conf'], /'-i' and '--import' conflict/);
    await usage(['-i', '--check'], /the wizard \(-i, --interactive\) cannot be combined with --check/);
    await usage(['--import', 'x', '--once'], /--import cannot be combined with --once/);
  });
});

describe('escale --import FILE', () => {
  const section = (home: string, name: string): string => `[${name}]\n# imported comment\nlocal path = ${home}/${name}\nprotocol = file\nrelay path = ${home}/relay\n`;

  it('appends the sections (comments included) to the default configuration file', async () => {
    const home = freshHome();
    const dest = join(home, '.config', 'escale', 'escale.conf');
    mkdirSync(join(home, '.config', 'escale'), { recursive: true });
    writeFileSync(dest, `refresh = 12\n${section(home, 'a')}`);
    writeFileSync(join(home, 'more.conf'), section(home, 'b'));
    const r = escale(home, ['--import', 'more.conf']);
    assert.equal(r.code, 0, r.err);
    assert.equal(readFileSync(dest, 'utf8'), `refresh = 12\n${section(home, 'a')}\n${section(home, 'b')}`);
    const config = await loadConfig(undefined, { home, cwd: home });
    assert.deepEqual(config.clients.map((c) => [c.section, c.refreshSec]), [['a', 12], ['b', 12]]);
  });

  it('copies the file into a fresh account, creating the folder (configuration.md U-2); -i FILE is the same', () => {
    const home = freshHome();
    writeFileSync(join(home, 'first.conf'), `log rotate = 2\n${section(home, 'a')}`);
    const r = escale(home, ['-i', 'first.conf']);
    assert.equal(r.code, 0, r.err);
    assert.equal(readFileSync(join(home, '.config', 'escale', 'escale.conf'), 'utf8'), `log rotate = 2\n${section(home, 'a')}`);
  });

  it('honours -c, and refuses clashes, global settings, files without sections and missing files without writing', async () => {
    const home = freshHome();
    const dest = join(home, 'dest.conf');
    writeFileSync(dest, section(home, 'a'));
    const write = (name: string, text: string): string => {
      writeFileSync(join(home, name), text);
      return join(home, name);
    };
    const r = escale(home, ['-c', dest, '--import', write('clash.conf', `${section(home, 'b')}\n${section(home, 'a')}`)]);
    assert.equal(r.code, 2);
    assert.match(r.err, /^escale: section \[a\] of '.*clash\.conf' already exists in '.*dest\.conf'; nothing was imported: rename it/);
    const cases: Array<[string, RegExp]> = [
      [write('globals.conf', `refresh = 3\n${section(home, 'c')}`), /'.*globals\.conf' has global settings/],
      [write('empty.conf', '# nothing\n'), /^not any section in '.*empty\.conf'/],
      [write('broken.conf', '[x\n'), /^corrupted file '.*broken\.conf':\nline 1: malformed section header/],
      [join(home, 'none.conf'), /^cannot find file '.*none\.conf'/],
    ];
    for (const [file, message] of cases) {
      await assert.rejects(runImport(file, dest, silent), (e: unknown) => exitCodeFor(e) === EXIT.usage && message.test((e as Error).message), file);
      assert.equal(readFileSync(dest, 'utf8'), section(home, 'a'), `${file}: destination unchanged`);
    }
    assert.deepEqual(readdirSync(home).filter((n) => n.startsWith('.')), [], 'no temporary file left');
  });

  it('refuses sections that would not load from the destination folder (a relative secret file)', async () => {
    const home = freshHome();
    mkdirSync(join(home, 'elsewhere'));
    writeFileSync(join(home, 'elsewhere', 'b.credential'), 'bob:pw');
    writeFileSync(join(home, 'elsewhere', 'b.conf'), `[b]\nlocal path = ${home}/b\nprotocol = ftp\nhost address = ftp.example.org\nsecret file = b.credential\n`);
    const dest = join(home, 'dest.conf');
    await assert.rejects(runImport(join(home, 'elsewhere', 'b.conf'), dest, silent), /nothing was imported: .*would not load:\n.*b\.credential' does not exist/);
    assert.equal(existsSync(dest), false);
  });
});
