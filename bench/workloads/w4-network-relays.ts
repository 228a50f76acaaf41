// W4: W1 with fewer files through network relays on loopback: WebDAV (`rclone serve webdav`) and
// SFTP (OpenSSH sshd), with the index protocol and the placeholder protocol, against `rclone copy`
// to the same server and back; also relay requests (backend calls, retries included) per file.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { openServerEnv } from '../../test/conformance/servers/harness.js';
import { RCLONE_BINARIES, startRcloneWebdav } from '../../test/conformance/servers/rclone-webdav.js';
import { SSHD_BINARIES, startSshd } from '../../test/conformance/servers/sshd.js';
import { betweenVariants, byScale, type BenchContext } from '../context.js';
import { measure, type ProcessFigures } from '../measure.js';
import { checked, rowOf, unavailableRow, wallRatio, type Figure, type Row, type WorkloadResult } from '../report.js';
import { countFiles, makeTree } from '../trees.js';
import { escaleTransfer } from './w1-many-files.js';

/** Size of each W4 file. */
const FILE_BYTES = 4096;

interface Server {
  readonly name: string;
  /**
   * Starts the server; returns the section keys naming the relay, the rclone.conf section of the
   * same account (for the baseline), and how to stop it; or a reason to skip.
   */
  start(): Promise<{ keys: Record<string, string | number>; rclone: string; stop(): Promise<void> } | { skip: string }>;
}

/** Runs a command and returns its standard output (for `rclone obscure`). */
function output(command: string, args: string[]): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    // why: AWS_CA_BUNDLE in this environment breaks rclone's http client set-up (docs/test-servers.md S1).
    const env = { ...process.env };
    delete env['AWS_CA_BUNDLE'];
    execFile(command, args, { env }, (error, stdout) => (error ? reject(error) : resolvePromise(stdout.trim())));
  });
}

const SERVERS: readonly Server[] = [
  {
    name: 'webdav',
    async start() {
      const opened = await openServerEnv('bench-webdav', { binaries: RCLONE_BINARIES });
      if ('skip' in opened) return opened;
      const server = await startRcloneWebdav(opened.env, false);
      const rclone = ['type = webdav', `url = http://127.0.0.1:${server.port}/`, 'vendor = other', `user = ${server.user}`, `pass = ${await output('rclone', ['obscure', server.password])}`];
      return {
        keys: { protocol: 'http', 'relay address': '127.0.0.1', port: server.port, 'relay directory': 'relay', user: server.user, password: server.password },
        rclone: rclone.join('\n'),
        stop: opened.stop,
      };
    },
  },
  {
    name: 'sftp',
    async start() {
      const opened = await openServerEnv('bench-sftp', { binaries: SSHD_BINARIES });
      if ('skip' in opened) return opened;
      const server = await startSshd(opened.env);
      // why: the server runs internal-sftp only: no shell, so rclone must not try remote commands.
      const rclone = ['type = sftp', 'host = 127.0.0.1', `port = ${server.port}`, `user = ${server.user}`, `key_file = ${server.keyFile}`, `known_hosts_file = ${server.knownHosts}`, 'shell_type = none', 'disable_hashcheck = true'];
      return {
        keys: { protocol: 'sftp', 'relay address': '127.0.0.1', port: server.port, 'relay directory': 'relay', user: server.user, 'private key': server.keyFile, 'known hosts': server.knownHosts },
        rclone: rclone.join('\n'),
        stop: opened.stop,
      };
    },
  },
];

/** W4 targets of issue 13: wall time against rclone copy to the same server, and requests per file. */
const TARGETS = {
  placeholder: { ratio: 5, requestsPerFile: 11 },
  index: { ratio: 1.5, requestsPerFile: 1.2 },
} as const;

/** Runs W4 on each server: escale with each protocol, and `rclone copy` there and back as the baseline. */
export async function runW4(context: BenchContext): Promise<WorkloadResult> {
  const count = byScale(context, { smoke: 20, quick: 200, full: 1000 });
  const source = join(context.scratch, 'source');
  context.log(`W4: writing ${count} files of ${FILE_BYTES} B`);
  const bytes = await makeTree(source, count, FILE_BYTES);
  const rows: Row[] = [];
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const server of SERVERS) {
    let started;
    try {
      started = await server.start();
    } catch (error) {
      for (const variant of ['index', 'placeholder', 'rclone copy ×2'] as const) rows.push(unavailableRow(`${server.name}: ${variant}`, `server did not start: ${String(error).slice(0, 200)}`));
      continue;
    }
    if ('skip' in started) {
      for (const variant of ['index', 'placeholder', 'rclone copy ×2'] as const) rows.push(unavailableRow(`${server.name}: ${variant}`, started.skip));
      continue;
    }
    try {
      const escaleRows: Partial<Record<'index' | 'placeholder', Row>> = {};
      for (const variant of ['index', 'placeholder'] as const) {
        context.log(`W4: ${server.name} ${variant}`);
        await betweenVariants(context);
        try {
          // why: one server for every variant, so each gets its own relay folder.
          const keys = { ...started.keys, 'relay directory': `relay-${variant}` };
          const row = await escaleTransfer(context, variant, source, count, bytes, keys, notes, `escale ${variant} ${server.name}`);
          escaleRows[variant] = { ...row, label: `${server.name}: escale ${variant}` };
          rows.push(escaleRows[variant]);
        } catch (error) {
          const text = String(error);
          rows.push(unavailableRow(`${server.name}: escale ${variant}`, /not available|Unsupported|unknown protocol|unknown key|planned/i.test(text) ? `not in this build yet (${text.slice(0, 160)})` : `failed: ${text.slice(0, 300)}`));
        }
      }
      context.log(`W4: ${server.name} rclone copy`);
      await betweenVariants(context);
      const baseline = await rcloneBaseline(context, server.name, started.rclone, source, count, bytes);
      rows.push(baseline);
      for (const variant of ['placeholder', 'index'] as const) {
        const row = escaleRows[variant];
        const target = TARGETS[variant];
        figures.push(row ? wallRatio(`W4 ${server.name} ${variant} / rclone copy`, row, baseline, { op: '<=', limit: target.ratio }) : checked('ratio', `W4 ${server.name} ${variant} / rclone copy`, null, { op: '<=', limit: target.ratio }));
        figures.push(checked('value', `W4 ${server.name} ${variant} relay requests per file`, row?.relay ? row.relay.requests / count : null, { op: '<=', limit: target.requestsPerFile }));
      }
    } finally {
      await started.stop();
    }
  }
  notes.push('rclone copy: source → server, then server → a local folder, through the same account as escale (about 2 requests per file)');
  return { id: 'W4', title: `${count} files × 4 KiB, alice → bob through WebDAV and SFTP servers on loopback`, rows, figures, notes };
}

/** `rclone copy` to a folder of the server and back to a local folder, measured; checks that every file came back. */
async function rcloneBaseline(context: BenchContext, server: string, section: string, source: string, count: number, bytes: number): Promise<Row> {
  const config = join(context.scratch, `rclone-${server}.conf`);
  await writeFile(config, `[bench]\n${section}\n`, { mode: 0o600 });
  const back = join(context.scratch, `rclone-${server}-bob`);
  const copy = (from: string, to: string): Promise<ProcessFigures> => measure('rclone copy', 'rclone', ['copy', from, to, '--config', config], { scratch: context.scratch, env: { AWS_CA_BUNDLE: undefined } });
  const there = await copy(source, 'bench:rclone-relay');
  const home = await copy('bench:rclone-relay', back);
  for (const step of [there, home]) if (step.code !== 0) throw new Error(`rclone copy (${server}) failed: ${step.stderr.trim().slice(-300)}`);
  const got = await countFiles(back);
  if (got !== count) throw new Error(`rclone copy (${server}): ${got} of ${count} files came back`);
  return rowOf(`${server}: rclone copy ×2`, [there, home], { baseline: true, bytesMoved: 2 * bytes });
}
