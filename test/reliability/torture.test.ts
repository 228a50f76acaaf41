// The short crash torture of the suite: 8 SIGKILLs per variant, placeholder protocol with and without
// Fernet, and the index protocol. `npm run torture` runs the long version (RELIABILITY.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTorture, summaryLine, type TortureVariant } from './torture.js';

const VARIANTS: readonly TortureVariant[] = ['placeholder', 'placeholder-fernet', 'index'];

/** Known defects the torture finds (reported; owned by the index protocol work): run, shown, not failing the suite. */
const TODO: Partial<Record<TortureVariant, string>> = {
};

for (const [i, variant] of VARIANTS.entries()) {
  const todo = TODO[variant];
  test(`crash torture [${variant}]: 8 SIGKILLs, then every client holds every final version; no temporary, lock or stale relay data`, { timeout: 110_000, ...(todo ? { todo } : {}) }, async (t) => {
    const result = await runTorture({ variant, kills: 8, seed: 4242 + i, maxFileBytes: 2 * 1024 * 1024 });
    if (result.skipped) {
      t.skip(`${variant} is not available in this build: ${result.skipped}`);
      return;
    }
    t.diagnostic(`[${variant}] ${summaryLine([result])} (${result.seconds} s)`);
    assert.equal(result.lost, 0, `${summaryLine([result])}\n${result.problems.join('\n')}`);
    assert.equal(result.corrupt, 0, result.problems.join('\n'));
    assert.deepEqual(result.problems, []);
    assert.ok(result.kills === 8 && result.files > 0);
  });
}
