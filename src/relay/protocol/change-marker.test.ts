import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createLogger, memorySink, silentLogger, type LogRecord } from '../../core/log.js';
import type { RelayPath } from '../../core/relpath.js';
import type { Backend } from '../backend.js';
import { MemoryBackend } from '../backends/memory/memory-backend.js';
import { CHANGE_MARKER, ChangeMarker } from './change-marker.js';
import { IndexRelay } from './index-relay.js';
import { classifyRelayName, resourceNameOf } from './layout.js';
import { parsePageFileName } from './pages.js';
import { PlaceholderRelay } from './placeholder-relay.js';

const FIXTURES = fileURLToPath(new URL('../../../../test/fixtures/escale-0.7/', import.meta.url));

/** Every file below `root`, as relay-relative names. */
function filesUnder(root: string, prefix = ''): string[] {
  return readdirSync(join(root, prefix)).flatMap((name) => {
    const rel = prefix === '' ? name : `${prefix}/${name}`;
    return statSync(join(root, rel)).isDirectory() ? filesUnder(root, rel) : [rel];
  });
}

async function loadFixture(scenario: string, stage: string, withMarker: boolean): Promise<MemoryBackend> {
  const backend = new MemoryBackend();
  const root = join(FIXTURES, scenario, stage);
  for (const name of filesUnder(root)) await backend.put(name as RelayPath, readFileSync(join(root, name)));
  if (withMarker) await backend.put(CHANGE_MARKER, Buffer.from('escale change marker\n'));
  return backend;
}

test('the change marker is a name that escale 0.7 ignores in both protocols, as our parsers of its rules do', () => {
  // Placeholder protocol (relay-format.md P3.1): only `.N.lock`, `.N.placeholder`, `.N.message` and names without a dot count.
  assert.equal(classifyRelayName(CHANGE_MARKER).kind, 'other');
  assert.equal(classifyRelayName(CHANGE_MARKER).resource, undefined);
  assert.equal(resourceNameOf(CHANGE_MARKER), CHANGE_MARKER, 'no resource is derived from it');
  for (const suffix of ['.lock', '.placeholder', '.message', '.index', '.data']) assert.ok(!CHANGE_MARKER.endsWith(suffix), `it does not end with ${suffix}`);
  // Index protocol (relay-format.md P4.2): `.<P>.index`, `.<P>.lock`, `.<P>.<T>.index`, `.<P>.<T>.data` only.
  assert.equal(parsePageFileName(CHANGE_MARKER), undefined);
  assert.ok(CHANGE_MARKER.startsWith('.'), 'a dot name: never a resource, never scanned');
});

for (const scenario of ['placeholder-plain', 'placeholder-pullers2', 'placeholder-fernet']) {
  test(`${scenario}: a relay written by escale 0.7 reads the same with the change marker beside its files`, async () => {
    for (const stage of ['relay-after-push', 'relay-after-pull']) {
      const described = async (withMarker: boolean): Promise<unknown> => {
        const relay = new PlaceholderRelay(await loadFixture(scenario, stage, withMarker), { client: 'carol', lockTimeoutSec: null, now: Date.now, logger: silentLogger });
        return [...(await relay.describe(await relay.crawl())).entries()].sort();
      };
      assert.deepEqual(await described(true), await described(false), stage);
    }
  });
}

for (const scenario of ['index-plain', 'index-topdir', 'index-pullers2', 'index-fernet']) {
  test(`${scenario}: an index relay written by escale 0.7 has the same pages with the change marker in its root`, async () => {
    for (const stage of ['relay-after-push', 'relay-after-pull']) {
      const pages = async (withMarker: boolean): Promise<unknown> => {
        const relay = new IndexRelay(await loadFixture(scenario, stage, withMarker), { client: 'carol', lockTimeoutSec: null, now: Date.now, logger: silentLogger });
        return [...(await relay.snapshot()).pages.entries()].map(([page, files]) => [page, files.index?.path, [...files.updates.keys()]]).sort();
      };
      assert.deepEqual(await pages(true), await pages(false), stage);
    }
  });
}

/** A backend whose calls are counted, with a settable mtime precision. */
function counted(inner: Backend, precisionMs: number | undefined): Backend & { calls: string[] } {
  const calls: string[] = [];
  const wrapped = Object.create(inner) as Backend & { calls: string[] };
  Object.defineProperty(wrapped, 'features', { value: { ...inner.features, mtimePrecisionMs: precisionMs } });
  wrapped.calls = calls;
  for (const method of ['stat', 'get', 'put', 'list'] as const) {
    const original = inner[method].bind(inner) as (...args: unknown[]) => unknown;
    (wrapped as unknown as Record<string, unknown>)[method] = (...args: unknown[]) => {
      calls.push(method);
      return original(...args);
    };
  }
  return wrapped;
}

test('polling: one request per poll; a touch by another client is seen; a stamp first seen less than the mtime precision before the listing is listed once more', async () => {
  let mono = 1000;
  const memory = new MemoryBackend();
  const backend = counted(memory, 1000);
  const ours = new ChangeMarker(backend, { client: 'bob', logger: silentLogger, monotonic: () => mono });
  const theirs = new ChangeMarker(memory, { client: 'alice', logger: silentLogger });
  assert.equal(await ours.changed(), true, 'nothing listed yet');
  await ours.listed(undefined, mono);
  backend.calls.length = 0;
  assert.equal(await ours.changed(), false, 'no marker, none before');
  assert.deepEqual(backend.calls, ['stat'], 'one stat per poll');
  await theirs.touch();
  assert.equal(await ours.changed(), true, "alice's touch is seen");
  const entry = await memory.stat(CHANGE_MARKER);
  await ours.listed(entry, mono);
  mono += 500;
  assert.equal(await ours.changed(), false, 'within the precision: the same stamp');
  mono += 600;
  assert.equal(await ours.changed(), true, 'a listing right after the stamp appeared is confirmed by one more');
  await ours.listed(entry, mono);
  assert.equal(await ours.changed(), false, 'confirmed');
  mono += 10_000;
  assert.equal(await ours.changed(), false);
});

test('a backend without mtimes is polled by reading the marker; a marker that cannot be written is one warning', async () => {
  const memory = new MemoryBackend();
  const backend = counted(memory, undefined);
  const ours = new ChangeMarker(backend, { client: 'bob', logger: silentLogger });
  await new ChangeMarker(memory, { client: 'alice', logger: silentLogger }).touch();
  await ours.listed({ path: CHANGE_MARKER, kind: 'file', size: 1 }, 0);
  backend.calls.length = 0;
  assert.equal(await ours.changed(), false);
  assert.deepEqual(backend.calls, ['get']);
  await new ChangeMarker(memory, { client: 'alice', logger: silentLogger }).touch();
  assert.equal(await ours.changed(), true, 'a new nonce');

  const logs: LogRecord[] = [];
  const refusing = Object.create(memory) as Backend;
  refusing.put = async () => Promise.reject(new Error('read-only relay'));
  const marker = new ChangeMarker(refusing, { client: 'bob', logger: createLogger([memorySink(logs)]) });
  await marker.touch();
  await marker.touch();
  assert.equal(logs.filter((r) => r.level === 'warning').length, 1, 'said once');
});
