/**
 * A round-trip editor of configuration text (configuration.md C1), preserving comments and
 * ordering when editing. Only the lines of the settings that change are touched: comments, blank
 * lines, key spellings and the order of everything else stay as written. Pure: text in, text out.
 */
import { DEFAULT_SECTION, interpolate, parseConfigText, type ParseProblem } from './parse.js';

/** One setting as written in a section: the key as spelled in the file and its value. */
export interface WrittenSetting {
  /** Lower-case key (one of the aliases asked for). */
  readonly key: string;
  /** The value with `%%` read back as `%` (references `%(key)s` are expanded when possible). */
  readonly value: string;
}

/** Writes a value so that the reader gives it back unchanged: `%` must be doubled (configuration.md C1). */
function escapeValue(value: string): string {
  if (/[\r\n]/.test(value)) throw new Error('a configuration value cannot span several lines');
  return value.replace(/%/g, '%%');
}

interface EntrySpan {
  key: string;
  /** 0-based index of the key line. */
  first: number;
  /** 0-based index of the last continuation line (= first for one-line values). */
  last: number;
  value: string;
}

interface SectionSpan {
  name: string;
  /** 0-based index of the `[name]` line; -1 for the global part. */
  header: number;
  /** 0-based index of the last line that belongs to the section (before the next header). */
  end: number;
  entries: EntrySpan[];
}

const isComment = (line: string): boolean => /^\s*[#;]/.test(line);
const isBlank = (line: string): boolean => line.trim() === '';
const indentOf = (line: string): number => line.length - line.trimStart().length;

/** A configuration file being edited; every change keeps the rest of the text as it was. */
export class ConfigDocument {
  private lines: string[];
  private readonly newline: string;

  private constructor(text: string) {
    this.newline = text.includes('\r\n') ? '\r\n' : '\n';
    this.lines = text === '' ? [] : text.replace(/\r?\n$/, '').split(/\r?\n/);
  }

  /** Opens text for editing; throws when it has syntax problems (the wizard must not guess). */
  static parse(text: string): ConfigDocument {
    const problems = ConfigDocument.problems(text);
    if (problems.length > 0) throw new Error(problems.map((p) => `line ${p.line}: ${p.message}`).join('\n'));
    return new ConfigDocument(text);
  }

  /** The syntax problems of `text` (empty when it can be edited). */
  static problems(text: string): ParseProblem[] {
    return parseConfigText(text).problems;
  }

  /** The edited text (ends with a newline unless empty). */
  toString(): string {
    return this.lines.length === 0 ? '' : this.lines.join(this.newline) + this.newline;
  }

  /** Names of the client sections, in file order. */
  sectionNames(): string[] {
    return this.spans()
      .filter((s) => s.header >= 0 && s.name !== DEFAULT_SECTION)
      .map((s) => s.name);
  }

  hasSection(name: string): boolean {
    return this.sectionNames().includes(name);
  }

  /** The first of `keys` (priority order) set in the section itself, not inherited from the globals. */
  get(section: string, keys: readonly string[]): WrittenSetting | undefined {
    const span = this.section(section);
    if (span === undefined) return undefined;
    for (const key of keys) {
      const entry = span.entries.find((e) => e.key === key);
      if (entry === undefined) continue;
      const lookup = (k: string): string | undefined => span.entries.find((e) => e.key === k)?.value ?? this.globalValue(k);
      const read = interpolate(entry.value, lookup);
      return { key, value: read.ok ? read.value : entry.value };
    }
    return undefined;
  }

  /** The first of `keys` set in the global part (what every section inherits). */
  getGlobal(keys: readonly string[]): WrittenSetting | undefined {
    for (const key of keys) {
      const value = this.globalValue(key);
      if (value === undefined) continue;
      const read = interpolate(value, (k) => this.globalValue(k));
      return { key, value: read.ok ? read.value : value };
    }
    return undefined;
  }

  /**
   * Sets one setting of a section: the value of the first alias present is replaced in place (its
   * spelling kept) and the other aliases are removed, since they would be shadowed; with no alias
   * present, `keys[0]` is added after the section's last setting. The section must exist.
   */
  set(section: string, keys: readonly string[], value: string): void {
    const span = this.requireSection(section);
    const present = keys.map((k) => span.entries.find((e) => e.key === k)).filter((e): e is EntrySpan => e !== undefined);
    const [kept, ...others] = present;
    const escaped = escapeValue(value);
    if (kept === undefined) {
      const after = span.entries.length === 0 ? span.header : Math.max(...span.entries.map((e) => e.last));
      this.lines.splice(after + 1, 0, `${keys[0]} = ${escaped}`);
      return;
    }
    const line = this.lines[kept.first] ?? '';
    const delimiter = line.search(/[=:]/);
    // why: the spelling and delimiter of the existing line are kept, only the value changes.
    const replacement = `${line.slice(0, delimiter + 1)} ${escaped}`;
    this.removeEntries(others);
    const fresh = this.requireSection(section).entries.find((e) => e.key === kept.key) as EntrySpan;
    this.lines.splice(fresh.first, fresh.last - fresh.first + 1, replacement);
  }

  /** Removes every one of `keys` from a section (nothing happens for absent keys). */
  remove(section: string, keys: readonly string[]): void {
    const span = this.section(section);
    if (span === undefined) return;
    this.removeEntries(span.entries.filter((e) => keys.includes(e.key)));
  }

  /** Appends a new section with the given settings at the end of the file. */
  addSection(name: string, settings: ReadonlyArray<readonly [string, string]>): void {
    if (this.hasSection(name)) throw new Error(`section [${name}] already exists`);
    if (this.lines.length > 0 && !isBlank(this.lines[this.lines.length - 1] ?? '')) this.lines.push('');
    this.lines.push(`[${name}]`, ...settings.map(([k, v]) => `${k} = ${escapeValue(v)}`));
  }

  /**
   * Replaces the settings of an existing section with the given ones (the section keeps its place;
   * its comments go, since the section is rebuilt from scratch); adds it when absent.
   */
  replaceSection(name: string, settings: ReadonlyArray<readonly [string, string]>): void {
    const span = this.section(name);
    if (span === undefined) {
      this.addSection(name, settings);
      return;
    }
    // why: blank and comment lines at the end of a section introduce the next one; they stay.
    let end = span.end;
    while (end > span.header && (isBlank(this.lines[end] ?? '') || isComment(this.lines[end] ?? ''))) end--;
    this.lines.splice(span.header + 1, end - span.header, ...settings.map(([k, v]) => `${k} = ${escapeValue(v)}`));
  }

  /** Appends raw text (another file's sections) after one blank line. */
  appendText(text: string): void {
    const added = new ConfigDocument(text).lines;
    if (this.lines.length > 0 && !isBlank(this.lines[this.lines.length - 1] ?? '')) this.lines.push('');
    this.lines.push(...added);
  }

  private globalValue(key: string): string | undefined {
    return this.spans()
      .filter((s) => s.name === DEFAULT_SECTION)
      .flatMap((s) => s.entries)
      .find((e) => e.key === key)?.value;
  }

  private section(name: string): SectionSpan | undefined {
    return this.spans().find((s) => s.name === name && s.header >= 0);
  }

  private requireSection(name: string): SectionSpan {
    const span = this.section(name);
    if (span === undefined) throw new Error(`no section [${name}]`);
    return span;
  }

  private removeEntries(entries: EntrySpan[]): void {
    for (const entry of [...entries].sort((a, b) => b.first - a.first)) this.lines.splice(entry.first, entry.last - entry.first + 1);
  }

  /** Locates sections and entries with the reader's own rules (parse.ts), line by line. */
  private spans(): SectionSpan[] {
    const parsed = parseConfigText(this.lines.join('\n'));
    const spans: SectionSpan[] = [{ name: DEFAULT_SECTION, header: -1, end: -1, entries: [] }];
    const byLine = new Map<number, { key: string; value: string }>();
    for (const section of [parsed.globals, ...parsed.sections]) {
      for (const entry of section.entries.values()) byLine.set(entry.line - 1, { key: entry.key, value: entry.value });
    }
    let current = spans[0] as SectionSpan;
    this.lines.forEach((line, index) => {
      const trimmed = line.trim();
      if (trimmed.startsWith('[') && !this.continues(current, index)) {
        const name = /^\[(.*)\]/.exec(trimmed)?.[1]?.trim() ?? '';
        current.end = index - 1;
        current = { name, header: index, end: index, entries: [] };
        spans.push(current);
        return;
      }
      const entry = byLine.get(index);
      if (entry !== undefined) {
        current.entries.push({ key: entry.key, first: index, last: index, value: entry.value });
        return;
      }
      const open = current.entries[current.entries.length - 1];
      if (open !== undefined && !isBlank(line) && !isComment(line) && this.continues(current, index)) open.last = index;
    });
    current.end = this.lines.length - 1;
    return spans;
  }

  /** Whether line `index` continues the last entry of the section (indented deeper than its key, as parse.ts reads it). */
  private continues(span: SectionSpan, index: number): boolean {
    const open = span.entries[span.entries.length - 1];
    return open !== undefined && indentOf(this.lines[index] ?? '') > indentOf(this.lines[open.first] ?? '');
  }
}
