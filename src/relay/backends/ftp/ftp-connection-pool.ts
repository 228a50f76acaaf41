import type { Client } from 'basic-ftp';
import { EscaleError, throwIfAborted } from '../../../core/errors.js';

/** A pooled connection: the client plus whether it served a call before (it may have gone stale). */
export interface PooledClient {
  readonly client: Client;
  readonly reused: boolean;
}

/**
 * Hands out logged-in FTP clients, one per concurrent call, at most `max` at once. Closed clients
 * (dropped control connection, timeout, abort) are thrown away on release; the next call opens a
 * fresh one, which is how the backend reconnects.
 */
export class FtpConnectionPool {
  private readonly idle: Client[] = [];
  private readonly waiters: Array<() => void> = [];
  private open = 0;
  private closed = false;

  constructor(private readonly max: number, private readonly connect: () => Promise<Client>) {}

  /** Waits for a free slot, then returns an idle client or a newly connected one. */
  async acquire(signal?: AbortSignal): Promise<PooledClient> {
    for (;;) {
      if (this.closed) throw new EscaleError('Internal', 'the FTP backend is closed');
      throwIfAborted(signal);
      const idle = this.idle.pop();
      if (idle !== undefined) {
        if (!idle.closed) return { client: idle, reused: true };
        this.open--;
        continue;
      }
      if (this.open < this.max) {
        this.open++;
        try {
          return { client: await this.connect(), reused: false };
        } catch (error) {
          this.open--;
          this.wake();
          throw error;
        }
      }
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => {
          const index = this.waiters.indexOf(wake);
          if (index >= 0) this.waiters.splice(index, 1);
          reject(new EscaleError('Aborted', 'operation aborted', { cause: signal?.reason }));
        };
        const wake = (): void => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        };
        this.waiters.push(wake);
        signal?.addEventListener('abort', onAbort, { once: true });
      });
    }
  }

  /** Returns a client; a closed one (or any after `close()`) is dropped and its slot freed. */
  release(client: Client): void {
    if (client.closed || this.closed) {
      if (!client.closed) client.close();
      this.open--;
    } else {
      this.idle.push(client);
    }
    this.wake();
  }

  /** Closes idle clients now and busy ones when they come back. */
  close(): void {
    this.closed = true;
    for (const client of this.idle.splice(0)) {
      client.close();
      this.open--;
    }
    for (const wake of this.waiters.splice(0)) wake();
  }

  private wake(): void {
    this.waiters.shift()?.();
  }
}
