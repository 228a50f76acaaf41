// The conformance suite against the file backend on a fresh temporary folder.
import { openFileBackend } from '../../src/relay/backends/file/file-backend.js';
import { describeBackend } from './backend-suite.js';
import { serverHarness } from './servers/harness.js';

describeBackend('file', serverHarness('file', {
  async start(env) {
    return { backend: await openFileBackend({ root: env.dir }), localRoot: env.dir };
  },
}));
