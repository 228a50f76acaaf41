import { Readable } from 'node:stream';
import { EscaleError, type ErrorCode } from '../../core/errors.js';
import type { RelayPath } from '../../core/relpath.js';
import type { Backend, Entry, Features, ListOptions, Op, PutOptions } from '../backend.js';
import type { RelayClock } from '../relay-clock.js';
import { abortableSleep } from './retry.js';

/** The Backend methods a fault can target. */
export type FaultMethod = 'list' | 'stat' | 'get' | 'put' | 'delete' | 'rename' | 'mkdir';

/** One call as the rule sees it. */
export interface FaultCall {
  readonly method: FaultMethod;
  readonly path: RelayPath;
  /** Target of a rename. */
  readonly to?: RelayPath;
  /** 1-based number of this call among the calls of the same method. */
  readonly nth: number;
  /** 1-based number of this call among all calls. */
  readonly index: number;
}

/** What to do to one call; every field is optional and they combine. */
export interface Fault {
  /** Wait this long before the call (abort-aware). */
  readonly delayMs?: number;
  /** Fail with this error (a code makes an EscaleError). */
  readonly error?: EscaleError | ErrorCode;
  /** `before` (default): fail without calling the backend; `after`: the call happens, then the error (a lost reply). */
  readonly when?: 'before' | 'after';
  /** get: the returned stream fails with Unavailable after this many bytes. */
  readonly cutAfterBytes?: number;
  /** put: the body handed to the backend fails with Unavailable after this many bytes. */
  readonly failBodyAfterBytes?: number;
}

/** Decides the fault for a call, or undefined to let it through. */
export type FaultRule = (call: FaultCall) => Fault | undefined;

/** A rule that fails the `nth` call of `method` with `code` (for example the 3rd put with Unavailable). */
export function failNth(method: FaultMethod, nth: number, code: ErrorCode = 'Unavailable', when: 'before' | 'after' = 'before'): FaultRule {
  return (call) => (call.method === method && call.nth === nth ? { error: code, when } : undefined);
}

/** A rule that fails the first `count` calls of `method` with `code`. */
export function failFirst(method: FaultMethod, count: number, code: ErrorCode = 'Unavailable'): FaultRule {
  return (call) => (call.method === method && call.nth <= count ? { error: code } : undefined);
}

/** A rule that cuts every get stream after `bytes` bytes. */
export function cutGets(bytes: number): FaultRule {
  return (call) => (call.method === 'get' ? { cutAfterBytes: bytes } : undefined);
}

/** A rule that applies the first rule giving a fault. */
export function anyOf(...rules: FaultRule[]): FaultRule {
  return (call) => {
    for (const rule of rules) {
      const fault = rule(call);
      if (fault) return fault;
    }
    return undefined;
  };
}

/** Wraps a backend so that chosen calls fail, wait or break mid-stream, as `rule` says (tests only). */
export function withFaults(backend: Backend, rule: FaultRule): FaultyBackend {
  return new FaultyBackend(backend, rule);
}

/** A Backend injecting the faults of a rule into the wrapped backend; it records every call. */
export class FaultyBackend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock: RelayClock;
  /** Every call seen, in order. */
  readonly calls: FaultCall[] = [];
  private readonly counts = new Map<FaultMethod, number>();

  constructor(
    private readonly inner: Backend,
    /** The rule; may be replaced between steps of a test. */
    public rule: FaultRule,
  ) {
    this.id = inner.id;
    this.features = inner.features;
    this.clock = inner.clock;
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    const fault = await this.enter('list', dir, undefined, options);
    yield* this.inner.list(dir, options);
    this.leave(fault);
  }

  async stat(path: RelayPath, options?: Op): Promise<Entry> {
    const fault = await this.enter('stat', path, undefined, options);
    const entry = await this.inner.stat(path, options);
    this.leave(fault);
    return entry;
  }

  async get(path: RelayPath, options?: Op): Promise<Readable> {
    const fault = await this.enter('get', path, undefined, options);
    const stream = await this.inner.get(path, options);
    this.leave(fault);
    return fault?.cutAfterBytes === undefined ? stream : cut(stream, fault.cutAfterBytes, path);
  }

  async put(path: RelayPath, body: Readable | Uint8Array, options?: PutOptions): Promise<Entry> {
    const fault = await this.enter('put', path, undefined, options);
    let sent = body;
    if (fault?.failBodyAfterBytes !== undefined) {
      const source = body instanceof Uint8Array ? Readable.from([Buffer.from(body)]) : body;
      sent = cut(source, fault.failBodyAfterBytes, path);
    }
    const entry = await this.inner.put(path, sent, options);
    this.leave(fault);
    return entry;
  }

  async delete(path: RelayPath, options?: Op): Promise<void> {
    const fault = await this.enter('delete', path, undefined, options);
    await this.inner.delete(path, options);
    this.leave(fault);
  }

  async rename(from: RelayPath, to: RelayPath, options?: Op): Promise<void> {
    const fault = await this.enter('rename', from, to, options);
    await this.inner.rename(from, to, options);
    this.leave(fault);
  }

  async mkdir(dir: RelayPath, options?: Op): Promise<void> {
    const fault = await this.enter('mkdir', dir, undefined, options);
    await this.inner.mkdir(dir, options);
    this.leave(fault);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Records the call, applies the delay and a `before` error; returns the fault for `leave`. */
  private async enter(method: FaultMethod, path: RelayPath, to: RelayPath | undefined, options?: Op): Promise<Fault | undefined> {
    const nth = (this.counts.get(method) ?? 0) + 1;
    this.counts.set(method, nth);
    const call: FaultCall = { method, path, nth, index: this.calls.length + 1, ...(to === undefined ? {} : { to }) };
    this.calls.push(call);
    const fault = this.rule(call);
    if (fault?.delayMs) await abortableSleep(fault.delayMs, options?.signal);
    if (fault?.error !== undefined && fault.when !== 'after') throw toError(fault.error, call);
    return fault;
  }

  /** Throws an `after` error once the real call has happened. */
  private leave(fault: Fault | undefined): void {
    if (fault?.error !== undefined && fault.when === 'after') throw toError(fault.error, undefined);
  }
}

function toError(error: EscaleError | ErrorCode, call: FaultCall | undefined): EscaleError {
  if (error instanceof EscaleError) return error;
  const where = call ? ` in ${call.method} #${call.nth} of '${call.path}'` : '';
  return new EscaleError(error, `injected ${error}${where}`, call ? { path: call.path } : {});
}

/** A stream that passes `limit` bytes of `source` and then fails with Unavailable (stopping the source). */
function cut(source: Readable, limit: number, path: RelayPath): Readable {
  async function* passLimit(): AsyncGenerator<Buffer> {
    let seen = 0;
    for await (const raw of source as AsyncIterable<Buffer | string>) {
      const chunk = Buffer.from(raw);
      const room = limit - seen;
      seen += chunk.length;
      if (chunk.length <= room) {
        yield chunk;
        continue;
      }
      // why: the bytes before the cut are delivered first, so a reader sees a truncated stream.
      if (room > 0) yield chunk.subarray(0, room);
      source.destroy();
      throw new EscaleError('Unavailable', `injected cut after ${limit} bytes of '${path}'`, { path });
    }
  }
  return Readable.from(passLimit(), { objectMode: false });
}
