/**
 * Helpers for the tests of `escale` and `escalectl` subcommands: an in-process runner that captures
 * what a command prints, and a temporary folder with a configuration file whose sections use `file` relays.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { escalectlMain } from '../escalectl.js';
import { exitCodeFor, type Output } from '../output.js';

/** An Output that keeps what a command prints. */
export interface CapturedOutput extends Output {
  stdout: string;
  stderr: string;
}

/** A fresh capturing Output. */
export function capture(): CapturedOutput {
  const o: CapturedOutput = { stdout: '', stderr: '', out: (t) => void (o.stdout += t), err: (t) => void (o.stderr += t) };
  return o;
}

/** What one in-process run of a command gave. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command main (`escaleMain`, `escalectlMain`) in-process; an error it throws becomes its exit code and message, as `runMain` reports them. */
export async function runIn(main: (argv: string[], output: Output) => Promise<number>, argv: string[]): Promise<RunResult> {
  const output = capture();
  try {
    return { code: await main(argv, output), stdout: output.stdout, stderr: output.stderr };
  } catch (error) {
    return { code: exitCodeFor(error), stdout: output.stdout, stderr: `${output.stderr}${(error as Error).message}\n` };
  }
}

/** A temporary workspace: `<dir>/escale.conf`, local folders and relays below `<dir>`. */
export interface Workspace {
  readonly dir: string;
  readonly configFile: string;
  /** Runs `escalectl -c <config> <args>` in-process; errors become their exit code and message, as `runMain` reports them. */
  run(args: string[]): Promise<RunResult>;
  /** The resolved configuration of one section. */
  client(section: string): Promise<ClientConfig>;
  remove(): void;
}

/**
 * Creates a workspace whose configuration has the given sections: each maps to its `key = value`
 * lines (local path and relay path are relative to the workspace and made absolute here).
 */
export function workspace(prefix: string, sections: Record<string, Record<string, string>>): Workspace {
  const dir = mkdtempSync(join(tmpdir(), `escale-${prefix}-`));
  const configFile = join(dir, 'escale.conf');
  const blocks = Object.entries(sections).map(([name, keys]) => {
    const local = join(dir, keys['local path'] ?? name);
    const relay = join(dir, keys['relay path'] ?? 'relay');
    mkdirSync(local, { recursive: true });
    mkdirSync(relay, { recursive: true });
    const lines = Object.entries({ 'client name': name, protocol: 'file', ...keys, 'local path': local, 'relay path': relay }).map(([k, v]) => `${k} = ${v}`);
    return `[${name}]\n${lines.join('\n')}\n`;
  });
  writeFileSync(configFile, `cache dir = ${join(dir, 'cache')}\nlog file = ${join(dir, 'escale.log')}\n\n${blocks.join('\n')}`);
  return {
    dir,
    configFile,
    run: (args) => runIn(escalectlMain, ['-c', configFile, ...args]),
    async client(section) {
      const found = (await loadConfig(configFile)).clients.find((c) => c.section === section);
      if (found === undefined) throw new Error(`no section ${section}`);
      return found;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
