/**
 * Reads the text of a configuration file into sections of raw key/value entries with line numbers,
 * following the INI dialect of the original (configuration.md C1). Pure: no I/O, no clock.
 *
 * Rules: `key = value` or `key: value` (first `=` or `:` splits); keys are case-insensitive and
 * trimmed; full-line `#`/`;` comments (possibly indented); no inline comments (`a = 1 # x` has the
 * value `1 # x`); a line indented deeper than its key continues the value (joined with a newline);
 * lines before the first `[section]` and any `[DEFAULT]` section are the global settings; duplicate
 * sections and duplicate keys within a section are errors. `%%` and `%(key)s` are handled by
 * `interpolate`, which the resolver calls in the context of each section.
 */

/** One `key = value` line (plus its continuation lines). */
export interface RawEntry {
  /** Lower-case key. */
  readonly key: string;
  /** The key as written. */
  readonly written: string;
  /** The value: trimmed, continuation lines joined with `\n`, not yet interpolated. */
  readonly value: string;
  /** 1-based line of the key. */
  readonly line: number;
}

/** A `[section]` block, or the global part (name `DEFAULT`). */
export interface RawSection {
  readonly name: string;
  /** Line of the `[name]` header (0 for the implicit global part). */
  readonly line: number;
  /** Entries by lower-case key, in file order. */
  readonly entries: Map<string, RawEntry>;
}

/** A syntax problem, located at one line. */
export interface ParseProblem {
  readonly line: number;
  readonly message: string;
}

/** The parsed file: globals, client sections in file order, and the syntax problems found. */
export interface ParsedConfig {
  readonly globals: RawSection;
  readonly sections: RawSection[];
  readonly problems: ParseProblem[];
}

/** The name of the global section, as in Python's configparser. */
export const DEFAULT_SECTION = 'DEFAULT';

interface OpenEntry {
  key: string;
  written: string;
  line: number;
  indent: number;
  parts: string[];
  blanks: number;
  target: RawSection;
}

const HEADER = /^\[(.*)\]\s*(?:[#;].*)?$/;

/** Splits configuration text into sections and entries; never throws, problems are returned. */
export function parseConfigText(text: string): ParsedConfig {
  const lines = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  const globals: RawSection = { name: DEFAULT_SECTION, line: 0, entries: new Map() };
  const sections: RawSection[] = [];
  const problems: ParseProblem[] = [];
  const sectionLines = new Map<string, number>();
  let current: RawSection = globals;
  let open: OpenEntry | undefined;

  const close = (): void => {
    if (open === undefined) return;
    const value = open.parts.join('\n').trimEnd();
    open.target.entries.set(open.key, { key: open.key, written: open.written, value, line: open.line });
    open = undefined;
  };

  lines.forEach((raw, index) => {
    const lineNo = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '') {
      if (open !== undefined) open.blanks++;
      return;
    }
    // why: configparser skips indented comment lines without ending a multi-line value.
    if (trimmed.startsWith('#') || trimmed.startsWith(';')) return;
    const indent = raw.length - raw.trimStart().length;
    if (open !== undefined && indent > open.indent) {
      for (; open.blanks > 0; open.blanks--) open.parts.push('');
      open.parts.push(trimmed);
      return;
    }
    close();

    if (trimmed.startsWith('[')) {
      const match = HEADER.exec(trimmed);
      const name = match?.[1]?.trim() ?? '';
      if (match === null) {
        problems.push({ line: lineNo, message: `malformed section header '${trimmed}'; expected '[name]'` });
      } else if (name === '') {
        problems.push({ line: lineNo, message: 'empty section name' });
      }
      if (match === null || name === '') {
        // why: keep reading keys into a throw-away section so that one bad header is one error.
        current = { name: '', line: lineNo, entries: new Map() };
        return;
      }
      if (name === DEFAULT_SECTION) {
        current = globals;
        return;
      }
      const first = sectionLines.get(name);
      if (first !== undefined) {
        problems.push({ line: lineNo, message: `duplicate section [${name}] (first defined on line ${first})` });
        current = { name, line: lineNo, entries: new Map() };
        return;
      }
      sectionLines.set(name, lineNo);
      current = { name, line: lineNo, entries: new Map() };
      sections.push(current);
      return;
    }

    const delimiter = trimmed.search(/[=:]/);
    if (delimiter < 0) {
      problems.push({ line: lineNo, message: `expected 'key = value' or '[section]', found '${trimmed}'` });
      return;
    }
    const written = trimmed.slice(0, delimiter).trim();
    if (written === '') {
      problems.push({ line: lineNo, message: `missing key before '${trimmed[delimiter]}'` });
      return;
    }
    const key = written.toLowerCase().replace(/\s+/g, ' ');
    const previous = current.entries.get(key);
    if (previous !== undefined) {
      const where = current === globals ? 'the global settings' : `section [${current.name}]`;
      problems.push({ line: lineNo, message: `duplicate key '${written}' in ${where} (first set on line ${previous.line})` });
      return;
    }
    open = { key, written, line: lineNo, indent, parts: [trimmed.slice(delimiter + 1).trim()], blanks: 0, target: current };
  });
  close();
  return { globals, sections, problems };
}

/** Result of interpolating one value: the text, or why it failed. */
export type InterpolationResult = { ok: true; value: string } | { ok: false; message: string };

const MAX_DEPTH = 10;

/** `%(key)s` at `lastIndex` (sticky: matching in place keeps long values linear, not quadratic). */
const REFERENCE = /%\(([^)]*)\)s/y;

/** Longest value accepted once its `%(key)s` references are replaced. */
export const MAX_INTERPOLATED_LENGTH = 65536;

/**
 * Expands `%%` to `%` and `%(key)s` to the (recursively expanded) value of `key` given by `lookup`
 * (lower-cased name), as Python's BasicInterpolation does. Any other `%` is an error.
 */
export function interpolate(value: string, lookup: (key: string) => string | undefined, depth = 0): InterpolationResult {
  if (!value.includes('%')) return { ok: true, value };
  const tooLong = (): InterpolationResult => ({ ok: false, message: `the value grows past ${MAX_INTERPOLATED_LENGTH} characters once its '%(...)s' references are replaced` });
  if (depth > MAX_DEPTH) return { ok: false, message: `'%(...)s' references nest deeper than ${MAX_DEPTH} levels (circular reference?)` };
  let out = '';
  let i = 0;
  while (i < value.length) {
    const at = value.indexOf('%', i);
    if (at < 0) {
      out += value.slice(i);
      break;
    }
    out += value.slice(i, at);
    const next = value[at + 1];
    if (next === '%') {
      out += '%';
      i = at + 2;
      continue;
    }
    if (next === '(') {
      REFERENCE.lastIndex = at;
      const match = REFERENCE.exec(value);
      if (match === null) {
        return { ok: false, message: `bad reference '${value.slice(at, at + 20)}'; write '%(key)s', or '%%' for a literal '%'` };
      }
      const name = (match[1] ?? '').trim().toLowerCase().replace(/\s+/g, ' ');
      const target = lookup(name);
      if (target === undefined) return { ok: false, message: `'${match[0]}' refers to key '${name}', which is not set; write '%%' for a literal '%'` };
      const inner = interpolate(target, lookup, depth + 1);
      if (!inner.ok) return inner;
      out += inner.value;
      // why: references repeated at every level grow exponentially (a 'billion laughs' file).
      if (out.length > MAX_INTERPOLATED_LENGTH) return tooLong();
      i = at + match[0].length;
      continue;
    }
    return { ok: false, message: `a literal '%' must be written '%%' (or start a reference '%(key)s')` };
  }
  return { ok: true, value: out };
}
