import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import ts from 'typescript';
import type { ImportEdge, ImportGraph } from './layer-rules.js';

/** The specifiers a TypeScript source imports: static, type-only, re-exports and dynamic `import()`; comments and strings ignored. */
export function importSpecifiers(text: string): string[] {
  return ts.preProcessFile(text, true, true).importedFiles.map((reference) => reference.fileName);
}

/** The import graph of the non-test sources below `srcDir` (paths relative to it, relative specifiers resolved to `.ts` files). */
export function readImportGraph(srcDir: string): ImportGraph {
  const graph = new Map<string, ImportEdge[]>();
  const walk = (relDir: string): void => {
    for (const entry of readdirSync(join(srcDir, relDir), { withFileTypes: true })) {
      const rel = relDir === '' ? entry.name : `${relDir}/${entry.name}`;
      if (entry.isDirectory()) walk(rel);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('.d.ts')) {
        graph.set(rel, importSpecifiers(readFileSync(join(srcDir, rel), 'utf8')).map((specifier) => edgeOf(rel, specifier)));
      }
    }
  };
  walk('');
  return graph;
}

function edgeOf(file: string, specifier: string): ImportEdge {
  if (!specifier.startsWith('.')) return { specifier };
  const resolved = posix.normalize(posix.join(posix.dirname(file), specifier));
  return { specifier, target: resolved.endsWith('.js') ? `${resolved.slice(0, -3)}.ts` : resolved };
}
