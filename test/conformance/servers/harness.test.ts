// Self-test of the server harness helpers, with node itself as the "server".
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { MemoryBackend } from '../../../src/relay/backends/memory/memory-backend.js';
import { findBinary, freePort, reportSkip, serverHarness, startProcess, waitForHttp, waitForPort } from './harness.js';

const node = process.execPath;

describe('server harness', () => {
  it('starts a server, waits for its port and URL, stops it with SIGTERM', async () => {
    const port = await freePort();
    const proc = startProcess(node, ['-e', `require('http').createServer((q, s) => { s.statusCode = 401; s.end(); }).listen(${port}, '127.0.0.1')`]);
    try {
      await waitForPort(port, { process: proc, timeoutMs: 10_000 });
      await waitForHttp(`http://127.0.0.1:${port}/`, { process: proc });
    } finally {
      await proc.stop();
    }
    assert.equal(proc.exitStatus(), 'SIGTERM');
  });

  it('kills a process that ignores SIGTERM after the grace time', async () => {
    const proc = startProcess(node, ['-e', "process.on('SIGTERM', () => {}); console.log('up'); setInterval(() => {}, 1000)"]);
    while (!proc.output().includes('up')) await new Promise((r) => setTimeout(r, 20));
    const started = Date.now();
    await proc.stop(200);
    assert.equal(proc.exitStatus(), 'SIGKILL');
    assert.ok(Date.now() - started < 5000);
  });

  it('reports a server that dies before it is ready, with its output', async () => {
    const port = await freePort();
    const proc = startProcess(node, ['-e', "console.error('500 OOPS: bad config'); process.exit(2)"]);
    await assert.rejects(waitForPort(port, { process: proc }), /exited \(2\)[\s\S]*OOPS/);
  });

  it('skips a suite whose binary is missing, loudly, and fails it under CI=true', async () => {
    const harness = serverHarness('nothing', { binaries: ['no-such-server-binary'], start: async () => new MemoryBackend() });
    const result = await harness.start();
    assert.ok('skip' in result && /no-such-server-binary is not installed/.test(result.skip));
    const saved = process.env.CI;
    try {
      process.env.CI = 'true';
      assert.throws(() => reportSkip('suite', 'why'), /cannot run under CI=true: why/);
      delete process.env.CI;
      reportSkip('harness self-test', 'this SKIP line is expected');
    } finally {
      if (saved === undefined) delete process.env.CI;
      else process.env.CI = saved;
    }
  });

  it('gives a scratch folder, a certificate and runs clean-up at stop', async (t) => {
    if (!findBinary('openssl')) {
      t.skip('openssl missing');
      return;
    }
    let scratch = '';
    let deferred = false;
    const harness = serverHarness('self', {
      async start(env) {
        scratch = env.dir;
        const cert = await env.certificate();
        assert.ok(existsSync(cert.certFile) && existsSync(cert.keyFile) && existsSync(cert.combinedFile));
        await env.writeFile('server.conf', 'x = 1\n');
        env.defer(() => {
          deferred = true;
        });
        return new MemoryBackend();
      },
    });
    const started = await harness.start();
    assert.ok(!('skip' in started));
    assert.ok(existsSync(`${scratch}/server.conf`));
    await started.stop();
    assert.ok(deferred);
    assert.ok(!existsSync(scratch));
  });
});
