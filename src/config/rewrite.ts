/**
 * Changes a few settings of one section of a configuration text while keeping everything else as
 * written: comments, blank lines, other sections, key order, key spellings and line ends. Pure: no
 * I/O. Used by `escalectl migrate` (configuration.md C13) to point a section at its new relay.
 */
import { EscaleError } from '../core/errors.js';
import { parseConfigText, type RawEntry, type RawSection } from './parse.js';
import { optionById } from './schema.js';

/** One setting to change: an option id of schema.ts and its new value (undefined: remove it from the section). */
export interface SettingChange {
  readonly option: string;
  readonly value: string | undefined;
}

/** The rewritten text and a human description of each line that changed. */
export interface RewriteResult {
  readonly text: string;
  /** `[section] key: old -> new` (or `added`/`removed`), in the order of `changes`; empty when nothing changed. */
  readonly described: string[];
}

/** Escapes a value for the INI reader, which expands `%(key)s` and `%%`. */
function escapeValue(value: string): string {
  return value.replaceAll('%', '%%');
}

const indentOf = (line: string): number => line.length - line.trimStart().length;
const isComment = (trimmed: string): boolean => trimmed.startsWith('#') || trimmed.startsWith(';');

/** Index (0-based) of the last line of an entry: its key line plus continuation lines (parse.ts rules). */
function lastLineOf(lines: readonly string[], entry: RawEntry): number {
  const keyIndex = entry.line - 1;
  const indent = indentOf(lines[keyIndex] ?? '');
  let last = keyIndex;
  for (let i = keyIndex + 1; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const trimmed = raw.trim();
    if (trimmed === '' || isComment(trimmed)) continue;
    if (indentOf(raw) <= indent) break;
    last = i;
  }
  return last;
}

/**
 * Sets or removes settings of `section` (configuration.md C1 syntax). A setting already written in
 * the section keeps its line and key spelling (the alias the reader uses, when several are
 * written), only its value changes (continuation lines go); a missing one is added after the
 * section's last setting under the option's first key name; a removed one loses its line(s).
 * Settings inherited from the global part are never changed there. Throws Config when the
 * section does not exist.
 */
export function rewriteSection(text: string, sectionName: string, changes: readonly SettingChange[]): RewriteResult {
  const bom = text.startsWith('\uFEFF') ? '\uFEFF' : '';
  const eol = /\r\n/.test(text) ? '\r\n' : '\n';
  const lines = text.slice(bom.length).split(/\r\n|\n|\r/);
  const parsed = parseConfigText(text);
  const section: RawSection | undefined = parsed.sections.find((s) => s.name === sectionName);
  if (section === undefined) throw new EscaleError('Config', `cannot find repository: ${sectionName}`);

  const replaced = new Map<number, string>();
  const removed = new Set<number>();
  const added: string[] = [];
  const described: string[] = [];
  let lastOfSection = section.line - 1;
  for (const entry of section.entries.values()) lastOfSection = Math.max(lastOfSection, lastLineOf(lines, entry));

  for (const change of changes) {
    const option = optionById(change.option);
    const key = option.keys.find((k) => section.entries.has(k));
    const entry = key === undefined ? undefined : section.entries.get(key);
    if (entry === undefined) {
      if (change.value === undefined) continue;
      added.push(`${option.keys[0]} = ${escapeValue(change.value)}`);
      described.push(`[${sectionName}] ${option.keys[0]}: added '${change.value}'`);
      continue;
    }
    const first = entry.line - 1;
    const last = lastLineOf(lines, entry);
    if (change.value === undefined) {
      for (let i = first; i <= last; i++) removed.add(i);
      described.push(`[${sectionName}] ${entry.written}: removed (was '${entry.value}')`);
      continue;
    }
    const escaped = escapeValue(change.value);
    if (entry.value === escaped) continue;
    const raw = lines[first] ?? '';
    // why: keep the indentation, the key as written and the spacing around '=' or ':'.
    const head = /^(\s*[^=:]*?\s*[=:][ \t]*)/.exec(raw)?.[1] ?? `${entry.written} = `;
    replaced.set(first, `${head}${escaped}`);
    for (let i = first + 1; i <= last; i++) {
      const trimmed = (lines[i] ?? '').trim();
      if (trimmed !== '' && !isComment(trimmed)) removed.add(i);
    }
    described.push(`[${sectionName}] ${entry.written}: '${entry.value}' -> '${change.value}'`);
  }

  const out: string[] = [];
  lines.forEach((line, index) => {
    if (!removed.has(index)) out.push(replaced.get(index) ?? line);
    if (index === lastOfSection) out.push(...added);
  });
  return { text: bom + out.join(eol), described };
}
