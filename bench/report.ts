// The result model of a benchmark run, and its text form: one table per workload, then one
// `ratio` line per comparison with its target.
import type { ProcessFigures, RelayFigures } from './measure.js';

/** One measured variant of a workload (an escale configuration or a baseline). */
export interface Row {
  readonly label: string;
  readonly baseline: boolean;
  /** Why the variant could not run (e.g. index relays not wired yet); figures are then absent. */
  readonly unavailable?: string;
  readonly wallMs?: number;
  /** CPU time (user + system) summed over the processes. */
  readonly cpuMs?: number;
  /** The largest peak RSS among the processes. */
  readonly maxRssKiB?: number;
  readonly processes?: ReadonlyArray<{ name: string; wallMs: number; cpuMs: number; maxRssKiB: number }>;
  readonly relay?: RelayFigures;
  /** Bytes of user data the variant moved (file bytes, both hops). */
  readonly bytesMoved?: number;
}

/** A comparison or a checked figure, with its target when the issue sets one. */
export interface Figure {
  /** `ratio`: a quotient of two rows; `value`: a figure checked against a bound. */
  readonly kind: 'ratio' | 'value';
  readonly label: string;
  /** Null when a side was unavailable. */
  readonly value: number | null;
  readonly unit?: string;
  readonly target?: { readonly op: '<=' | '>='; readonly limit: number };
  /** Whether the target was met (absent without target or value). */
  readonly met?: boolean;
}

/** The outcome of one workload. */
export interface WorkloadResult {
  readonly id: string;
  readonly title: string;
  readonly rows: readonly Row[];
  readonly figures: readonly Figure[];
  readonly notes: readonly string[];
}

/** A row made from the processes of a variant, run one after the other. */
export function rowOf(label: string, processes: readonly ProcessFigures[], extra: { baseline?: boolean; bytesMoved?: number } = {}): Row {
  let relay: RelayFigures | undefined;
  for (const p of processes) {
    if (p.relay === undefined) continue;
    relay = relay === undefined ? p.relay : {
      requests: relay.requests + p.relay.requests,
      calls: mergeCalls(relay.calls, p.relay.calls),
      bytesRead: relay.bytesRead + p.relay.bytesRead,
      bytesWritten: relay.bytesWritten + p.relay.bytesWritten,
    };
  }
  return {
    label,
    baseline: extra.baseline ?? false,
    wallMs: sum(processes.map((p) => p.wallMs)),
    cpuMs: sum(processes.map((p) => p.cpuMs)),
    maxRssKiB: Math.max(...processes.map((p) => p.maxRssKiB)),
    processes: processes.map((p) => ({ name: p.name, wallMs: round(p.wallMs), cpuMs: round(p.cpuMs), maxRssKiB: p.maxRssKiB })),
    ...(relay ? { relay } : {}),
    ...(extra.bytesMoved === undefined ? {} : { bytesMoved: extra.bytesMoved }),
  };
}

/** A row for a variant that could not run. */
export function unavailableRow(label: string, reason: string): Row {
  return { label, baseline: false, unavailable: reason };
}

/** `numerator / denominator` of two rows' wall times, as a figure (null when a side is missing). */
export function wallRatio(label: string, numerator: Row, denominator: Row, target?: Figure['target']): Figure {
  const value = numerator.wallMs !== undefined && denominator.wallMs !== undefined && denominator.wallMs > 0 ? numerator.wallMs / denominator.wallMs : null;
  return checked('ratio', label, value, target);
}

/** A figure checked against an optional target. */
export function checked(kind: Figure['kind'], label: string, value: number | null, target?: Figure['target'], unit?: string): Figure {
  const met = target === undefined || value === null ? undefined : target.op === '<=' ? value <= target.limit : value >= target.limit;
  return { kind, label, value, ...(unit === undefined ? {} : { unit }), ...(target === undefined ? {} : { target }), ...(met === undefined ? {} : { met }) };
}

const MIB = 1024 * 1024;

/** The text table of one workload, followed by its ratio and target lines. */
export function formatWorkload(result: WorkloadResult): string {
  const header = ['variant', 'wall s', 'CPU s', 'peak RSS MiB', 'requests', 'relay MiB r/w', 'data MiB'];
  const lines: string[][] = [header];
  for (const row of result.rows) {
    const label = row.baseline ? `${row.label} (baseline)` : row.label;
    if (row.unavailable !== undefined) {
      lines.push([label, `not available: ${row.unavailable}`]);
      continue;
    }
    lines.push([
      label,
      fixed((row.wallMs ?? Number.NaN) / 1000, 2),
      fixed((row.cpuMs ?? Number.NaN) / 1000, 2),
      fixed((row.maxRssKiB ?? Number.NaN) / 1024, 0),
      row.relay ? String(row.relay.requests) : '-',
      row.relay ? `${fixed(row.relay.bytesRead / MIB, 1)}/${fixed(row.relay.bytesWritten / MIB, 1)}` : '-',
      row.bytesMoved === undefined ? '-' : fixed(row.bytesMoved / MIB, 1),
    ]);
  }
  const widths = header.map((_, i) => Math.max(...lines.filter((l) => l.length === header.length).map((l) => (l[i] ?? '').length)));
  const text = lines.map((l) => (l.length === header.length ? l.map((cell, i) => (i === 0 ? cell.padEnd(widths[i] ?? 0) : cell.padStart(widths[i] ?? 0))).join('  ') : `${(l[0] ?? '').padEnd(widths[0] ?? 0)}  ${l[1] ?? ''}`));
  const out = [`${result.id}  ${result.title}`, ...text.map((t) => `  ${t}`)];
  for (const figure of result.figures) out.push(`  ${formatFigure(figure)}`);
  for (const note of result.notes) out.push(`  note: ${note}`);
  return `${out.join('\n')}\n`;
}

/** One line: `ratio <label>: 1.23 (target <= 1.5: met)`. */
export function formatFigure(figure: Figure): string {
  const value = figure.value === null ? 'n/a' : `${fixed(figure.value, figure.kind === 'ratio' ? 2 : 2)}${figure.unit ? ` ${figure.unit}` : ''}`;
  const target = figure.target === undefined ? '' : ` (target ${figure.target.op === '<=' ? '≤' : '≥'} ${figure.target.limit}${figure.unit ? ` ${figure.unit}` : ''}: ${figure.met === undefined ? 'not measured' : figure.met ? 'met' : 'NOT met'})`;
  return `${figure.kind === 'ratio' ? 'ratio' : 'check'} ${figure.label}: ${value}${target}`;
}

function fixed(value: number, digits: number): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '?';
}

function sum(values: number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

function round(value: number): number {
  return Math.round(value);
}

function mergeCalls(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}
