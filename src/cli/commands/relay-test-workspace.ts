/**
 * Test support of the relay maintenance commands (migrate, rebase): a workspace with two `file`
 * relays in a temp folder, relay listings (in-process runs: `runIn` of command-test-kit.ts).
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Every file below `root` (hidden ones included) with its content; lock files left out. */
export function relayFiles(root: string): Map<string, string> {
  const out = new Map<string, string>();
  if (!existsSync(root)) return out;
  for (const name of (readdirSync(root, { recursive: true }) as string[]).sort()) {
    if (name.endsWith('.lock') || !statSync(join(root, name)).isFile()) continue;
    out.set(name, readFileSync(join(root, name)).toString('base64'));
  }
  return out;
}

/** A workspace: alice's files, two empty relays, escale.conf ([alice] on relay1, [mirror] on relay2) and bob.conf (bob on relay2). */
export function workspace(dir: string, keys: string): { config: string; bobConfig: string; relay1: string; relay2: string; text: string; folder(name: string): string } {
  const folder = (name: string): string => join(dir, name);
  for (const name of ['alice', 'bob', 'relay1', 'relay2']) mkdirSync(folder(name), { recursive: true });
  writeFileSync(join(dir, 'alice', 'a.txt'), 'alpha');
  mkdirSync(join(dir, 'alice', 'd'));
  writeFileSync(join(dir, 'alice', 'd', 'b.txt'), 'bravo');
  const globals = `# escale test configuration\ncache dir = ${folder('cache')}\nlog file = ${folder('escale.log')}\n`;
  const text = `${globals}\n[alice]\n# where alice syncs\nclient name = alice\nlocal path = ${folder('alice')}\nprotocol = file\nrelay path = ${folder('relay1')}\n${keys}\n[mirror]\nclient name = alice\nlocal path = ${folder('alice')}\nprotocol = file\nrelay path = ${folder('relay2')}\n${keys}`;
  const config = join(dir, 'escale.conf');
  writeFileSync(config, text);
  const bobConfig = join(dir, 'bob.conf');
  writeFileSync(bobConfig, `${globals}\n[bob]\nclient name = bob\nlocal path = ${folder('bob')}\nprotocol = file\nrelay path = ${folder('relay2')}\n${keys}`);
  return { config, bobConfig, relay1: folder('relay1'), relay2: folder('relay2'), text, folder };
}
