// The conformance suite against the reference in-memory backend, also through the wrappers.
import { MemoryBackend } from '../../src/relay/backends/memory/memory-backend.js';
import { withLimit } from '../../src/relay/wrap/limit.js';
import { withRetry } from '../../src/relay/wrap/retry.js';
import { withFaults } from '../../src/relay/wrap/faulty.js';
import { describeBackend } from './backend-suite.js';

describeBackend('memory', {
  async start() {
    const backend = new MemoryBackend('conformance');
    return { backend, stop: () => backend.close() };
  },
});

describeBackend('memory through retry(limit(faulty))', {
  async start() {
    // why: every 7th stat fails once with Unavailable; the retry wrapper must hide it completely.
    const faulty = withFaults(new MemoryBackend('wrapped'), (call) => (call.method === 'stat' && call.nth % 7 === 0 ? { error: 'Unavailable' } : undefined));
    const backend = withRetry(withLimit(faulty, 4), { baseDelayMs: 1, maxDelayMs: 2 });
    return { backend, stop: () => backend.close() };
  },
});
