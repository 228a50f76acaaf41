// The conformance suite against the file backend on a fresh temporary folder.
import { openFileBackend } from '../../src/relay/backends/file/file-backend.js';
import { describeBackend } from './backend-suite.js';
import { serverHarness } from './servers/harness.js';

describeBackend('file', serverHarness('file', {
  async start(env) {
    return { backend: await openFileBackend({ root: env.dir }), localRoot: env.dir };
  },
}));

// why: on a network or FUSE mount the backend makes its calls through the thread pool; same contract.
describeBackend('file (thread-pool calls)', serverHarness('file', {
  async start(env) {
    return { backend: await openFileBackend({ root: env.dir, synchronous: false }), localRoot: env.dir };
  },
}));
