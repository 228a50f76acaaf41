import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Readable, addAbortSignal } from 'node:stream';
import {
  CopyObjectCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  type ListObjectsV2CommandOutput,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { EscaleError, throwIfAborted } from '../../../core/errors.js';
import type { RelayPath } from '../../../core/relpath.js';
import { listedPath, type Backend, type Entry, type Features, type ListOptions, type Op, type PutOptions } from '../../backend.js';
import { RelayClock } from '../../relay-clock.js';
import { fromS3Error, isS3NotFound } from './s3-error.js';
import type { S3Quirks } from './s3-quirks.js';

/** Options for `openS3Backend`. */
export interface S3BackendOptions {
  /** Endpoint URL of an S3-compatible server (`https://host:port`); undefined means AWS for `region`. */
  readonly endpoint?: string;
  /** Default us-east-1. */
  readonly region?: string;
  readonly bucket: string;
  /** Key prefix of the relay inside the bucket, without leading or trailing `/` ('' = bucket root). */
  readonly prefix: string;
  /** Access key id and secret; undefined uses the AWS environment/profile chain. */
  readonly credentials?: { readonly accessKeyId: string; readonly secretAccessKey: string };
  /** A profile of ~/.aws/config and ~/.aws/credentials (when `credentials` is not given). */
  readonly profile?: string;
  /** Path-style addressing (`endpoint/bucket/key`), which S3-compatible servers need. */
  readonly forcePathStyle: boolean;
  /** Check the server's TLS certificate (default true). */
  readonly verifySsl?: boolean;
  /** The server honours `If-None-Match: *` on writes (AWS since 2024; not s3rver). */
  readonly conditionalWrites: boolean;
  /** Parallel requests (default 8). */
  readonly maxConnections?: number;
  /** Part size of multipart uploads in bytes (default 8 MiB; minimum 5 MiB). */
  readonly partSize?: number;
  /** Work-arounds for S3-compatible servers that depart from S3 (default none). */
  readonly quirks?: S3Quirks;
}


export { S3RVER_QUIRKS } from './s3-quirks.js';

const MiB = 1024 * 1024;

/** Opens a bucket (or a prefix in it) as relay; checks that the bucket answers. */
export async function openS3Backend(options: S3BackendOptions): Promise<S3Backend> {
  const backend = new S3Backend(options);
  await backend.probe();
  return backend;
}

/**
 * An S3 bucket (AWS or S3-compatible) as relay. Keys are `<prefix>/<relative path>`. A put is
 * atomic by nature (an object appears whole or not at all); large bodies go up as multipart
 * uploads, streamed part by part and aborted on failure. Folders are implicit: a folder exists
 * when some key lies below it; `mkdir` writes a zero-byte marker `<folder>/` so that an empty
 * folder exists too, and markers are never listed as files. `rename` is copy-then-delete (not
 * atomic: a crash between the two leaves both names). Exclusive puts send `If-None-Match: *`
 * when `conditionalWrites`, else check before writing (best effort).
 */
export class S3Backend implements Backend {
  readonly id: string;
  readonly features: Features;
  readonly clock = new RelayClock();
  /** Whether `exclusive` puts are atomic on this server (`If-None-Match: *`). */
  readonly atomicExclusive: boolean;
  private readonly client: S3Client;
  private readonly bucket: string;
  private readonly prefix: string;
  private readonly writing = new Map<string, Promise<unknown>>();
  private closed = false;

  /** Use `openS3Backend`, which checks the bucket first. */
  constructor(private readonly options: S3BackendOptions) {
    this.bucket = options.bucket;
    this.prefix = options.prefix.replace(/^\/+|\/+$/g, '');
    this.atomicExclusive = options.conditionalWrites;
    const where = options.endpoint ?? `aws:${options.region ?? 'us-east-1'}`;
    this.id = `s3://${where.replace(/^[a-z]+:\/\//i, '')}/${this.bucket}${this.prefix === '' ? '' : `/${this.prefix}`}`;
    const maxConnections = options.maxConnections ?? 8;
    this.features = { maxConnections, mtimePrecisionMs: 1000, renameOverwrites: true, recursiveList: true };
    const sockets = { keepAlive: true, maxSockets: maxConnections * 2 };
    const config: S3ClientConfig = {
      region: options.region ?? 'us-east-1',
      forcePathStyle: options.forcePathStyle,
      // why: retries belong to escale's retry wrapper (codes decide), and a streamed body cannot be replayed anyway.
      maxAttempts: 1,
      // why: with the default (WHEN_SUPPORTED) SDK 3.1175 sends stream bodies aws-chunked with a CRC32
      // trailer, and s3rver stores that framing verbatim as object content; checksums only when required.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        httpAgent: new HttpAgent(sockets),
        httpsAgent: new HttpsAgent({ ...sockets, rejectUnauthorized: options.verifySsl !== false }),
      },
      ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
      ...(options.credentials !== undefined ? { credentials: { ...options.credentials } } : {}),
      ...(options.credentials === undefined && options.profile !== undefined ? { profile: options.profile } : {}),
    };
    this.client = new S3Client(config);
  }

  /** Checks that the bucket exists and that we may list it (one cheap request). */
  async probe(): Promise<void> {
    try {
      await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, MaxKeys: 1, ...(this.prefix ? { Prefix: `${this.prefix}/` } : {}) }));
    } catch (error) {
      throw fromS3Error(error, undefined, this.bucket);
    }
  }

  async *list(dir: RelayPath, options: ListOptions = {}): AsyncIterable<Entry> {
    this.check(options);
    const listPrefix = this.folderKey(dir);
    const derive = !options.recursive && this.options.quirks?.clientSideFolders === true;
    const seen = new Set<string>();
    let token: string | undefined;
    do {
      throwIfAborted(options.signal);
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(new ListObjectsV2Command({
          Bucket: this.bucket,
          ...(listPrefix === '' ? {} : { Prefix: listPrefix }),
          ...(options.recursive || derive ? {} : { Delimiter: '/' }),
          ...(token === undefined ? {} : { ContinuationToken: token }),
        }), options.signal ? { abortSignal: options.signal } : {});
      } catch (error) {
        throw fromS3Error(error, dir, this.bucket);
      }
      const entries: Entry[] = [];
      for (const folder of page.CommonPrefixes ?? []) {
        const name = folder.Prefix?.slice(listPrefix.length).replace(/\/$/, '');
        const path = join(dir, name, options);
        if (path !== undefined) entries.push({ path, kind: 'dir', size: 0 });
      }
      for (const object of page.Contents ?? []) {
        const rest = object.Key?.slice(listPrefix.length);
        if (derive && rest !== undefined && rest.includes('/')) {
          const name = rest.slice(0, rest.indexOf('/'));
          const path = join(dir, name, options);
          if (path !== undefined && !seen.has(name)) {
            seen.add(name);
            entries.push({ path, kind: 'dir', size: 0 });
          }
          continue;
        }
        // why: keys ending in '/' are folder markers (ours from mkdir, or other tools'); never files.
        if (rest === undefined || rest === '' || rest.endsWith('/')) continue;
        const path = join(dir, rest, options);
        if (path === undefined) continue;
        entries.push({ path, kind: 'file', size: object.Size ?? -1, ...(object.LastModified ? { mtimeMs: object.LastModified.getTime() } : {}) });
      }
      for (const entry of entries) {
        throwIfAborted(options.signal);
        yield entry;
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }

  async stat(path: RelayPath, options: Op = {}): Promise<Entry> {
    this.check(options);
    if (path === '') return { path, kind: 'dir', size: 0 };
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(path) }), abortOf(options));
      return { path, kind: 'file', size: head.ContentLength ?? 0, ...(head.LastModified ? { mtimeMs: head.LastModified.getTime() } : {}) };
    } catch (error) {
      if (!isS3NotFound(error)) throw fromS3Error(error, path, this.bucket);
    }
    let page: ListObjectsV2CommandOutput;
    try {
      page = await this.client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: this.folderKey(path), MaxKeys: 1 }), abortOf(options));
    } catch (error) {
      throw fromS3Error(error, path, this.bucket);
    }
    if ((page.KeyCount ?? page.Contents?.length ?? 0) > 0) return { path, kind: 'dir', size: 0 };
    throw new EscaleError('NotFound', `no such file or folder in the S3 bucket ('${path}')`, { path });
  }

  async get(path: RelayPath, options: Op = {}): Promise<Readable> {
    this.check(options);
    try {
      const answer = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(path) }), abortOf(options));
      const body = answer.Body as Readable | undefined;
      if (body === undefined) return Readable.from([]);
      if (options.signal) addAbortSignal(options.signal, body);
      return body;
    } catch (error) {
      throw fromS3Error(error, path, this.bucket);
    }
  }

  async put(path: RelayPath, body: Readable | Uint8Array, options: PutOptions = {}): Promise<Entry> {
    this.check(options);
    if (path === '') throw new EscaleError('InvalidName', 'cannot put the relay root');
    const key = this.key(path);
    // why: s3rver writes an object in place, so two PUTs of one key at once can interleave into a
    // mix of both bodies; S3 itself is last-writer-wins. Puts of one key from this process take turns.
    const previous = this.writing.get(key) ?? Promise.resolve();
    const mine = previous.catch(() => undefined).then(() => this.clock.timed(() => this.putNow(key, path, body, options), this.features.mtimePrecisionMs));
    this.writing.set(key, mine);
    try {
      return await mine;
    } finally {
      if (this.writing.get(key) === mine) this.writing.delete(key);
    }
  }

  private async putNow(key: string, path: RelayPath, body: Readable | Uint8Array, options: PutOptions): Promise<Entry> {
    throwIfAborted(options.signal);
    try {
      if (options.exclusive && !this.atomicExclusive && (await this.exists(key))) {
        throw new EscaleError('AlreadyExists', `'${path}' exists already`, { path });
      }
      const conditional = options.exclusive && this.atomicExclusive ? { IfNoneMatch: '*' } : {};
      if (body instanceof Uint8Array) {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, ContentLength: body.length, ...conditional }), abortOf(options));
      } else {
        const upload = new Upload({
          client: this.client,
          params: { Bucket: this.bucket, Key: key, Body: body, ...conditional },
          partSize: Math.max(5 * MiB, this.options.partSize ?? 8 * MiB),
          queueSize: 2,
          leavePartsOnError: false,
        });
        const abort = (): void => {
          void upload.abort().catch(() => undefined);
        };
        options.signal?.addEventListener('abort', abort, { once: true });
        // why: a body that fails must fail the upload; lib-storage reads it with for-await, which rethrows.
        try {
          await upload.done();
        } finally {
          options.signal?.removeEventListener('abort', abort);
        }
      }
    } catch (error) {
      if (!(body instanceof Uint8Array)) body.destroy();
      if (options.signal?.aborted) throw new EscaleError('Aborted', 'operation aborted', { path, cause: error });
      throw fromS3Error(error, path, this.bucket);
    }
    return this.stat(path);
  }

  async delete(path: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    const key = this.key(path);
    try {
      // why: DeleteObject succeeds for a missing key; the contract wants NotFound (check, then delete).
      if (!(await this.exists(key, options))) throw new EscaleError('NotFound', `no such object in the S3 bucket ('${path}')`, { path });
      throwIfAborted(options.signal);
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (error) {
      throw fromS3Error(error, path, this.bucket);
    }
  }

  async rename(from: RelayPath, to: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    const source = this.key(from);
    try {
      await this.client.send(new CopyObjectCommand({
        Bucket: this.bucket,
        Key: this.key(to),
        // why: CopySource is `bucket/key`, URL-encoded per segment ('%', '#', '?', spaces, unicode).
        CopySource: this.options.quirks?.copySourceDecodeUri
          ? encodeURI(`${this.bucket}/${source}`)
          : `${this.bucket}/${source.split('/').map(encodeURIComponent).join('/')}`,
      }), abortOf(options));
    } catch (error) {
      throw fromS3Error(error, from, this.bucket);
    }
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: source }));
    } catch (error) {
      throw fromS3Error(error, from, this.bucket);
    }
  }

  async mkdir(dir: RelayPath, options: Op = {}): Promise<void> {
    this.check(options);
    if (dir === '') return;
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.folderKey(dir), Body: new Uint8Array(0), ContentLength: 0 }), abortOf(options));
    } catch (error) {
      throw fromS3Error(error, dir, this.bucket);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.destroy();
  }

  // -------------------------------------------------------------------------------------------

  private check(options: Op): void {
    if (this.closed) throw new EscaleError('Internal', 'the s3 backend is closed');
    throwIfAborted(options.signal);
  }

  private key(path: RelayPath): string {
    return this.prefix === '' ? path : `${this.prefix}/${path}`;
  }

  /** The key prefix of a folder, with its trailing `/` ('' for the bucket root). */
  private folderKey(dir: RelayPath): string {
    const key = dir === '' ? this.prefix : this.key(dir);
    return key === '' ? '' : `${key}/`;
  }

  private async exists(key: string, options: Op = {}): Promise<boolean> {
    try {
      await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }), abortOf(options));
      return true;
    } catch (error) {
      if (isS3NotFound(error)) return false;
      throw error;
    }
  }
}

function abortOf(options: Op): { abortSignal?: AbortSignal } {
  return options.signal ? { abortSignal: options.signal } : {};
}

/** Joins a listed name below `dir`; undefined (and reported) for names that are no safe RelayPath. */
function join(dir: RelayPath, name: string | undefined, options: ListOptions): RelayPath | undefined {
  if (name === undefined || name === '') return undefined;
  return listedPath(dir, name, options);
}
