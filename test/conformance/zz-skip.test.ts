import { describeBackend } from './backend-suite.js';
import { serverHarness } from './servers/harness.js';
import { MemoryBackend } from '../../src/relay/backends/memory/memory-backend.js';
describeBackend('ghost', serverHarness('ghost', { binaries: ['ghost-ftpd'], start: async () => new MemoryBackend() }));
