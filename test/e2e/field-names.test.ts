// Names from the field (issue 12): a seeded generator draws names from every class (colons,
// drive-like prefixes, NFD, control characters, backslashes, bytes that are not UTF-8, 240–300 byte
// names, leading and trailing spaces, deep paths) mixed with ordinary ones, for three actors: "zoe", a
// 0.7 client whose push is written onto the relay as 0.7 writes it (escale07-writer.ts), and our
// daemons alice and bob, which hold such names in their folders. For a `file` relay and an OpenSSH
// SFTP relay, in both protocols, the daemons run several rounds; then every name that syncs has
// converged (in the spelling each side chose: an NFD file stays NFD and receives edits), every
// refused name was warned about exactly once per client that sees it, no daemon stopped, no round
// or transfer failed, and `--once` exits 0 with only refused names left.
//
// NAMES_SEED=n replays another draw; NAMES_MEMBERS=n draws n members per class and actor (default 2).
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, readdir, stat, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeName } from '../../src/core/relpath.js';
import { bzip2DecompressBytes } from '../../src/system/bzip2.js';
import { parsePersistentIndexContent } from '../../src/relay/protocol/page-index.js';
import { between, mulberry32 } from '../reliability/random.js';
import { writeIndexPush07, writePlaceholderPush07, type Pushed07 } from './escale07-writer.js';
import { configText, runEscale, startEscale, waitFor, workspace } from './harness.js';
import { NAME_CLASSES, nameOf, refusalOf, type NameClass, type NameProtocol } from './name-classes.js';
import { SSHD_SFTP, startServer } from './relay-servers-support.js';

const SEED = Number(process.env['NAMES_SEED'] ?? 20261212);
const MEMBERS = Number(process.env['NAMES_MEMBERS'] ?? 2);
const T0 = 1_700_000_000;
const ZOE_T = 1_700_000_500;

type Actor = 'zoe' | 'alice' | 'bob';

/** One generated file: who has it first, its name as bytes, its content. */
interface Item extends Pushed07 {
  readonly actor: Actor;
  readonly cls: NameClass;
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

function draw(protocol: NameProtocol): Item[] {
  const random = mulberry32(SEED + (protocol === 'index' ? 1 : 0));
  const items: Item[] = [];
  for (const actor of ['zoe', 'alice', 'bob'] as const) {
    for (const cls of NAME_CLASSES) {
      // why: 0.7 cannot write a name that is not UTF-8 into its index text (Python raises), so no 0.7 index holds one.
      if (actor === 'zoe' && protocol === 'index' && cls === 'not-utf8') continue;
      for (let i = 0; i < MEMBERS; i += 1) {
        const tag = `${actor[0]}${cls.slice(0, 3)}${i}`;
        const content = Buffer.from(`${actor} ${cls} ${i} ${random().toString(36)}\n`.repeat(between(random, 1, 40)));
        items.push({ actor, cls, name: nameOf(random, cls, actor === 'zoe' ? 'escale07' : 'local', protocol, tag), content, mtimeSec: (actor === 'zoe' ? ZOE_T : T0) + items.length });
      }
    }
  }
  return items;
}

/** Every file below `root` (dot names left out, as the scanner does): NFC key → names on disk and content hash. */
async function folderState(root: string): Promise<Map<string, { names: string[]; sha: string }>> {
  const out = new Map<string, { names: string[]; sha: string }>();
  const visit = async (dir: Buffer, prefix: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true, encoding: 'buffer' })) {
      const name = decodeName(entry.name);
      if (name.startsWith('.')) continue;
      const full = Buffer.concat([dir, Buffer.from('/'), entry.name]);
      const rel = prefix === '' ? name : `${prefix}/${name}`;
      if (entry.isDirectory()) await visit(full, rel);
      else {
        const key = rel.normalize('NFC');
        const slot = out.get(key) ?? { names: [], sha: '' };
        slot.names.push(rel);
        slot.sha = sha(await readFile(full));
        out.set(key, slot);
      }
    }
  };
  await visit(Buffer.from(root), '');
  return out;
}

async function writeLocal(root: string, item: Item): Promise<void> {
  const full = Buffer.concat([Buffer.from(`${root}/`), item.name]);
  const slash = full.lastIndexOf(0x2f);
  await mkdir(full.subarray(0, slash), { recursive: true });
  await writeFile(full, item.content);
  await utimes(full, item.mtimeSec, item.mtimeSec);
}

/** How a relay backend shows a name escale cannot address: the file backend reads bytes, SFTP (ssh2) decodes them lossily. */
type Shown = (name: Buffer) => string;

interface Relay {
  readonly keys: Record<string, string | number>;
  /** The relay folder on this machine. */
  readonly dir: string;
  readonly shown: Shown;
  /** Makes what the test wrote into the relay folder the server account's own. */
  own(): Promise<void>;
  stop(): Promise<void>;
}

async function fileRelay(dir: string): Promise<Relay> {
  const relay = join(dir, 'relay');
  await mkdir(relay);
  return { keys: { protocol: 'file', 'relay path': relay }, dir: relay, shown: (name) => decodeName(name), own: async () => undefined, stop: async () => undefined };
}

async function sftpRelay(t: TestContext, dir: string): Promise<Relay | undefined> {
  const handle = await startServer(t, SSHD_SFTP);
  if (handle === undefined) return undefined;
  const server = handle.current();
  const relay = join(server.root, 'relay');
  await mkdir(relay);
  const secret = join(dir, 'relay.secret');
  await writeFile(secret, `${server.password}\n`, { mode: 0o600 });
  const home = await stat(server.root);
  return {
    keys: SSHD_SFTP.relayKeys(server, 'relay', secret),
    dir: relay,
    shown: (name) => name.toString('utf8'),
    async own() {
      // why: the session runs as the server's test account, which must be able to replace and delete what "zoe" wrote.
      const chown = spawnSync('chown', ['-R', `${home.uid}:${home.gid}`, relay]);
      assert.equal(chown.status, 0, String(chown.stderr));
    },
    stop: () => handle.stop(),
  };
}

async function scenario(t: TestContext, backend: 'file' | 'sftp', protocol: NameProtocol): Promise<void> {
  const ws = await workspace('escale-names-');
  const relay = backend === 'file' ? await fileRelay(ws.dir) : await sftpRelay(t, ws.dir);
  if (relay === undefined) {
    await ws.cleanup();
    return;
  }
  const daemons: ReturnType<typeof startEscale>[] = [];
  try {
    const items = draw(protocol);
    const zoe = items.filter((item) => item.actor === 'zoe');
    if (protocol === 'placeholder') await writePlaceholderPush07(relay.dir, 'zoe', zoe);
    else await writeIndexPush07(relay.dir, 'zoe', '0', ZOE_T, zoe);
    await relay.own();
    const configs: Record<string, string> = {};
    for (const client of ['alice', 'bob'] as const) {
      const folder = join(ws.dir, client);
      await mkdir(folder);
      for (const item of items.filter((it) => it.actor === client)) await writeLocal(folder, item);
      configs[client] = join(ws.dir, `${client}.conf`);
      const keys = {
        'client name': client,
        'local path': folder,
        mode: 'shared',
        // why: with two pullers each gets zoe's files; on an index relay, puller count 2 would keep every update pending (only one other client pulls it).
        ...(protocol === 'index' ? { index: 1, 'lock timeout': 6 } : { 'puller count': 2 }),
        ...relay.keys,
      };
      await writeFile(configs[client], configText({ 'cache dir': join(ws.dir, `cache-${client}`), 'log file': join(ws.dir, `${client}.log`), refresh: 2 }, { [client]: keys }));
    }
    for (const client of ['alice', 'bob']) daemons.push(startEscale(['-c', configs[client] as string]));
    const logOf = async (client: string): Promise<string> => readFile(join(ws.dir, `${client}.log`), 'utf8').catch(() => '');
    const key = (item: Item): string => decodeName(item.name).normalize('NFC');
    const synced = items.filter((item) => refusalOf(item.name, protocol) === undefined);
    const contents = new Map(synced.map((item) => [key(item), sha(item.content)]));

    /** Whether both folders hold every synced file with its expected content, one spelling each, and nothing refused from others. */
    const converged = async (): Promise<string | undefined> => {
      for (const client of ['alice', 'bob'] as const) {
        const state = await folderState(join(ws.dir, client));
        for (const [name, want] of contents) {
          const got = state.get(name);
          if (got === undefined) return `${client} lacks ${JSON.stringify(name)}`;
          if (got.names.length !== 1) return `${client} has ${JSON.stringify(got.names)} for one name`;
          if (got.sha !== want) return `${client} has another content for ${JSON.stringify(name)}`;
        }
        const foreign = [...state.keys()].filter((name) => !contents.has(name) && !items.some((item) => item.actor === client && key(item) === name));
        if (foreign.length > 0) return `${client} holds files it should not: ${JSON.stringify(foreign)}`;
      }
      return undefined;
    };
    const settle = async (what: string): Promise<void> => {
      let last: string | undefined = 'not checked';
      const done = await waitFor(async () => (last = await converged()) === undefined, 150_000, 500);
      assert.ok(done, `${backend} ${protocol}: ${what} did not converge: ${last}\nalice:\n${await logOf('alice')}\nbob:\n${await logOf('bob')}`);
    };
    await settle('the first sync');

    // Edits round-trip in each side's own spelling: bob edits a file alice keeps in NFD and one zoe pushed in NFD, alice one of bob's.
    const edits: Array<[Actor, Item]> = [];
    for (const [editor, owner] of [['bob', 'alice'], ['bob', 'zoe'], ['alice', 'bob']] as const) {
      const target = synced.find((item) => item.actor === owner && item.cls === 'nfd');
      if (target !== undefined) edits.push([editor, target]);
    }
    const now = Math.floor(Date.now() / 1000);
    for (const [editor, target] of edits) {
      const state = await folderState(join(ws.dir, editor));
      const onDisk = state.get(key(target))?.names[0] as string;
      const content = Buffer.from(`edited by ${editor} at ${now}\n`);
      await writeFile(join(ws.dir, editor, onDisk), content);
      await utimes(join(ws.dir, editor, onDisk), now, now);
      contents.set(key(target), sha(content));
    }
    await settle('the edits');
    for (const [, target] of edits.filter(([, item]) => item.actor !== 'zoe')) {
      const owner = target.actor;
      const state = await folderState(join(ws.dir, owner));
      assert.deepEqual(state.get(key(target))?.names, [decodeName(target.name)], `${owner} keeps her own NFD spelling of ${JSON.stringify(key(target))}`);
    }
    const zoeEdit = edits.find(([, item]) => item.actor === 'zoe')?.[1];
    if (zoeEdit !== undefined) await assertRelaySpelling(relay.dir, protocol, zoeEdit, zoe.filter((item) => refusalOf(item.name, protocol) !== undefined));

    for (const [i, daemon] of daemons.entries()) assert.equal(daemon.child.exitCode, null, `daemon ${['alice', 'bob'][i]} stopped on its own:\n${daemon.output()}`);
    for (const daemon of daemons) daemon.child.kill('SIGTERM');
    await Promise.all(daemons.map((daemon) => daemon.exited));

    for (const client of ['alice', 'bob'] as const) {
      const log = await logOf(client);
      assert.doesNotMatch(log, / (ERROR|CRITICAL) /, `${client} logged an error:\n${log}`);
      assert.doesNotMatch(log, /changed during the download|round failed|have disappeared/, `${client}:\n${log}`);
      const warnings = log.split('\n').filter((line) => / WARNING /.test(line));
      let expected = 0;
      for (const item of items) {
        const problem = refusalOf(item.name, protocol);
        if (problem === undefined) continue;
        if (item.actor !== 'zoe' && item.actor !== client) continue;
        const side = item.actor === 'zoe' ? 'relay' : 'local';
        // why: the generated refused names are refused for their last segment, so the warning names the whole path.
        const shown: string = item.actor === 'zoe' ? relay.shown(item.name) : decodeName(item.name);
        const prefix: string = `not syncing ${side} file ${JSON.stringify(shown)}: the name `;
        const lines: string[] = warnings.filter((line) => line.includes(prefix));
        assert.equal(lines.length, 1, `${client}: ${lines.length} warnings about ${prefix}(${item.cls}, ${problem}):\n${warnings.join('\n')}`);
        expected += 1;
      }
      const refusals = warnings.filter((line) => line.includes('not syncing '));
      assert.equal(refusals.length, expected, `${client}: warnings about names no generated file has:\n${refusals.join('\n')}`);
    }

    for (const client of ['alice', 'bob']) {
      const once = await runEscale(['--once', '-c', configs[client] as string], { timeoutMs: 120_000 });
      assert.equal(once.code, 0, `--once of ${client} with only refused names left:\n${once.stderr}`);
    }
  } finally {
    for (const daemon of daemons) if (daemon.child.exitCode === null) daemon.child.kill('SIGKILL');
    await Promise.all(daemons.map((daemon) => daemon.exited));
    await relay.stop();
    await ws.cleanup();
  }
}

/** After our client edited a file zoe pushed in NFD, the relay names it in zoe's spelling only, so that zoe's 0.7 client sees the edit. */
async function assertRelaySpelling(relayDir: string, protocol: NameProtocol, item: Item, refusedOfZoe: readonly Item[]): Promise<void> {
  const spelled = decodeName(item.name);
  const nfc = spelled.normalize('NFC');
  if (protocol === 'placeholder') {
    const folder = spelled.includes('/') ? spelled.slice(0, spelled.lastIndexOf('/')) : '';
    const base = spelled.slice(spelled.lastIndexOf('/') + 1);
    const names = (await readdir(join(relayDir, folder))).filter((name) => name.normalize('NFC') === `.${base}.placeholder`.normalize('NFC'));
    assert.deepEqual(names, [`.${base}.placeholder`], 'one placeholder, in the spelling zoe used');
    const record = await readFile(join(relayDir, folder, `.${base}.placeholder`), 'utf8');
    assert.match(record, /^pusher: bob$/m, 'the placeholder is bob\'s new version');
    return;
  }
  const index = parsePersistentIndexContent(await bzip2DecompressBytes(await readFile(join(relayDir, '.0.index')), { maxOutputBytes: 1 << 24 }), { onSkip: () => undefined });
  assert.equal(index.spellings.get(nfc as never), spelled, 'the page index keeps zoe\'s spelling');
  assert.equal(index.entries.get(nfc as never)?.pusher, 'bob');
  assert.deepEqual(index.kept.map((entry) => entry.name).sort(), refusedOfZoe.map((entry) => decodeName(entry.name)).sort(), 'the entries of names escale refuses are still in the page index, for the 0.7 clients');
}

describe('field names: every name class syncs or is refused once, on a file relay and on SFTP, in both protocols', () => {
  for (const backend of ['file', 'sftp'] as const) {
    for (const protocol of ['placeholder', 'index'] as const) {
      test(`${backend} relay, ${protocol} protocol (seed ${SEED})`, { timeout: 300_000 }, (t) => scenario(t, backend, protocol));
    }
  }
});
