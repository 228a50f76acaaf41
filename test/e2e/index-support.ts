// Shared helpers of the index-relay end-to-end tests.
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CHANGE_MARKER } from '../../src/relay/protocol/change-marker.js';
import { configText, runEscale, workspace, type RunResult } from './harness.js';

/** A workspace with one `file` relay and one folder per client section. */
export interface IndexSetup {
  readonly dir: string;
  readonly relay: string;
  readonly config: string;
  folder(name: string): string;
  /** Rewrites the configuration with these sections (merged over the base keys). */
  configure(sections: Record<string, Record<string, string | number>>, globals?: Record<string, string | number>): Promise<void>;
  /** Runs one `escale --once` round of a section; asserts exit 0 unless `allowFailure`. */
  once(section: string, options?: { allowFailure?: boolean; extra?: string[] }): Promise<RunResult>;
  cleanup(): Promise<void>;
}

/** Makes a workspace; every section gets `client name`, `local path`, `protocol = file`, `relay path`. */
export async function indexSetup(sections: Record<string, Record<string, string | number>>, globals: Record<string, string | number> = {}): Promise<IndexSetup> {
  const ws = await workspace('escale-index-');
  const relay = join(ws.dir, 'relay');
  await mkdir(relay);
  const config = join(ws.dir, 'escale.conf');
  const setup: IndexSetup = {
    dir: ws.dir,
    relay,
    config,
    folder: (name) => join(ws.dir, name),
    async configure(next, moreGlobals = {}) {
      const full: Record<string, Record<string, string | number>> = {};
      for (const [name, keys] of Object.entries(next)) {
        await mkdir(join(ws.dir, name), { recursive: true });
        full[name] = { 'client name': name, 'local path': join(ws.dir, name), protocol: 'file', 'relay path': relay, ...keys };
      }
      await writeFile(config, configText({ 'cache dir': join(ws.dir, 'cache'), 'log file': join(ws.dir, 'escale.log'), refresh: 2, ...globals, ...moreGlobals }, full));
    },
    async once(section, options = {}) {
      const result = await runEscale(['--once', ...(options.extra ?? []), '-c', config, '--section', section]);
      if (!options.allowFailure) assert.equal(result.code, 0, `escale --once [${section}] failed:\n${result.stderr}\n${result.stdout}`);
      return result;
    },
    cleanup: ws.cleanup,
  };
  await setup.configure(sections);
  return setup;
}

/**
 * The names in a relay folder, sorted, without the change marker (a file of ours that 0.7 ignores,
 * touched by every push that changed the relay): what a relay's records are compared by.
 */
export async function relayNames(relay: string): Promise<string[]> {
  return (await readdir(relay)).filter((name) => name !== CHANGE_MARKER).sort();
}
