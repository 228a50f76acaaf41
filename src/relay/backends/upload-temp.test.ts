import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isUploadTempName, leftoverTemps, uploadTempName } from './upload-temp.js';

describe('upload temporaries', () => {
  it('are hidden names tagged with their target', () => {
    const a = uploadTempName('payload.bin');
    assert.match(a, /^\.escale-put-[0-9a-f]{8}-[0-9a-f]{16}\.tmp$/);
    assert.ok(isUploadTempName(a));
    assert.equal(a.slice(0, 20), uploadTempName('payload.bin').slice(0, 20), 'same tag for the same target');
    assert.notEqual(a.slice(0, 20), uploadTempName('other.bin').slice(0, 20));
    assert.ok(isUploadTempName('.escale-put-0123456789abcdef.tmp'), 'the earlier untagged form');
    assert.equal(isUploadTempName('payload.bin'), false);
  });

  it('a temporary left by a crashed put goes once a later put of its target completed, or after a day', () => {
    const now = Date.parse('2026-01-02T00:00:00Z');
    const crashed = uploadTempName('payload.bin');
    const inFlight = uploadTempName('payload.bin');
    const other = uploadTempName('other.bin');
    const old = '.escale-put-0123456789abcdef.tmp';
    const items = [
      { name: 'payload.bin', mtimeMs: now - 10_000 },
      { name: crashed, mtimeMs: now - 20_000 },
      // still being written after the target was completed: kept
      { name: inFlight, mtimeMs: now - 1000 },
      // its target was never completed: kept until stale
      { name: other, mtimeMs: now - 60_000 },
      { name: old, mtimeMs: now - 25 * 3600_000 },
      { name: '.escale-put-fedcba9876543210.tmp', mtimeMs: now - 60_000 },
    ];
    assert.deepEqual(leftoverTemps(items, now).sort(), [crashed, old].sort());
  });

  it('a temporary written just before its target completed is kept (a racing put may still rename it)', () => {
    const temp = uploadTempName('.x.lock');
    assert.deepEqual(leftoverTemps([{ name: '.x.lock', mtimeMs: 5000 }, { name: temp, mtimeMs: 3000 }], 10_000), []);
  });
});
