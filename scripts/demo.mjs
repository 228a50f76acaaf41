#!/usr/bin/env node
// The README's first quickstart command: two local folders, alice and bob, synchronised through
// a relay folder by real escale processes (examples/two-folders.conf), with no server needed.
import { mkdirSync, writeFileSync, readdirSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const top = join(dirname(fileURLToPath(import.meta.url)), '..');
process.chdir(top);
const escale = join(top, 'dist/src/cli/escale.js');
const config = 'examples/two-folders.conf';

rmSync('demo', { recursive: true, force: true });
for (const dir of ['demo/alice/notes', 'demo/bob', 'demo/relay']) mkdirSync(dir, { recursive: true });
writeFileSync('demo/alice/hello.txt', 'hello from alice\n');
writeFileSync('demo/alice/notes/todo.md', '- try escale\n');
writeFileSync('demo/bob/from-bob.txt', 'bob was here\n');

function round(section) {
  const run = spawnSync(process.execPath, [escale, '--once', '-c', config, '--section', section], { stdio: 'inherit' });
  if (run.status !== 0) {
    console.error(`escale --once for ${section} failed with status ${run.status}`);
    process.exit(run.status ?? 1);
  }
}

// alice pushes, bob pulls alice's files and pushes his own, alice pulls bob's.
for (const section of ['alice', 'bob', 'alice']) round(section);

const list = (dir) => readdirSync(dir, { recursive: true }).filter((p) => !String(p).startsWith('.')).sort();
console.log('\nalice has:', list('demo/alice').join(', '));
console.log('bob has:  ', list('demo/bob').join(', '));
const same = ['hello.txt', 'notes/todo.md', 'from-bob.txt'].every(
  (f) => existsSync(join('demo/alice', f)) && existsSync(join('demo/bob', f)) && readFileSync(join('demo/alice', f)).equals(readFileSync(join('demo/bob', f))),
);
console.log(same ? '\nalice and bob are in sync.' : '\nalice and bob differ!');
process.exit(same ? 0 : 1);
