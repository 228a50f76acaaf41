/**
 * `escalectl genkey FILE [--algorithm fernet|blowfish]`: creates a new key file (mode 0600, never
 * overwriting one) and tells the user how to configure and share it (issue 5, relay-format.md P5.2).
 */
import { resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { EscaleError, hasCode } from '../../core/errors.js';
import { parseCipherAlgorithm } from '../../crypto/cipher.js';
import { generateKeyFile } from '../../local/key-file.js';
import type { CommandContext, CommandModule } from '../command-module.js';
import { EXIT } from '../output.js';

/** The algorithms a generated key file is meant for (the file format is the same for all). */
export const GENKEY_ALGORITHMS = ['fernet', 'blowfish', 'blowfish.cryptography', 'blowfish.blowfish'] as const;

/** Options of `escalectl genkey`. */
interface GenkeyOptions {
  algorithm: string;
}

/** Creates the key file `file` for `algorithm` and prints the configuration lines; returns the exit code. */
export async function runGenkey(file: string, algorithm: string, context: CommandContext): Promise<number> {
  const chosen = parseCipherAlgorithm(algorithm);
  if (chosen === null || !(GENKEY_ALGORITHMS as readonly string[]).includes(chosen)) {
    throw new EscaleError('Usage', `genkey: no key file is needed for encryption '${algorithm}'`, { hint: `use one of: ${GENKEY_ALGORITHMS.join(', ')}` });
  }
  // why: print the absolute path, so the configuration line works whatever the daemon's current folder is.
  const path = resolve(file);
  try {
    await generateKeyFile(path, chosen);
  } catch (error) {
    if (hasCode(error, 'AlreadyExists')) {
      throw new EscaleError('AlreadyExists', `'${path}' already exists; genkey never overwrites a key file (what was encrypted with it would become unreadable)`, {
        path,
        hint: 'choose another file name, or delete the old key file yourself if you are sure it is no longer used',
      });
    }
    if (hasCode(error, 'NotFound')) throw new EscaleError('NotFound', `cannot create '${path}': its folder does not exist`, { path, cause: error });
    throw error;
  }
  const { output } = context;
  output.out(`created the key file '${path}' (mode 0600, ${chosen})\n`);
  output.out('put these lines in each client section that uses it:\n');
  output.out(`  encryption = ${chosen}\n`);
  output.out(`  passphrase = ${path}\n`);
  output.out('every client of the relay needs an exact copy of this file: copy it over a safe channel (scp, a USB stick),\n');
  output.out('never by e-mail or chat, keep it readable by you only (chmod 600), and back it up: without it the relay cannot be read.\n');
  return EXIT.ok;
}

/** The `genkey` subcommand. */
export const genkeyCommand: CommandModule = {
  name: 'genkey',
  register(program: Command, context: () => CommandContext, setExitCode: (code: Promise<number>) => void): void {
    program
      .command('genkey')
      .description('create a new encryption key file (mode 0600) and print how to configure it')
      .argument('<file>', 'key file to create (must not exist)')
      .addOption(new Option('-a, --algorithm <name>', 'cipher the key is for').choices([...GENKEY_ALGORITHMS]).default('fernet'))
      .action((file: string, options: GenkeyOptions) => {
        setExitCode(runGenkey(file, options.algorithm, context()));
      });
  },
};
