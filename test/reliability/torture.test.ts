// The short crash torture of the suite: 8 SIGKILLs per variant, placeholder protocol with and without
// Fernet, the index protocol, and both protocols with hostile names and clocks 2 h off (libfaketime;
// what those variants assert: torture.ts). `npm run torture` runs the long version (RELIABILITY.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runTorture, summaryLine, type TortureVariant } from './torture.js';

const VARIANTS: readonly TortureVariant[] = ['placeholder', 'placeholder-fernet', 'index', 'placeholder-hostile', 'index-hostile'];

/** Known defects the torture finds (reported; owned by the index protocol work): run, shown, not failing the suite. */
const TODO: Partial<Record<TortureVariant, string>> = {
};

for (const [i, variant] of VARIANTS.entries()) {
  const todo = TODO[variant];
  test(`crash torture [${variant}]: 8 SIGKILLs, then every client holds every final version; no temporary, lock or stale relay data`, { timeout: 110_000, ...(todo ? { todo } : {}) }, async (t) => {
    const result = await runTorture({ variant, kills: 8, seed: 4242 + i, maxFileBytes: 2 * 1024 * 1024 });
    if (result.skipped) {
      console.error(`SKIP torture [${variant}]: ${result.skipped}`);
      t.skip(`${variant} cannot run here: ${result.skipped}`);
      return;
    }
    t.diagnostic(`[${variant}] ${summaryLine([result])} (${result.refused === undefined ? '' : `${result.refused} refused names, `}${result.seconds} s)`);
    assert.equal(result.lost, 0, `${summaryLine([result])}\n${result.problems.join('\n')}`);
    assert.equal(result.corrupt, 0, result.problems.join('\n'));
    assert.deepEqual(result.problems, []);
    assert.ok(result.kills === 8 && result.files > 0);
    // why: the first files of a hostile run take every name class in turn, three of which escale refuses.
    if (variant.endsWith('-hostile')) assert.ok((result.refused ?? 0) >= 3 && result.files > (result.refused ?? 0), `refused names met: ${result.refused}`);
  });
}
