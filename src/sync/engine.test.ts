import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, closeSync, openSync, statSync, utimesSync, writeSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { createLogger, memorySink, type LogRecord } from '../core/log.js';
import { ROOT, type RelayPath, type RelPath } from '../core/relpath.js';
import { createCipher } from '../crypto/cipher.js';
import { generateFernetKey } from '../crypto/fernet.js';
import { hookedLocal, type HookedLocal } from '../daemon/local-test-kit.js';
import { BaseStore } from '../local/base-store.js';
import type { Entry, PutOptions } from '../relay/backend.js';
import { MemoryBackend } from '../relay/backends/memory/memory-backend.js';
import { classifyRelayName, placeholderPathOf } from '../relay/protocol/layout.js';
import { parseMetadata } from '../relay/protocol/placeholder.js';
import { PlaceholderRelay } from '../relay/protocol/placeholder-relay.js';
import { PlaceholderEngine, type CipherPort } from './engine.js';
import { planPlaceholderRound } from './planner.js';

/**
 * A memory relay that checks itself after every change: each data file that has a placeholder must
 * hold the content (decrypted, when there is a cipher) whose checksum the placeholder announces,
 * whether or not a lock is held. Every state a reader could ever see is checked, not a sample.
 */
class SelfCheckingRelay extends MemoryBackend {
  readonly violations: string[] = [];
  states = 0;

  constructor(private readonly cipher: CipherPort | null) {
    super();
  }

  override async put(path: RelayPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry> {
    try {
      return await super.put(path, body, options);
    } finally {
      await this.verify();
    }
  }

  override async delete(path: RelayPath, options?: { signal?: AbortSignal }): Promise<void> {
    await super.delete(path, options);
    await this.verify();
  }

  private async verify(): Promise<void> {
    this.states += 1;
    const names = new Set<RelayPath>();
    for await (const entry of this.list(ROOT, { recursive: true })) if (entry.kind === 'file') names.add(entry.path);
    for (const name of names) {
      if (classifyRelayName(name).kind !== 'data' || !names.has(placeholderPathOf(name))) continue;
      const record = parseMetadata(await this.bytes(placeholderPathOf(name)));
      let content = await this.bytes(name);
      if (this.cipher) {
        const decrypt = this.cipher.decrypt();
        const out: Buffer[] = [];
        decrypt.on('data', (chunk: Buffer) => out.push(chunk));
        const done = new Promise((resolve, reject) => decrypt.on('end', resolve).on('error', reject));
        decrypt.end(content);
        await done;
        content = Buffer.concat(out);
      }
      const actual = createHash('sha512').update(content).digest('hex');
      if (actual !== record.checksum) this.violations.push(`state ${this.states}: '${name}' holds ${content.length} bytes of sha512 ${actual.slice(0, 12)}…, its placeholder announces ${record.checksum?.slice(0, 12)}…`);
    }
  }

  private async bytes(path: RelayPath): Promise<Buffer> {
    const chunks: Buffer[] = [];
    for await (const chunk of await this.get(path)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }
}

interface Client {
  readonly engine: PlaceholderEngine;
  readonly local: HookedLocal;
  readonly root: string;
  readonly logs: LogRecord[];
  readonly base: BaseStore;
}

async function client(dir: string, relay: MemoryBackend, name: string, cipher: CipherPort | null, cacheNow?: () => number): Promise<Client> {
  const root = join(dir, name);
  await mkdir(root, { recursive: true });
  const logs: LogRecord[] = [];
  const logger = createLogger([memorySink(logs)], name);
  const local = await hookedLocal(root, logger, cacheNow);
  const base = BaseStore.inMemory();
  const engine = new PlaceholderEngine(new PlaceholderRelay(relay, { client: name, lockTimeoutSec: null, now: Date.now, logger }), local, {
    client: name,
    mode: 'shared',
    useMtime: true,
    useChecksum: true,
    checksumAlgorithm: 'sha512',
    base,
    cipher,
    acceptsRemote: () => true,
    plan: planPlaceholderRound,
    logger,
  });
  return { engine, local, root, logs, base };
}

const sha512 = (data: Buffer): string => createHash('sha512').update(data).digest('hex');

for (const variant of ['plain', 'fernet'] as const) {
  describe(`placeholder uploads of files that change while they are read (${variant})`, () => {
    const cipher = (): CipherPort | null => (variant === 'fernet' ? createCipher({ algorithm: 'fernet', key: Buffer.from(generateFernetKey()) }, { now: Date.now }) : null);

    /** Runs a scenario: `change` is done to alice's `file` once, while its upload reads it. */
    async function scenario(change: (path: string) => void): Promise<void> {
      const dir = await mkdtemp(join(tmpdir(), 'engine-'));
      try {
        const shared = cipher();
        const relay = new SelfCheckingRelay(shared);
        const alice = await client(dir, relay, 'alice', shared);
        const bob = await client(dir, relay, 'bob', shared);
        const file = join(alice.root, 'growing.bin');
        await writeFile(file, randomBytes(700 * 1024));
        let changes = 0;
        alice.local.hooks.open = (path, stream) => {
          if (path === 'growing.bin' && changes === 0) stream.once('data', () => void (change(file), (changes += 1)));
        };
        const first = await alice.engine.round();
        assert.equal(changes, 1, 'the file changed during the upload');
        assert.equal(first.transferred, 0);
        assert.equal(first.deferred, 1, 'retried in a later round');
        assert.equal(first.failed, 0);
        const messages = alice.logs.map((r) => r.message);
        assert.ok(messages.some((m) => /file 'growing\.bin' changed while it was uploaded \(.+\); the upload was rolled back/.test(m)), messages.join('\n'));
        assert.ok(!messages.some((m) => /successfully uploaded/.test(m)), 'never logged as uploaded');
        assert.deepEqual((await names(relay)).filter((n) => n.includes('growing')), [], 'rolled back: no data, no placeholder, no lock');
        assert.equal(alice.base.get('growing.bin' as RelPath), undefined, 'no base for what was not published');

        assert.equal((await alice.engine.round()).transferred, 1);
        const sent = await readFile(file);
        assert.equal(parseMetadata(await bytes(relay, '.growing.bin.placeholder' as RelPath)).checksum, sha512(sent));
        assert.equal(alice.base.get('growing.bin' as RelPath)?.checksum, sha512(sent), 'the base is the version sent');
        assert.equal((await bob.engine.round()).transferred, 1);
        assert.deepEqual(await readFile(join(bob.root, 'growing.bin')), sent, 'the final content arrives');
        assert.ok(relay.states > 10);
        assert.deepEqual(relay.violations, [], 'no relay state ever paired data with a record that does not match it');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }

    test('a file appended to while it is uploaded', () => scenario((file) => appendFileSync(file, 'one more line\n')));

    test('a file rewritten in place (same size, mtime put back) while it is uploaded', () =>
      scenario((file) => {
        const { atime, mtime, size } = statSync(file);
        const fd = openSync(file, 'r+');
        try {
          writeSync(fd, Buffer.alloc(4096, 0x55), 0, 4096, size - 4096);
        } finally {
          closeSync(fd);
        }
        utimesSync(file, atime, mtime);
      }));
  });
}

test('an edit that keeps the size and puts the mtime back is sent (the checksum cache no longer keeps the old checksum)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'engine-'));
  try {
    const relay = new MemoryBackend();
    // why: a clock a minute late, so that the cache keeps the checksum of the file just written, as it would a day later.
    const alice = await client(dir, relay, 'alice', null, () => Date.now() + 60_000);
    const bob = await client(dir, relay, 'bob', null);
    const file = join(alice.root, 'a.txt');
    await writeFile(file, 'version 1\n');
    utimesSync(file, 2_000_000_000, 2_000_000_000);
    assert.equal((await alice.engine.round()).transferred, 1);
    assert.equal((await bob.engine.round()).transferred, 1);
    await writeFile(file, 'version 2\n');
    utimesSync(file, 1_000_000_000, 1_000_000_000);
    assert.equal((await alice.engine.round()).transferred, 1, 'the edit is sent');
    assert.ok(!alice.logs.some((r) => /has the same content as the relay copy/.test(r.message)));
    assert.equal((await bob.engine.round()).transferred, 1);
    assert.equal(await readFile(join(bob.root, 'a.txt'), 'utf8'), 'version 2\n');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function names(relay: MemoryBackend): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of relay.list(ROOT, { recursive: true })) if (entry.kind === 'file') out.push(entry.path);
  return out.sort();
}

async function bytes(relay: MemoryBackend, path: RelPath): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of await relay.get(path)) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
