/**
 * `escale --import FILE` (`-i FILE`, configuration.md C11): adds the sections of FILE to the
 * configuration file. Unlike escale 0.7 (configuration.md U-2) it honours `-c`, creates the missing folder, and
 * refuses clashes with a clear message instead of a traceback. Nothing is written on refusal.
 */
import { resolve } from 'node:path';
import { ConfigDocument } from '../../config/edit.js';
import { checkSections, defaultConfigCandidates, homeFolder, nodeFileProbe } from '../../config/load.js';
import { parseConfigText } from '../../config/parse.js';
import { inaccessible } from '../../config/resolve.js';
import { expandHome } from '../../config/values.js';
import { EscaleError } from '../../core/errors.js';
import type { Output } from '../output.js';
import { readConfigFile, writeConfigFile } from './apply.js';

/**
 * The destination text once the sections of `imported` are added (the raw text, comments
 * included), and the names added. Throws EscaleError('Config') when FILE is unreadable as a
 * configuration, has no section or global settings, or names a section the destination has.
 */
export function mergeImport(destination: string, imported: string, names: { file: string; destination: string }): { text: string; sections: string[] } {
  const parsed = parseConfigText(imported);
  if (parsed.problems.length > 0) {
    throw new EscaleError('Config', `corrupted file '${names.file}':\n${parsed.problems.map((p) => `line ${p.line}: ${p.message}`).join('\n')}`, { file: names.file });
  }
  const sections = parsed.sections.map((s) => s.name);
  if (sections.length === 0) throw new EscaleError('Config', `not any section in '${names.file}'`, { file: names.file });
  if (destination === '') return { text: imported, sections };
  if (parsed.globals.entries.size > 0) {
    throw new EscaleError(
      'Config',
      `'${names.file}' has global settings (before its first section): importing them would change every client of '${names.destination}'; move them into the sections of '${names.file}', or merge the two files by hand`,
      { file: names.file },
    );
  }
  const problems = ConfigDocument.problems(destination);
  if (problems.length > 0) {
    throw new EscaleError('Config', `cannot import into '${names.destination}', which has syntax errors:\n${problems.map((p) => `line ${p.line}: ${p.message}`).join('\n')}`, { file: names.destination });
  }
  const doc = ConfigDocument.parse(destination);
  const clashes = sections.filter((s) => doc.hasSection(s));
  if (clashes.length > 0) {
    const many = clashes.length > 1;
    throw new EscaleError(
      'Config',
      `section${many ? 's' : ''} ${clashes.map((s) => `[${s}]`).join(', ')} of '${names.file}' already exist${many ? '' : 's'} in '${names.destination}'; nothing was imported: rename ${many ? 'them' : 'it'} in '${names.file}', or edit ${many ? 'them' : 'it'} with 'escale -i'`,
      { file: names.file },
    );
  }
  doc.appendText(imported);
  return { text: doc.toString(), sections };
}

/** The file `--import` writes to: `-c FILE`, else the first existing default file, else ~/.config/escale/escale.conf. */
export function importDestination(explicit: string | undefined, home = homeFolder(), cwd = process.cwd()): string {
  if (explicit !== undefined) return resolve(cwd, expandHome(explicit, home));
  const candidates = defaultConfigCandidates(home);
  // why: never create /etc/escale.conf implicitly (configuration.md C10, U-1).
  return candidates.find((c) => nodeFileProbe.kind(c) === 'file') ?? (candidates[0] as string);
}

/** Runs `--import FILE` into `destination`; returns the exit code. */
export async function runImport(file: string, destination: string, output: Output): Promise<number> {
  const path = resolve(process.cwd(), expandHome(file, homeFolder()));
  const kind = nodeFileProbe.kind(path);
  if (kind === 'inaccessible') throw new EscaleError('Config', inaccessible(nodeFileProbe, path), { file: path });
  if (kind !== 'file') throw new EscaleError('Config', `cannot find file '${file}'`, { file: path });
  const imported = await readConfigFile(path);
  const current = await readConfigFile(destination);
  const merged = mergeImport(current.text, imported.text, { file, destination });
  try {
    checkSections(merged.text, destination, merged.sections);
  } catch (error) {
    // why: relative paths of secret files are read from the folder of the configuration file, which changes here.
    throw new EscaleError('Config', `nothing was imported: read from '${destination}', the sections of '${file}' would not load:\n${(error as Error).message}`, { file: path });
  }
  await writeConfigFile(destination, merged.text, current.prior);
  output.out(`Imported ${merged.sections.map((s) => `[${s}]`).join(', ')} from '${file}' into '${destination}'.\n`);
  return 0;
}
