// Issue 14: in-process clients that follow their folders through file-system events, with the
// real openClient wiring: a lost event queue (inotify's overflow, which Node does not report, is
// injected) costs one full scan and loses nothing; rounds between changes plan nothing and read
// nothing of the local folder but what changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LocalRepository } from '../../src/daemon/local-repository.js';
import { MemoryBackend } from '../../src/relay/backends/memory/memory-backend.js';
import type { LocalPort } from '../../src/sync/engine.js';
import { waitFor } from '../e2e/harness.js';
import { openKit, settle, type KitClient, type KitVariant } from './engine-kit.js';

for (const variant of ['placeholder', 'index'] as KitVariant[]) {
  test(`${variant}: a lost event queue falls back to a full scan and loses nothing; events work again afterwards`, { timeout: 120_000 }, async () => {
    let repository: LocalRepository | undefined;
    const kit = await openKit({
      variant,
      clients: { alice: 'upload', bob: 'download' },
      relay: new MemoryBackend(),
      watch: true,
      wrapLocal: (name, local: LocalPort) => {
        if (name === 'alice' && local instanceof LocalRepository) repository = local;
        return local;
      },
    });
    try {
      const alice = kit.clients['alice'] as KitClient;
      const bob = kit.clients['bob'] as KitClient;
      assert.ok(repository, 'the kit exposes alice repository');
      await writeFile(join(alice.folder, 'first.txt'), 'first\n');
      await settle(kit, ['alice', 'bob']);
      assert.equal(repository.watchStatus.mode, 'events');
      assert.equal(await readFile(join(bob.folder, 'first.txt'), 'utf8'), 'first\n');

      // An idle round with nothing changed plans nothing.
      const idle = await alice.round();
      assert.equal(idle.transferred, 0);

      // The queue overflows right after a write: its event is lost.
      await writeFile(join(alice.folder, 'lost.txt'), 'lost event\n');
      repository.simulateOverflow();
      assert.equal(repository.watchStatus.mode, 'scans');
      const round = await alice.round();
      assert.equal(round.transferred, 1, 'the full scan found the file whose event was lost');
      assert.equal(repository.watchStatus.mode, 'events', 'watching again');
      await settle(kit, ['alice', 'bob']);
      assert.equal(await readFile(join(bob.folder, 'lost.txt'), 'utf8'), 'lost event\n');
      const warnings = kit.logs.filter((r) => r.level === 'warning' && /event queue overflowed/.test(r.message));
      assert.equal(warnings.length, 1, 'said once');

      // Events work again: a new file is seen once it settled, without a full scan.
      await writeFile(join(alice.folder, 'later.txt'), 'later\n');
      assert.equal(await waitFor(async () => repository?.hasPendingChanges === true, 10_000, 50), true, 'the change settled');
      assert.equal((await alice.round()).transferred, 1);
      await settle(kit, ['alice', 'bob']);
      assert.equal(await readFile(join(bob.folder, 'later.txt'), 'utf8'), 'later\n');
    } finally {
      await kit.close();
    }
  });
}
