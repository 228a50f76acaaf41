/*
 * The dependency rules of src/ (docs/architecture.md, "Layers and the rules the suite checks"), as
 * data, and a checker over an import graph. Pure: the graph is read elsewhere (import-graph.ts), so
 * that the checker can be tried on small made-up graphs.
 */

/** One import of a source file: its specifier, and the source file it names when it is relative. */
export interface ImportEdge {
  readonly specifier: string;
  /** Path relative to src/ of the imported file (`.ts`), for relative specifiers. */
  readonly target?: string;
}

/** The imports of every source file, by path relative to src/ (`relay/registry.ts`). */
export type ImportGraph = ReadonlyMap<string, readonly ImportEdge[]>;

/** A layer: the files it holds, the layers it may import, and which of its files may import the I/O modules. */
export interface Layer {
  readonly name: string;
  /** Folders (ending in `/`) or single files, relative to src/; the longest match decides a file's layer. */
  readonly paths: readonly string[];
  /** The other layers its files may import (a layer may always import itself). */
  readonly mayImport: readonly string[];
  /** Whether its files may import the I/O modules: all of them (true), none (false), or only the files listed. */
  readonly io: boolean | readonly string[];
}

/** The modules that touch the disk, start processes or open connections (each also under its bare name). */
export const IO_MODULES: readonly string[] = ['fs', 'fs/promises', 'child_process', 'net', 'tls', 'http', 'https', 'http2', 'dgram'].flatMap((name) => [`node:${name}`, name]);

const CONTRACT = 'relay contract';
const BELOW_SYNC = ['core', 'system', 'config', 'crypto', CONTRACT, 'relay/wrap', 'relay/protocol', 'local'];

/** The layers of src/, lowest first. */
export const LAYERS: readonly Layer[] = [
  { name: 'core', paths: ['core/'], mayImport: [], io: false },
  { name: 'system', paths: ['system/'], mayImport: ['core'], io: true },
  { name: 'config', paths: ['config/'], mayImport: ['core'], io: ['config/load.ts'] },
  { name: 'crypto', paths: ['crypto/'], mayImport: ['core'], io: false },
  { name: CONTRACT, paths: ['relay/backend.ts', 'relay/relay-clock.ts'], mayImport: ['core'], io: false },
  { name: 'relay/backends', paths: ['relay/backends/'], mayImport: ['core', 'system', CONTRACT], io: true },
  { name: 'relay/wrap', paths: ['relay/wrap/'], mayImport: ['core', CONTRACT], io: false },
  { name: 'relay/registry', paths: ['relay/registry.ts'], mayImport: ['core', CONTRACT, 'relay/backends'], io: false },
  { name: 'relay/protocol', paths: ['relay/protocol/'], mayImport: ['core', 'system', 'crypto', CONTRACT], io: false },
  { name: 'local', paths: ['local/'], mayImport: ['core', 'system', 'crypto', CONTRACT, 'relay/protocol'], io: true },
  { name: 'relay/maintenance', paths: ['relay/maintenance/'], mayImport: ['core', 'system', 'crypto', CONTRACT, 'relay/wrap', 'relay/protocol', 'local'], io: true },
  // why: the index engine still reads and writes local files itself (issue 15 moves that behind the local port).
  { name: 'sync', paths: ['sync/'], mayImport: BELOW_SYNC, io: ['sync/index-engine.ts'] },
  { name: 'daemon', paths: ['daemon/'], mayImport: [...BELOW_SYNC, 'relay/backends', 'relay/registry', 'relay/maintenance', 'sync'], io: true },
  { name: 'cli', paths: ['cli/'], mayImport: [...BELOW_SYNC, 'relay/backends', 'relay/registry', 'relay/maintenance', 'sync', 'daemon'], io: true },
];

/** The folder holding the backends, one sub-folder each. */
const BACKENDS = 'relay/backends/';

/** One broken rule, in words, naming the file(s). */
export interface Violation {
  readonly rule: 'layer' | 'cycle' | 'backends' | 'io' | 'unplaced' | 'order';
  readonly message: string;
}

/** The layer a file belongs to (longest matching path), or undefined. */
export function layerOf(file: string, layers: readonly Layer[] = LAYERS): Layer | undefined {
  let best: { layer: Layer; length: number } | undefined;
  for (const layer of layers) {
    for (const path of layer.paths) {
      const matches = path.endsWith('/') ? file.startsWith(path) : file === path;
      if (matches && (best === undefined || path.length > best.length)) best = { layer, length: path.length };
    }
  }
  return best?.layer;
}

/** The backend folder of a file (`relay/backends/s3/`), or undefined for files outside one. */
function backendFolderOf(file: string): string | undefined {
  if (!file.startsWith(BACKENDS)) return undefined;
  const rest = file.slice(BACKENDS.length);
  const slash = rest.indexOf('/');
  return slash < 0 ? undefined : BACKENDS + rest.slice(0, slash + 1);
}

/** Every set of files that import each other in a circle (strongly connected components of two files or more, or a file importing itself). */
export function findCycles(graph: ImportGraph): string[][] {
  // why: Tarjan's algorithm, iterative so that a long chain of imports cannot overflow the stack.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  let counter = 0;
  const successors = (file: string): string[] => (graph.get(file) ?? []).flatMap((edge) => (edge.target !== undefined && graph.has(edge.target) ? [edge.target] : []));
  for (const root of [...graph.keys()].sort()) {
    if (index.has(root)) continue;
    const work: { file: string; next: string[] }[] = [];
    const visit = (file: string): void => {
      index.set(file, counter);
      low.set(file, counter);
      counter += 1;
      stack.push(file);
      onStack.add(file);
      work.push({ file, next: successors(file) });
    };
    visit(root);
    while (work.length > 0) {
      const frame = work[work.length - 1] as { file: string; next: string[] };
      const next = frame.next.shift();
      if (next !== undefined) {
        if (!index.has(next)) visit(next);
        else if (onStack.has(next)) low.set(frame.file, Math.min(low.get(frame.file) as number, index.get(next) as number));
        continue;
      }
      work.pop();
      const parent = work[work.length - 1];
      if (parent !== undefined) low.set(parent.file, Math.min(low.get(parent.file) as number, low.get(frame.file) as number));
      if (low.get(frame.file) !== index.get(frame.file)) continue;
      const component: string[] = [];
      for (;;) {
        const member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
        if (member === frame.file) break;
      }
      if (component.length > 1 || successors(frame.file).includes(frame.file)) cycles.push(component.sort());
    }
  }
  return cycles;
}

/** Layers whose may-import lists name each other in a circle, or name a layer that does not exist. */
function orderProblems(layers: readonly Layer[]): Violation[] {
  const problems: Violation[] = [];
  const names = new Set(layers.map((l) => l.name));
  const graph = new Map<string, ImportEdge[]>();
  for (const layer of layers) {
    for (const other of layer.mayImport) {
      if (!names.has(other)) problems.push({ rule: 'order', message: `layer '${layer.name}' may import '${other}', which is no layer` });
    }
    graph.set(layer.name, layer.mayImport.map((other) => ({ specifier: other, target: other })));
  }
  for (const cycle of findCycles(graph)) problems.push({ rule: 'order', message: `layers that may import each other: ${cycle.join(' <-> ')}` });
  return problems;
}

/**
 * Checks an import graph against the layer rules: every file in a layer; no import cycle between
 * files; no import of a layer that is not on the importer's may-import list; no import from one
 * backend's folder into another's; no I/O module outside the places allowed to use it.
 */
export function checkLayers(graph: ImportGraph, layers: readonly Layer[] = LAYERS): Violation[] {
  const violations: Violation[] = [...orderProblems(layers)];
  for (const [file, edges] of [...graph].sort(([a], [b]) => a.localeCompare(b))) {
    const layer = layerOf(file, layers);
    if (layer === undefined) {
      violations.push({ rule: 'unplaced', message: `${file} is in no layer: place its folder in the layer table` });
      continue;
    }
    for (const edge of edges) {
      if (IO_MODULES.includes(edge.specifier)) {
        const allowed = layer.io === true || (Array.isArray(layer.io) && layer.io.includes(file));
        if (!allowed) violations.push({ rule: 'io', message: `${file} imports ${edge.specifier}, but layer '${layer.name}' does no I/O` });
        continue;
      }
      if (edge.target === undefined) continue;
      const targetLayer = layerOf(edge.target, layers);
      if (targetLayer === undefined) continue;
      if (targetLayer !== layer && !layer.mayImport.includes(targetLayer.name)) {
        violations.push({ rule: 'layer', message: `${file} (${layer.name}) imports ${edge.target} (${targetLayer.name}), which '${layer.name}' may not import` });
      }
      const from = backendFolderOf(file);
      const to = backendFolderOf(edge.target);
      if (from !== undefined && to !== undefined && from !== to) {
        violations.push({ rule: 'backends', message: `${file} imports ${edge.target}: a backend never imports another backend's files` });
      }
    }
  }
  for (const cycle of findCycles(graph)) violations.push({ rule: 'cycle', message: `import cycle: ${cycle.join(' <-> ')}` });
  return violations;
}
