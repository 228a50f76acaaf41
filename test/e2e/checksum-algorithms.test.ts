// End-to-end: two real clients whose `checksum` algorithms differ (alice sha1, bob sha512, the
// default) share a `file` relay, in both protocols. Relay records hold only a hex digest, so each
// client meets digests it can never reproduce: it must say so once per pusher (both algorithms and
// the fix), decide those files by pusher and timestamp (as 0.7 does), never fail a download as
// corrupt, never transfer a file again for nothing, and still let every edit through, one made
// with an older mtime included.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { put } from './harness.js';
import { indexSetup, type IndexSetup } from './index-support.js';

const T0 = 1_700_000_000;

/** One `--once` round; returns its output, after checking that nothing failed or was called corrupt. */
async function round(s: IndexSetup, client: 'alice' | 'bob'): Promise<string> {
  const result = await s.once(client);
  const output = result.stdout + result.stderr;
  assert.doesNotMatch(output, /Integrity|does not match its checksum|corrupt| ERROR /, `${client}:\n${output}`);
  return output;
}

/** The warning about records of `pusher`, counted in `output`. */
function warnings(output: string, pusher: string, theirs: string, mine: string): number {
  const pattern = new RegExp(`files pushed by '${pusher}' carry checksums of ${theirs}, not of this client's algorithm ${mine}: they are compared by modification time instead .*set the same 'checksum' option on every client of this relay`, 'g');
  return output.match(pattern)?.length ?? 0;
}

describe('clients with different checksum algorithms (sha1 and sha512) share a relay', () => {
  for (const protocol of ['placeholder', 'index'] as const) {
    test(protocol, { timeout: 240_000 }, async () => {
      const index: Record<string, number> = protocol === 'index' ? { index: 1 } : {};
      const s = await indexSetup({ alice: { checksum: 'sha1', ...index }, bob: { ...index } });
      try {
        const read = (client: string, path: string): Promise<string> => readFile(join(s.folder(client), path), 'utf8');
        await put(s.folder('alice'), 'a.txt', 'first by alice', T0);
        await put(s.folder('alice'), 'docs/b.txt', 'second by alice', T0 + 1);
        await round(s, 'alice');
        const bob = await round(s, 'bob');
        assert.equal(warnings(bob, 'alice', 'sha1 \\(40 hex digits\\)', 'sha512 \\(128 hex digits\\)'), 1, `one warning for alice's two files:\n${bob}`);
        assert.equal(await read('bob', 'a.txt'), 'first by alice');
        assert.equal(await read('bob', 'docs/b.txt'), 'second by alice');
        assert.doesNotMatch(await round(s, 'bob'), /downloading|updating|uploading/, 'nothing moves again');

        await put(s.folder('bob'), 'a.txt', 'edited by bob', T0 + 100);
        await round(s, 'bob');
        const alice = await round(s, 'alice');
        assert.equal(warnings(alice, 'bob', 'sha512 \\(128 hex digits\\)', 'sha1 \\(40 hex digits\\)'), 1, alice);
        assert.equal(await read('alice', 'a.txt'), 'edited by bob');

        // why: decided against the base (pusher, timestamp), not by the mtimes: an edit stamped older still goes.
        await put(s.folder('alice'), 'a.txt', 'edited by alice, on a clock behind', T0 + 50);
        await round(s, 'alice');
        await round(s, 'bob');
        assert.equal(await read('bob', 'a.txt'), 'edited by alice, on a clock behind');
        for (const client of ['alice', 'bob'] as const) assert.doesNotMatch(await round(s, client), /downloading|updating|uploading/, `${client} is idle`);
      } finally {
        await s.cleanup();
      }
    });
  }
});
