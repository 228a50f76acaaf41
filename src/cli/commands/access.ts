/**
 * `escalectl access [-r SECTION] <file> [<modifiers>...]` and `escalectl access [-r SECTION] --list`:
 * shows or sets the access modifiers of a local file (sync-rules.md R7, R7.1; configuration.md C13), in the same store
 * file the daemon reads (`am<sha224(section)>` in the section's data folder).
 */
import { existsSync, realpathSync, statSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../../config/load.js';
import type { ClientConfig } from '../../config/schema.js';
import { EscaleError } from '../../core/errors.js';
import { relPath, relPathProblem, type RelPath } from '../../core/relpath.js';
import { AccessStore, formatFlags, parseModifiers, type AccessChange, type AccessFlags } from '../../local/access.js';
import { persistentFile } from '../../daemon/client.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT } from '../output.js';
import { refuseWhileRunning, selectSections } from './maintenance.js';

/** Options of `escalectl access`. */
export interface AccessOptions {
  repository?: string;
  list?: boolean;
  json?: boolean;
}

/** One file of one section, as the command resolved it. */
interface Candidate {
  readonly client: ClientConfig;
  readonly path: RelPath;
  /** Whether the file exists (as a regular file) under the section's local root. */
  readonly onDisk: boolean;
}

/** One answer of the command: a file's flags in one section. */
interface Answer {
  readonly section: string;
  readonly path: string;
  readonly flags: AccessFlags;
}

function jsonOf(answer: Answer): Record<string, unknown> {
  const { flags } = answer;
  return { section: answer.section, path: answer.path, read: flags.read ?? null, write: flags.write ?? null, modifiers: formatFlags(flags) };
}

/** The path of `absolute` inside `root` with '/' separators, or undefined when it is outside. */
function inside(root: string, absolute: string): string | undefined {
  const attempt = (r: string, a: string): string | undefined => {
    const rel = relative(r, a);
    if (rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return undefined;
    return rel.split(sep).join('/');
  };
  const direct = attempt(resolve(root), absolute);
  if (direct !== undefined) return direct;
  // why: the root or the file may be reached through a symbolic link (/tmp -> /private/tmp).
  try {
    return attempt(realpathSync(root), realpathSync(absolute));
  } catch {
    return undefined;
  }
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Where `resource` lies in each section (configuration.md C13): a path that exists from the current folder, or an
 * absolute one, is made relative to each section's root (sections not containing it are left out);
 * any other relative path is taken as relative to each root.
 */
function candidatesFor(resource: string, clients: ClientConfig[], cwd: string): Candidate[] {
  const fromCwd = resolve(cwd, resource);
  const absolute = isAbsolute(resource) ? resource : existsSync(fromCwd) ? fromCwd : undefined;
  const out: Candidate[] = [];
  for (const client of clients) {
    let text: string | undefined;
    if (absolute !== undefined) text = inside(client.localPath, absolute);
    else {
      text = resource.split(sep).join('/').replace(/^(\.\/)+/, '');
      const problem = relPathProblem(text);
      if (problem !== undefined || text === '') throw new EscaleError('Usage', `'${resource}' is not a file path inside a local repository${problem ? ` (it ${problem})` : ''}`);
    }
    if (text === undefined) continue;
    out.push({ client, path: relPath(text), onDisk: isFile(join(client.localPath, text)) });
  }
  return out;
}

/** Opens the section's store only if its file exists (reading never creates it). */
async function openExisting(client: ClientConfig): Promise<AccessStore | undefined> {
  const file = persistentFile(client, 'am');
  return existsSync(file) ? AccessStore.open(file) : undefined;
}

async function getFlags(resource: string, candidates: Candidate[]): Promise<Answer> {
  const answers: Answer[] = [];
  for (const candidate of candidates) {
    const store = await openExisting(candidate.client);
    try {
      const known = store?.has(candidate.path) ?? false;
      // why: 0.7 answered only for sections whose database existed (sync-rules.md B-17 made that "never"); a file
      // on disk without any record is answered too, as unset (`r?w?`), which is what the daemon applies.
      if (known || candidate.onDisk) answers.push({ section: candidate.client.section, path: candidate.path, flags: store?.get(candidate.path) ?? {} });
    } finally {
      await store?.close();
    }
  }
  if (answers.length > 1) {
    throw new EscaleError('Usage', `'${resource}' found in multiple repositories (${answers.map((a) => `[${a.section}]`).join(', ')})`, { hint: 'choose one with -r SECTION' });
  }
  const [answer] = answers;
  if (answer === undefined) throw new EscaleError('NotFound', `cannot find file '${resource}'`);
  return answer;
}

async function setFlags(resource: string, candidates: Candidate[], change: AccessChange): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const candidate of candidates) {
    const existing = await openExisting(candidate.client);
    // why: as in 0.7, a section takes the change only if the file is there or already has a record.
    if (!candidate.onDisk && !(existing?.has(candidate.path) ?? false)) {
      await existing?.close();
      continue;
    }
    const store = existing ?? (await AccessStore.open(persistentFile(candidate.client, 'am')));
    try {
      answers.push({ section: candidate.client.section, path: candidate.path, flags: store.set(candidate.path, change) });
    } finally {
      await store.close();
    }
  }
  if (answers.length === 0) throw new EscaleError('NotFound', `cannot find file '${resource}'`);
  return answers;
}

async function listFlags(clients: ClientConfig[]): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (const client of clients) {
    const store = await openExisting(client);
    if (store === undefined) continue;
    try {
      for (const [path, flags] of store.entries()) answers.push({ section: client.section, path, flags });
    } finally {
      await store.close();
    }
  }
  return answers;
}

/** Runs `escalectl access`; returns the exit code (errors are thrown as EscaleErrors). */
export async function runAccess(resource: string | undefined, modifiers: string[], options: AccessOptions, context: CommandContext, cwd = process.cwd()): Promise<number> {
  const { output } = context;
  if (options.list) {
    if (resource !== undefined) throw new EscaleError('Usage', '--list shows every record and takes no file name');
  } else if (resource === undefined) {
    throw new EscaleError('Usage', "missing file name (or use --list)", { hint: 'escalectl access [-r SECTION] FILE [r+|r-|r?][w+|w-|w?]' });
  }
  // why: parse the modifiers before touching anything, so that a typo changes nothing.
  const change = modifiers.length > 0 ? parseModifiers(modifiers) : undefined;
  const config = await loadConfig(context.configFile);
  const clients = selectSections(config, options.repository);

  if (options.list || resource === undefined) {
    const answers = await listFlags(clients);
    if (options.json) output.out(`${JSON.stringify(answers.map(jsonOf))}\n`);
    else for (const a of answers) output.out(`[${a.section}] ${formatFlags(a.flags)}  ${a.path}\n`);
    return EXIT.ok;
  }
  const candidates = candidatesFor(resource, clients, cwd);
  if (change === undefined) {
    const answer = await getFlags(resource, candidates);
    output.out(options.json ? `${JSON.stringify(jsonOf(answer))}\n` : `${formatFlags(answer.flags)}\n`);
    return EXIT.ok;
  }
  // why: the running daemon holds the same store open and would not see (or could overwrite) the change.
  await refuseWhileRunning(config, 'change the modifiers');
  const answers = await setFlags(resource, candidates, change);
  // why: 0.7 prints nothing on success; --json reports what was stored, for scripts.
  if (options.json) output.out(`${JSON.stringify(answers.map(jsonOf))}\n`);
  return EXIT.ok;
}

/** The `access` subcommand. */
export const accessCommand: CommandModule = {
  name: 'access',
  register(program: Command, context: () => CommandContext, setExitCode: (code: Promise<number>) => void): void {
    program
      .command('access')
      .description('show or set the access modifiers of a local file (r- never upload, w- never overwrite)')
      .argument('[file]', 'local file (relative to the current folder or to the local repository)')
      .argument('[modifiers...]', "r+ r- r? w+ w- w? (combined, e.g. 'r-w+'); none: show the current ones")
      .option('-r, --repository <section>', 'only this client section')
      .option('--list', 'show every file that has modifiers')
      .option('--json', 'print JSON')
      .action((file: string | undefined, modifiers: string[], options: AccessOptions) => {
        setExitCode(runAccess(file, modifiers, options, context()));
      });
  },
};
