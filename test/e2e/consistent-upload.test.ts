// End-to-end: a file appended to while real escale processes upload it, on a `file` relay, in both
// protocols, with and without Fernet. A sampler reads the relay over and over during the whole run
// and checks every consistent (data, record) pair it sees: the data (decrypted) must be exactly the
// content its record announces. The growing file must never be published torn, and its final
// content must reach the other client.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, readFileSync, readdirSync, statSync, type Stats } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fernetDecrypt, FernetKey, generateFernetKey } from '../../src/crypto/fernet.js';
import { unpackUpdate } from '../../src/local/archive-extract.js';
import { parseUpdateIndex } from '../../src/relay/protocol/page-index.js';
import { parseMetadata } from '../../src/relay/protocol/placeholder.js';
import { configText, startEscale, waitFor, workspace } from './harness.js';

const sha512 = (data: Buffer): string => createHash('sha512').update(data).digest('hex');

/** What the sampler saw. */
interface Seen {
  /** Consistent (data, record) pairs checked, by resource. */
  readonly verified: Map<string, number>;
  readonly violations: string[];
}

/** Reads two files as one snapshot: `record`, then `data`, then both again; undefined when either changed meanwhile or is missing. */
function snapshot(data: string, record: string): { data: Buffer; record: Buffer } | undefined {
  try {
    const same = (a: Stats, b: Stats): boolean => a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
    const recordBefore = readFileSync(record);
    const before = statSync(data);
    const content = readFileSync(data);
    const after = statSync(data);
    const recordAfter = readFileSync(record);
    return same(before, after) && recordBefore.equals(recordAfter) ? { data: content, record: recordBefore } : undefined;
  } catch {
    return undefined; // why: a file that vanished between two reads is no snapshot
  }
}

/** Checks every placeholder resource of the relay once. */
function samplePlaceholders(relay: string, plain: (data: Buffer) => Buffer, seen: Seen): void {
  for (const name of readdirSync(relay)) {
    if (name.startsWith('.')) continue;
    const shot = snapshot(join(relay, name), join(relay, `.${name}.placeholder`));
    if (shot === undefined) continue;
    const announced = parseMetadata(shot.record).checksum;
    const held = sha512(plain(shot.data));
    if (held !== announced) seen.violations.push(`'${name}': data of sha512 ${held.slice(0, 16)}… under a record announcing ${announced?.slice(0, 16)}…`);
    seen.verified.set(name, (seen.verified.get(name) ?? 0) + 1);
  }
}

/** Checks every pending update of the index relay once: each member is what its record announces, and each record has its member. */
async function sampleUpdates(relay: string, plain: (data: Buffer) => Buffer, scratch: string, seen: Seen): Promise<void> {
  for (const name of readdirSync(relay)) {
    const match = /^\.(.+)\.(\d+)\.index$/.exec(name);
    if (match === null) continue;
    const shot = snapshot(join(relay, `.${match[1]}.${match[2]}.data`), join(relay, name));
    if (shot === undefined) continue;
    const records = parseUpdateIndex(shot.record).entries;
    const target = await mkdtemp(join(scratch, 'sample-'));
    try {
      const members = await unpackUpdate(Readable.from([plain(shot.data)]), target, { maxBytes: 1 << 30, maxEntries: 10_000, algorithm: 'sha512' });
      for (const member of members) {
        const announced = records.get(member.path)?.checksum;
        if (announced !== member.checksum) seen.violations.push(`update ${match[2]}: member '${member.path}' of sha512 ${member.checksum?.slice(0, 16)}… under a record announcing ${announced?.slice(0, 16)}…`);
        seen.verified.set(member.path, (seen.verified.get(member.path) ?? 0) + 1);
      }
      for (const path of records.keys()) if (!members.some((m) => m.path === path)) seen.violations.push(`update ${match[2]}: a record for '${path}' without its member`);
    } finally {
      await rm(target, { recursive: true, force: true });
    }
  }
}

const VARIANTS = [
  { name: 'placeholder', index: false, fernet: false },
  { name: 'placeholder, Fernet', index: false, fernet: true },
  { name: 'index', index: true, fernet: false },
  { name: 'index, Fernet', index: true, fernet: true },
] as const;

describe('a file appended to while it is uploaded is never published torn', () => {
  for (const variant of VARIANTS) {
    test(variant.name, async (t) => {
      const ws = await workspace('escale-torn-');
      after(() => ws.cleanup());
      const relay = join(ws.dir, 'relay');
      const scratch = join(ws.dir, 'scratch');
      const alice = join(ws.dir, 'alice');
      const bob = join(ws.dir, 'bob');
      for (const dir of [relay, scratch, alice, bob]) await mkdir(dir);
      const keyText = generateFernetKey();
      const keyFile = join(ws.dir, 'key.fernet');
      await writeFile(keyFile, keyText, { mode: 0o600 });
      const key = FernetKey.parse(keyText);
      const plain = variant.fernet ? (data: Buffer): Buffer => fernetDecrypt(key, data) : (data: Buffer): Buffer => data;
      const common = { protocol: 'file', 'relay path': relay, ...(variant.index ? { index: 1 } : {}), ...(variant.fernet ? { encryption: 'fernet', passphrase: keyFile } : {}) };
      // why: one configuration file per client, so that each runs as its own daemon (one per file).
      const log = join(ws.dir, 'escale.log');
      const configOf = async (name: string, keys: Record<string, string | number>): Promise<string> => {
        const file = join(ws.dir, `${name}.conf`);
        await writeFile(file, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': log, refresh: '1.0' }, { [name]: { 'client name': name, ...keys, ...common } }));
        return file;
      };
      const aliceConfig = await configOf('alice', { 'local path': alice, mode: 'upload' });
      const bobConfig = await configOf('bob', { 'local path': bob, mode: 'download' });
      const growing = join(alice, 'growing.log');
      await writeFile(growing, randomBytes(16 * 1024 * 1024));

      const seen: Seen = { verified: new Map(), violations: [] };
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          if (variant.index) await sampleUpdates(relay, plain, scratch, seen);
          else samplePlaceholders(relay, plain, seen);
          await sleep(5);
        }
      })();

      // Phase 1: alice uploads while a program appends to the file (and writes a small note each second).
      const aliceRun = startEscale(['-c', aliceConfig]);
      const appendUntil = Date.now() + 4000;
      for (let line = 0, note = 0; Date.now() < appendUntil; line++) {
        appendFileSync(growing, `line ${line} of a log that keeps growing\n`);
        if (line % 200 === 0) await writeFile(join(alice, `note-${note++}.txt`), `note ${note}\n`);
        await sleep(5);
      }
      // Phase 2: the file is stable; bob receives everything.
      const bobRun = startEscale(['-c', bobConfig]);
      const final = await readFile(growing);
      const notes = readdirSync(alice).filter((n) => n.startsWith('note-'));
      const arrived = await waitFor(async () => {
        try {
          return sha512(await readFile(join(bob, 'growing.log'))) === sha512(final) && notes.every((n) => statSync(join(bob, n)).isFile());
        } catch {
          return false;
        }
      }, 180_000, 500);
      sampling = false;
      await sampler;
      aliceRun.child.kill('SIGTERM');
      bobRun.child.kill('SIGTERM');
      const [aliceExit, bobExit] = await Promise.all([aliceRun.exited, bobRun.exited]);
      const logText = await readFile(log, 'utf8').catch(() => '');
      assert.deepEqual(seen.violations, [], 'no relay state paired data with a record that does not match it');
      assert.ok(arrived, `bob did not receive the final content.\nalice:\n${aliceExit.stderr.slice(-3000)}\nbob:\n${bobExit.stderr.slice(-3000)}`);
      const rolledBack = variant.index ? /file 'growing\.log' changed while it was read to upload it \(.*(the update is sent again without it|it was left out of the update)\)/ : /file 'growing\.log' changed while it was read to upload it \(.*the upload was rolled back\)/;
      assert.match(logText, rolledBack, 'the change during the upload was seen (the race this test is about happened)');
      const verified = [...seen.verified.values()].reduce((a, b) => a + b, 0);
      assert.ok(verified > 0, 'the sampler checked published states');
      t.diagnostic(`checked ${verified} published (data, record) pairs: ${[...seen.verified].map(([path, n]) => `${path} ×${n}`).join(', ')}`);
      assert.ok(!new RegExp(`ERROR|CRITICAL`).test(logText.split('\n').filter((l) => /growing/.test(l)).join('\n')), 'no error about the growing file');
    });
  }
});
