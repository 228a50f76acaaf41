import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

// why: the tests run the compiled program as a user would, next to this compiled test file.
const ESCALE = fileURLToPath(new URL('./escale.js', import.meta.url));
const ESCALECTL = fileURLToPath(new URL('./escalectl.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'escale-cli-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function run(script: string, args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [script, ...args], { encoding: 'utf8', cwd: dir, env: { ...process.env, HOME: dir, ESCALE_DEBUG: '', ...env } });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function writeConfig(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('escale --check', () => {
  it('fails with exit 2 on a misspelt key, naming file, line and suggestion, without a stack', () => {
    const file = writeConfig('bad.conf', '[alice]\nlocal path = ./alice\nprotocol = file\nrefrsh = 5\nrelay path = ./relay\n');
    const r = run(ESCALE, ['--check', '-c', file]);
    assert.equal(r.code, 2);
    assert.equal(r.out, '');
    assert.equal(r.err, `escale: ${file}:4: unknown key 'refrsh' in section [alice]; did you mean 'refresh'?\n`);
    assert.doesNotMatch(r.err, /at .*\.js/);
  });

  it('prints the resolved settings with the password as *** and never the password', () => {
    const file = writeConfig('good.conf', 'refresh = 12\n[alice]\nlocal path = ./alice\nprotocol = ftp\nhost address = ftp.example.org\nuser = alice\npassword = Tr0ub4dor&3\n');
    const r = run(ESCALE, ['-c', file, '--check']);
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /^\[alice\]$/m);
    assert.match(r.out, /password +\*\*\* +\(line 7\)/);
    assert.match(r.out, /refresh +12 s +\(line 1, global\)/);
    assert.match(r.out, new RegExp(`local path +${join(dir, 'alice')}`));
    assert.doesNotMatch(r.out + r.err, /Tr0ub4dor/);
    const json = run(ESCALE, ['-c', file, '--check', '--json']);
    assert.equal(json.code, 0, json.err);
    const doc = JSON.parse(json.out) as { clients: Array<{ password: string; host: string }> };
    assert.equal(doc.clients[0]?.password, '***');
    assert.equal(doc.clients[0]?.host, 'ftp.example.org');
    assert.doesNotMatch(json.out, /Tr0ub4dor/);
  });

  it('reports a missing file with exit 2', () => {
    const r = run(ESCALE, ['--check', '-c', join(dir, 'none.conf')]);
    assert.equal(r.code, 2);
    assert.equal(r.err, `escale: file not found: ${join(dir, 'none.conf')}\n`);
  });

  it('finds no default configuration in an empty home and says what to do', () => {
    const r = run(ESCALE, ['--check']);
    assert.equal(r.code, 2);
    assert.match(r.err, /^escale: cannot find a configuration file .*escale -i/);
  });
});

describe('escale options', () => {
  it('prints help and version with exit 0', () => {
    const help = run(ESCALE, ['--help']);
    assert.equal(help.code, 0);
    assert.match(help.out, /Usage: escale \[options\]/);
    assert.match(help.out, /--check/);
    const version = run(ESCALE, ['--version']);
    assert.equal(version.code, 0);
    assert.match(version.out, /^\d+\.\d+\.\d+/);
  });

  it('rejects unknown options (such as the removed -p) with exit 2', () => {
    const r = run(ESCALE, ['-p']);
    assert.equal(r.code, 2);
    assert.equal(r.err, "escale: unknown option '-p'\n");
  });

  it('refuses -d with --once, and the wizard with --check, with exit 2', () => {
    assert.match(run(ESCALE, ['--interactive', '--check']).err, /^escale: the wizard \(-i, --interactive\) cannot be combined with --check/);
    assert.match(run(ESCALE, ['-d', '--once']).err, /^escale: -d\/--daemon cannot be combined with --once/);
  });

  it('shows a stack only with --debug', () => {
    const file = writeConfig('bad2.conf', '[a]\n');
    assert.doesNotMatch(run(ESCALE, ['-c', file]).err, /\n {4}at /);
    assert.match(run(ESCALE, ['-c', file, '--debug']).err, /\n {4}at /);
    assert.match(run(ESCALE, ['-c', file], { ESCALE_DEBUG: '1' }).err, /\n {4}at /);
  });
});

describe('escalectl', () => {
  it('prints help without a subcommand, and the version', () => {
    const r = run(ESCALECTL, []);
    assert.equal(r.code, 0);
    assert.match(r.out, /Usage: escalectl/);
    assert.equal(run(ESCALECTL, ['--version']).code, 0);
    assert.equal(run(ESCALECTL, ['nosuch']).code, 2);
  });
});
