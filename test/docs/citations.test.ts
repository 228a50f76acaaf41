// The code, tests, scripts and Markdown files cite only the project's own documents: no document
// outside the repository (the 0.7 specification and the team's notes it was built from), and every
// `relay-format.md Pn.n` / `sync-rules.md Rn` / `configuration.md Cn` / `test-servers.md Sn`
// citation (and defect id `F-n`, `B-n`, `U-n`) names a heading or defect that exists in that doc.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** One citation the check refuses, with where it is. */
interface Finding {
  file: string;
  line: number;
  problem: string;
  text: string;
}

/** The ids a project document defines: section headings and defect ids. */
type DocIds = ReadonlyMap<string, ReadonlySet<string>>;

/** The project documents that may be cited by id, with the letters of their section and defect ids. */
const CITABLE = {
  'relay-format.md': { section: 'P', defect: 'F' },
  'sync-rules.md': { section: 'R', defect: 'B' },
  'configuration.md': { section: 'C', defect: 'U' },
  'test-servers.md': { section: 'S', defect: undefined },
} as const;

type CitableDoc = keyof typeof CITABLE;

/** Citations of documents outside the repository, each with what it means. */
const FOREIGN: ReadonlyArray<{ pattern: RegExp; problem: string; allowedIn?: (file: string) => boolean }> = [
  { pattern: /\brelay-protocol\b/, problem: 'cites the 0.7 relay-protocol specification (use relay-format.md)' },
  { pattern: /\bcli-and-config\b/, problem: 'cites the 0.7 cli-and-config specification (use configuration.md or sync-rules.md)' },
  { pattern: /\/work\/shared\b/, problem: 'cites a path outside the repository' },
  { pattern: /§\s*\d/, problem: 'cites a numbered section of an outside document (§n)' },
  { pattern: /(?<!docs\/)\bARCHITECTURE\.md\b/, problem: 'cites ARCHITECTURE.md outside docs/' },
  // why: inside docs/ a bare `test-servers.md` is the relative name of docs/test-servers.md.
  { pattern: /(?<!docs\/)\btest-servers\.md\b/, problem: 'cites test-servers.md outside docs/ (write docs/test-servers.md)', allowedIn: (file) => file.startsWith('docs/') },
  { pattern: /\bD-\d+\b/, problem: 'cites a 0.7 defect id D-nn (use F-n, B-n or U-n)' },
  { pattern: /\bR-\d+\b/, problem: 'cites a 0.7 race id R-n (use the F-n of relay-format.md)' },
];

/**
 * A citation of a project doc by name, followed by its ids (`relay-format.md P4.8–P4.10, F-4`): a
 * list of ids with the letters of any doc, so that an id of another doc is caught, while other
 * names (`I1`, `D1`, `U2` rule names are not all ids) end the list.
 */
const CITATION = /\b(relay-format|sync-rules|configuration|test-servers)\.md\b((?:(?:\s*,\s*|\s+and\s+|\s+or\s+|\s+to\s+|\s*[–/]\s*|\s+)(?:[PRCS]\d+(?:\.\d+)*|[FBU]-\d+)\b)+)/g;
const CITED_ID = /[PRCS]\d+(?:\.\d+)*|[FBU]-\d+/g;

/** The section ids (from headings) and defect ids (from `- **F-n ...` items) a Markdown document defines. */
function docIds(markdown: string): Set<string> {
  const ids = new Set<string>();
  for (const line of markdown.split('\n')) {
    const heading = /^#{1,4}\s+([A-Z]\d+(?:\.\d+)*)\s/.exec(line);
    if (heading?.[1]) ids.add(heading[1]);
    const defect = /^\s*[-*]\s+\*\*([A-Z]-\d+)\b/.exec(line);
    if (defect?.[1]) ids.add(defect[1]);
  }
  return ids;
}

/** The problems of one file's text: outside documents cited, and project-doc ids that do not exist. */
function checkText(file: string, text: string, ids: DocIds): Finding[] {
  const findings: Finding[] = [];
  text.split('\n').forEach((line, index) => {
    const at = (problem: string): void => { findings.push({ file, line: index + 1, problem, text: line.trim() }); };
    for (const rule of FOREIGN) {
      if (rule.pattern.test(line) && !rule.allowedIn?.(file)) at(rule.problem);
    }
    for (const match of line.matchAll(CITATION)) {
      const doc = `${match[1]}.md` as CitableDoc;
      const letters = CITABLE[doc];
      const known = ids.get(doc) ?? new Set<string>();
      for (const [id] of (match[2] ?? '').matchAll(CITED_ID)) {
        const isDefect = id.includes('-');
        const letter = isDefect ? letters.defect : letters.section;
        if (id[0] !== letter) at(`${id} is not an id of ${doc} (its ${isDefect ? 'defects' : 'sections'} are ${letter ?? 'none'}…)`);
        else if (!known.has(id)) at(`${doc} has no ${isDefect ? 'defect' : 'section'} ${id}`);
      }
    }
  });
  return findings;
}

/** The repository root: the nearest folder above this file that holds package.json and docs/. */
function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!(existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'docs')))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error('repository root not found above the test file');
    dir = parent;
  }
  return dir;
}

/** Folders scanned whole (minus the 0.7 fixtures), and the file kinds read at the root and elsewhere. */
const SCANNED_FOLDERS = ['src', 'test', 'bench', 'scripts', 'docs', 'examples', '.ci'];
const SKIPPED = new Set(['node_modules', 'dist', '.git', join('test', 'fixtures')]);
// why: this file spells out the forbidden forms (its patterns and planted examples).
const SELF = join('test', 'docs', 'citations.test.ts');

/** Every file the check reads, as paths relative to `root` (with `/`). */
function scannedFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string, all: boolean): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      const rel = relative(root, path);
      if (SKIPPED.has(name) || SKIPPED.has(rel) || rel === SELF) continue;
      if (statSync(path).isDirectory()) {
        if (all || SCANNED_FOLDERS.includes(rel)) walk(path, true);
      } else if (all ? !/\.(js\.map|tsbuildinfo)$/.test(name) : /\.(md|js|mjs|ts)$/.test(name)) {
        out.push(rel.split(sep).join('/'));
      }
    }
  };
  walk(root, false);
  return out.sort();
}

/** The ids of the project docs as they are in the repository. */
function repositoryIds(root: string): DocIds {
  return new Map(Object.keys(CITABLE).map((doc) => [doc, docIds(readFileSync(join(root, 'docs', doc), 'utf8'))]));
}

const SAMPLE_IDS: DocIds = new Map([
  ['relay-format.md', docIds('## P4 Index protocol\n### P4.8 Push transaction\n### P4.10 Consumption\n- **F-4 A shared pusher...** text\n')],
  ['sync-rules.md', docIds('## R5 Index\n### R5.4 Upload phase\n## R6 Puller count\n- **B-1 Both copies lost.**\n')],
  ['configuration.md', docIds('## C5 Relay address\n- **U-16 The wizard.**\n')],
  ['test-servers.md', docIds('## S1 Common ground\n')],
]);

/** The problems the check finds in one line of a file at `file`. */
function problems(line: string, file = 'src/x.ts'): string[] {
  return checkText(file, line, SAMPLE_IDS).map((f) => f.problem);
}

describe('citations', () => {
  it('reads section ids from headings and defect ids from defect items', () => {
    assert.deepEqual([...docIds('# Title\n## P4 Index\n### P4.8 Push transaction\n#### P4.8.1 Deep\nP9 in text\n- **F-4 Title.** text\n- F-5 not bold\n')],
      ['P4', 'P4.8', 'P4.8.1', 'F-4']);
  });

  it('refuses every citation of a document outside the repository', () => {
    const planted = [
      '// the write order (relay-protocol §4.8)',
      ' * following the INI dialect (cli-and-config.md 3.1).',
      '// Recipe: /work/shared/test-servers.md',
      '/** the wizard (4.5, §4.6) */',
      '// see ARCHITECTURE.md, "Dependency direction"',
      '// why: AWS_CA_BUNDLE breaks rclone (test-servers.md S1).',
      '// with D-45 fixed',
      '// why: R-5: the check is repeated under the lock.',
    ];
    for (const line of planted) assert.notDeepEqual(problems(line), [], line);
    assert.match(problems('// (D-3/D-4 fixed)').join(), /D-nn/);
  });

  it('accepts the project docs, docs/test-servers.md, docs/architecture.md and other numbers', () => {
    for (const line of [
      '// the write order (relay-format.md P4.8–P4.10, sync-rules.md R5.4 and configuration.md C5)',
      '// a shared pusher never consumes its own update (relay-format.md F-4; sync-rules.md B-1, R6)',
      '// why: AWS_CA_BUNDLE breaks rclone (docs/test-servers.md S1).',
      '// layers as docs/architecture.md and docs/ARCHITECTURE.md say',
      '// missing parent collection (RFC 4918 section 9.7.1), rclone 1.60, UTF-8, SHA-512, PID-1',
    ]) assert.deepEqual(problems(line), [], line);
    assert.deepEqual(problems('Recipes: [test-servers.md S1](test-servers.md#s1-common-ground)', 'docs/backends.md'), []);
  });

  it('refuses a project-doc id that has no heading or defect, or belongs to another doc', () => {
    assert.deepEqual(problems('// (relay-format.md P4.9)'), ['relay-format.md has no section P4.9']);
    assert.deepEqual(problems('// (sync-rules.md R5.4, R7)'), ['sync-rules.md has no section R7']);
    assert.deepEqual(problems('// (relay-format.md P4.8 and P4.99)'), ['relay-format.md has no section P4.99']);
    assert.deepEqual(problems('// (configuration.md U-99)'), ['configuration.md has no defect U-99']);
    assert.deepEqual(problems('// (docs/test-servers.md S9)'), ['test-servers.md has no section S9']);
    assert.deepEqual(problems('// (relay-format.md R5.4)'), ['R5.4 is not an id of relay-format.md (its sections are P…)']);
    assert.deepEqual(problems('// (sync-rules.md F-4)'), ['F-4 is not an id of sync-rules.md (its defects are B…)']);
  });

  it('the repository cites only its own documents, by ids that exist', () => {
    const root = repositoryRoot();
    const ids = repositoryIds(root);
    const files = scannedFiles(root);
    assert.ok(files.includes('README.md') && files.includes('src/cli/escale.ts') && files.includes('docs/relay-format.md'), 'the scan reaches the files it must check');
    const findings = files.flatMap((file) => checkText(file, readFileSync(join(root, file), 'utf8'), ids));
    assert.deepEqual(findings.map((f) => `${f.file}:${f.line}: ${f.problem}: ${f.text}`), []);
  });
});
