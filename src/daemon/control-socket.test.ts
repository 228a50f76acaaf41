import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createConnection } from 'node:net';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../core/log.js';
import { globalSecrets } from '../core/redact.js';
import { controlSocketPath, openControlSocket, requestStatus } from './control-socket.js';
import { DaemonStatus } from './status-model.js';

async function rawRequest(path: string, line: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path, () => socket.write(line));
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => (text += d));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
}

test('the socket sits beside the PID file', () => {
  assert.equal(controlSocketPath('/home/u/.config/escale/escale.pid'), '/home/u/.config/escale/escale.sock');
  assert.equal(controlSocketPath('/var/run/escale'), '/var/run/escale.sock');
});

test('the daemon answers its status on a 0600 socket, scrubbed of secrets; close removes the socket', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-sock-'));
  const path = join(dir, 'escale.sock');
  const secret = 'hunter2-control-socket';
  globalSecrets.add(secret);
  let closeLater: { close(): Promise<void> } | undefined;
  try {
    const status = new DaemonStatus();
    const alice = status.add('alice', 'alice');
    alice.addError({ code: 'PermissionDenied', message: `login refused for ftp://me:${secret}@host` });
    const server = await openControlSocket(path, { status: () => status.toJSON(join(dir, 'escale.pid'), 4242) }, silentLogger);
    closeLater = server;
    assert.equal(statSync(path).mode & 0o777, 0o600, 'only the daemon user may connect');
    const answer = (await requestStatus(path)) as ReturnType<DaemonStatus['toJSON']>;
    assert.equal(answer.version, 1);
    assert.equal(answer.pid, 4242);
    assert.equal(answer.clients[0]?.section, 'alice');
    assert.equal(answer.clients[0]?.state, 'starting');
    assert.equal(JSON.stringify(answer).includes(secret), false, 'no secret leaves through the socket');
    assert.match(answer.clients[0]?.recentErrors[0]?.message ?? '', /\*\*\*/);
    assert.match(await rawRequest(path, 'junk\n'), /"ok":false,"error":"the request is not JSON"/);
    assert.match(await rawRequest(path, '{"command":"explode"}\n'), /unknown command \\"explode\\"/);
    await server.close();
    assert.equal(existsSync(path), false);
    await assert.rejects(requestStatus(path, 500), { name: 'EscaleError', code: 'Unavailable' });
  } finally {
    await closeLater?.close();
    globalSecrets.clear();
    await rm(dir, { recursive: true, force: true });
  }
});

test('a stale socket of a killed daemon is replaced; another kind of file in the way is refused', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'escale-sock-'));
  try {
    const path = join(dir, 'x.sock');
    // why: a SIGKILLed daemon leaves its socket file behind, bound by nobody (a process that binds and exits does the same).
    execFileSync('python3', ['-c', 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', path]);
    assert.equal(statSync(path).isSocket(), true);
    const again = await openControlSocket(path, { status: () => ({ again: true }) }, silentLogger);
    try {
      assert.deepEqual(await requestStatus(path), { again: true });
    } finally {
      await again.close();
    }
    const file = join(dir, 'file.sock');
    await writeFile(file, 'not a socket');
    await assert.rejects(openControlSocket(file, { status: () => ({}) }, silentLogger), { code: 'AlreadyExists' });
    await assert.rejects(openControlSocket(join(dir, 'x'.repeat(120)), { status: () => ({}) }, silentLogger), { code: 'Unsupported' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
