// End-to-end: clients whose clocks disagree (Debian's `faketime`): alice runs 2 h behind, bob 2 h
// ahead, carol (download mode) on the true clock, `puller count = 2`. They edit files in turn, each
// edit made after the other received the previous version, and stamp their edits with their own
// clocks: an edit of alice's is then older than the version it replaces. Every edit must arrive
// everywhere, in both protocols (last-writer-wins by mtime lost alice's edits for good).
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { configText, ESCALE_BIN, put, workspace, type RunResult } from './harness.js';

const HOURS_2 = 2 * 3600;
/** Each client's clock offset in seconds, as faketime reads it (`-f`), and as its edits are stamped. */
const CLOCKS = { alice: -HOURS_2, bob: HOURS_2, carol: 0 } as const;
type Name = keyof typeof CLOCKS;

const hasFaketime = spawnSync('faketime', ['-f', '+0', 'true']).status === 0;

/** Runs `escale --once` for one section under its client's clock. */
function onceUnder(config: string, name: Name): Promise<RunResult> {
  const offset = CLOCKS[name];
  return new Promise((resolve, reject) => {
    const child = spawn('faketime', ['-f', `${offset >= 0 ? '+' : ''}${offset}s`, process.execPath, ESCALE_BIN, '--once', '-c', config, '--section', name], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('clients 2 h behind and 2 h ahead edit files in turn: every edit arrives everywhere', () => {
  before(() => {
    if (hasFaketime) return;
    // why: under CI a missing tool is a failure, never a skip.
    if (process.env['CI'] === 'true') assert.fail('faketime is not installed (Debian package faketime; .ci/run installs it)');
  });

  for (const protocol of ['placeholder', 'index'] as const) {
    test(protocol, { skip: !hasFaketime && process.env['CI'] !== 'true' ? 'SKIP: faketime is not installed (Debian package faketime)' : false }, async (t) => {
      const ws = await workspace('escale-skew-');
      t.after(() => ws.cleanup());
      const relay = join(ws.dir, 'relay');
      await mkdir(relay);
      const folder = (name: Name): string => join(ws.dir, name);
      const sections: Record<string, Record<string, string | number>> = {};
      for (const name of Object.keys(CLOCKS) as Name[]) {
        await mkdir(folder(name));
        sections[name] = { 'client name': name, 'local path': folder(name), protocol: 'file', 'relay path': relay, mode: name === 'carol' ? 'download' : 'shared', ...(protocol === 'index' ? { index: 1 } : {}) };
      }
      const config = join(ws.dir, 'escale.conf');
      await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'escale.log'), 'puller count': 2 }, sections));

      /** One round of each client, the editor first. */
      const rounds = async (editor: Name): Promise<void> => {
        for (const name of [editor, ...(Object.keys(CLOCKS) as Name[]).filter((n) => n !== editor)]) {
          const result = await onceUnder(config, name);
          assert.equal(result.code, 0, `escale --once [${name}] failed:\n${result.stderr}`);
        }
      };
      /** An edit made by `editor` on its own machine: content, and an mtime from its clock. */
      const edit = (editor: Name, path: string, content: string): Promise<void> => put(folder(editor), path, content, Math.trunc(Date.now() / 1000) + CLOCKS[editor]);
      const everywhere = async (path: string, content: string, what: string): Promise<void> => {
        for (const name of Object.keys(CLOCKS) as Name[]) assert.equal(await readFile(join(folder(name), path), 'utf8').catch(() => '(missing)'), content, `${what}: ${name}'s ${path}`);
      };

      const turns: [Name, string][] = [
        ['alice', 'shared.txt'],
        ['bob', 'shared.txt'],
        ['alice', 'shared.txt'],
        ['bob', 'shared.txt'],
        ['bob', 'from-bob/notes.md'],
        ['alice', 'from-bob/notes.md'],
        ['bob', 'from-bob/notes.md'],
        ['alice', 'from-bob/notes.md'],
      ];
      for (const [i, [editor, path]] of turns.entries()) {
        const content = `edit ${i + 1} of ${path}, by ${editor} (clock ${CLOCKS[editor] / 3600} h)\n`;
        await edit(editor, path, content);
        await rounds(editor);
        await everywhere(path, content, `after edit ${i + 1} by ${editor}`);
      }
    });
  }
});
