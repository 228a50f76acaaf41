import type { Backend } from '../../backend.js';
import type { BackendDescriptor, RelayTarget } from '../descriptor.js';
import { MemoryBackend } from './memory-backend.js';

/** Registry entry for the in-memory backend: every open gives a new, empty relay (tests, dry runs). */
export const memoryDescriptor: BackendDescriptor = {
  name: 'memory',
  aliases: [],
  describe: 'an empty relay in memory, lost on exit (tests)',
  available: true,
  async open(target: RelayTarget): Promise<Backend> {
    return new MemoryBackend(target.host || target.directory || 'memory');
  },
};
