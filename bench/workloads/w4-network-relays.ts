// W4: W1 with fewer files through network relays on loopback: WebDAV (`rclone serve webdav`) and
// SFTP (OpenSSH sshd), with the index protocol and the placeholder protocol. The figure that
// matters is relay requests (backend calls, retries included) per file, both rounds together.
import { join } from 'node:path';
import { openServerEnv } from '../../test/conformance/servers/harness.js';
import { RCLONE_BINARIES, startRcloneWebdav } from '../../test/conformance/servers/rclone-webdav.js';
import { SSHD_BINARIES, startSshd } from '../../test/conformance/servers/sshd.js';
import { byScale, type BenchContext } from '../context.js';
import { checked, unavailableRow, type Figure, type Row, type WorkloadResult } from '../report.js';
import { makeTree } from '../trees.js';
import { escaleTransfer } from './w1-many-files.js';

/** Size of each W4 file. */
const FILE_BYTES = 4096;

interface Server {
  readonly name: string;
  /** Starts the server; returns the section keys naming the relay and how to stop it, or a reason to skip. */
  start(): Promise<{ keys: Record<string, string | number>; stop(): Promise<void> } | { skip: string }>;
}

const SERVERS: readonly Server[] = [
  {
    name: 'webdav',
    async start() {
      const opened = await openServerEnv('bench-webdav', { binaries: RCLONE_BINARIES });
      if ('skip' in opened) return opened;
      const server = await startRcloneWebdav(opened.env, false);
      return {
        keys: { protocol: 'http', 'relay address': '127.0.0.1', port: server.port, 'relay directory': 'relay', user: server.user, password: server.password },
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
      return {
        keys: { protocol: 'sftp', 'relay address': '127.0.0.1', port: server.port, 'relay directory': 'relay', user: server.user, 'private key': server.keyFile, 'known hosts': server.knownHosts },
        stop: opened.stop,
      };
    },
  },
];

/** Runs W4 on each server and protocol variant. */
export async function runW4(context: BenchContext): Promise<WorkloadResult> {
  const count = byScale(context, { smoke: 20, quick: 200, full: 1000 });
  const source = join(context.scratch, 'source');
  context.log(`W4: writing ${count} files of ${FILE_BYTES} B`);
  const bytes = await makeTree(source, count, FILE_BYTES);
  const rows: Row[] = [];
  const figures: Figure[] = [];
  const notes: string[] = [];
  for (const server of SERVERS) {
    for (const variant of ['index', 'placeholder'] as const) {
      const label = `${server.name} ${variant}`;
      context.log(`W4: ${label}`);
      let started;
      try {
        started = await server.start();
      } catch (error) {
        rows.push(unavailableRow(label, `server did not start: ${String(error).slice(0, 200)}`));
        continue;
      }
      if ('skip' in started) {
        rows.push(unavailableRow(label, started.skip));
        continue;
      }
      try {
        const row = await escaleTransfer(context, variant, source, count, bytes, started.keys, notes);
        const named = { ...row, label: `${server.name}: ${row.label}` };
        rows.push(named);
        const perFile = row.relay ? row.relay.requests / count : null;
        figures.push(checked('value', `W4 ${label} relay requests per file`, perFile, variant === 'index' ? { op: '<=', limit: 1.2 } : undefined));
      } catch (error) {
        const text = String(error);
        rows.push(unavailableRow(label, /not available|Unsupported|unknown protocol|unknown key|planned/i.test(text) ? `not in this build yet (${text.slice(0, 160)})` : `failed: ${text.slice(0, 300)}`));
      } finally {
        await started.stop();
      }
    }
  }
  return { id: 'W4', title: `${count} files × 4 KiB, alice → bob through WebDAV and SFTP servers on loopback`, rows, figures, notes };
}
