import assert from 'node:assert/strict';
import { dirname, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { importSpecifiers, readImportGraph } from './import-graph.js';
import { checkLayers, findCycles, layerOf, type ImportEdge, type ImportGraph, type Layer } from './layer-rules.js';

/** src/ of the repository (this file runs from dist/test/architecture/). */
const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../../../src');

/** A graph from `file: [imports]`, relative specifiers written as src-relative targets, others (node:fs) as they are. */
function graphOf(files: Record<string, readonly string[]>): ImportGraph {
  return new Map(Object.entries(files).map(([file, imports]) => [file, imports.map((i): ImportEdge => (i.includes(':') || !i.includes('/') ? { specifier: i } : { specifier: `./${i}`, target: i }))]));
}

const rules = (graph: ImportGraph, layers?: readonly Layer[]): string[] => checkLayers(graph, layers).map((v) => v.rule);

describe('layers of src/', () => {
  it('src/ keeps every rule: no cycle, no upward import, no import between backends, I/O only where allowed', () => {
    const graph = readImportGraph(SRC);
    assert.ok(graph.size > 100, `read ${graph.size} files from ${SRC}`);
    assert.deepEqual(checkLayers(graph).map((v) => v.message), []);
  });

  it('places files by the longest matching path', () => {
    assert.equal(layerOf('relay/backend.ts')?.name, 'relay contract');
    assert.equal(layerOf('relay/backends/s3/s3-backend.ts')?.name, 'relay/backends');
    assert.equal(layerOf('relay/protocol/archive.ts')?.name, 'relay/protocol');
    assert.equal(layerOf('relay/unknown.ts'), undefined);
  });

  it('the layer table is an order: no two layers may import each other, directly or around', () => {
    assert.deepEqual(checkLayers(new Map()), []);
    const circular: Layer[] = [
      { name: 'a', paths: ['a/'], mayImport: ['b'], io: false },
      { name: 'b', paths: ['b/'], mayImport: ['c'], io: false },
      { name: 'c', paths: ['c/'], mayImport: ['a', 'nowhere'], io: false },
    ];
    const problems = checkLayers(new Map(), circular).map((v) => v.message);
    assert.equal(problems.length, 2, problems.join('\n'));
    assert.match(problems.join('\n'), /'nowhere', which is no layer/);
    assert.match(problems.join('\n'), /layers that may import each other: a <-> b <-> c/);
  });

  it('reads every kind of import and ignores comments and strings', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b.js';",
      "export { c } from './c.js';",
      "import './side-effect.js';",
      "const lazy = await import('./lazy.js');",
      "// import { no } from './commented.js';",
      "const s = \"import { no } from './string.js'\";",
      "import { readFileSync } from 'node:fs';",
    ].join('\n');
    assert.deepEqual(importSpecifiers(text).sort(), ['../b.js', './a.js', './c.js', './lazy.js', './side-effect.js', 'node:fs'].sort());
  });
});

describe('the layer checker, on planted violations', () => {
  it('passes a graph that keeps the rules', () => {
    assert.deepEqual(rules(graphOf({
      'core/errors.ts': [],
      'relay/backend.ts': ['core/errors.ts'],
      'relay/backends/s3/s3-backend.ts': ['relay/backend.ts', 'relay/backends/descriptor.ts', 'node:http'],
      'relay/backends/descriptor.ts': ['relay/backend.ts'],
      'relay/protocol/lock.ts': ['relay/backend.ts'],
      'local/scanner.ts': ['node:fs', 'relay/protocol/lock.ts'],
      'config/load.ts': ['node:fs/promises'],
      'cli/escale.ts': ['node:child_process', 'local/scanner.ts', 'relay/backends/s3/s3-backend.ts'],
    })), []);
  });

  it('fails on an import cycle between two files, between three, and on a file importing itself', () => {
    assert.deepEqual(rules(graphOf({ 'sync/a.ts': ['sync/b.ts'], 'sync/b.ts': ['sync/a.ts'] })), ['cycle']);
    const three = graphOf({ 'relay/backends/x/a.ts': ['relay/backends/x/b.ts'], 'relay/backends/x/b.ts': ['relay/backends/x/c.ts'], 'relay/backends/x/c.ts': ['relay/backends/x/a.ts'], 'relay/backends/x/d.ts': ['relay/backends/x/a.ts'] });
    assert.deepEqual(findCycles(three), [['relay/backends/x/a.ts', 'relay/backends/x/b.ts', 'relay/backends/x/c.ts']]);
    assert.deepEqual(rules(graphOf({ 'core/a.ts': ['core/a.ts'] })), ['cycle']);
    assert.deepEqual(rules(graphOf({ 'core/a.ts': ['core/b.ts'], 'core/b.ts': [] })), []);
  });

  it('fails on an upward import, and on an import of a layer that is not on the list even when lower', () => {
    assert.deepEqual(rules(graphOf({ 'relay/protocol/records.ts': ['sync/model.ts'], 'sync/model.ts': [] })), ['layer']);
    assert.deepEqual(rules(graphOf({ 'core/log.ts': ['local/log-file.ts'], 'local/log-file.ts': [] })), ['layer']);
    // why: the protocol sits above the backends but sees only the contract, never a concrete backend.
    assert.deepEqual(rules(graphOf({ 'relay/protocol/lock.ts': ['relay/backends/file/file-backend.ts'], 'relay/backends/file/file-backend.ts': [] })), ['layer']);
    const [violation] = checkLayers(graphOf({ 'crypto/key.ts': ['config/load.ts'], 'config/load.ts': [] }));
    assert.equal(violation?.message, "crypto/key.ts (crypto) imports config/load.ts (config), which 'crypto' may not import");
  });

  it("fails on an import from one backend's folder into another's, not on the shared files beside them", () => {
    assert.deepEqual(rules(graphOf({ 'relay/backends/s3/s3-descriptor.ts': ['relay/backends/rclone/rclone-remote.ts'], 'relay/backends/rclone/rclone-remote.ts': [] })), ['backends']);
    assert.deepEqual(rules(graphOf({ 'relay/backends/s3/s3-descriptor.ts': ['relay/backends/target-options.ts'], 'relay/backends/target-options.ts': [], 'relay/backends/all.ts': ['relay/backends/s3/s3-descriptor.ts'] })), []);
  });

  it('fails on node:fs, node:fs/promises, node:child_process or a network module outside the I/O places', () => {
    for (const [file, module] of [['core/log.ts', 'node:fs'], ['crypto/key-file.ts', 'node:fs/promises'], ['relay/protocol/bzip2.ts', 'node:child_process'], ['config/resolve.ts', 'node:fs'], ['sync/planner.ts', 'fs'], ['relay/wrap/retry.ts', 'node:fs'], ['relay/protocol/lock.ts', 'node:net'], ['crypto/cipher.ts', 'https']] as const) {
      const [violation] = checkLayers(graphOf({ [file]: [module] }));
      assert.equal(violation?.rule, 'io', `${file} importing ${module}`);
      assert.match(violation?.message ?? '', new RegExp(`${file} imports ${module}`));
    }
    assert.deepEqual(rules(graphOf({ 'sync/index-engine.ts': ['node:fs'], 'system/bzip2.ts': ['node:child_process'], 'daemon/pidfile.ts': ['node:fs'] })), []);
  });

  it('fails on a file in no layer', () => {
    assert.deepEqual(rules(graphOf({ 'plugins/x.ts': [] })), ['unplaced']);
  });
});
