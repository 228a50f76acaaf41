/**
 * The daemon's control channel: a Unix socket beside the PID file (`<base>.sock`), mode 0600, on
 * which the running daemon answers requests. One request per connection: the client writes one
 * JSON line (`{"command":"status"}`), the daemon answers one JSON line (`{"ok":true,"status":...}`
 * or `{"ok":false,"error":"..."}`) and closes. Every string of an answer passes through the secret
 * registry (no password or passphrase ever leaves through it).
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { chmod, lstat, unlink } from 'node:fs/promises';
import { EscaleError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { globalSecrets } from '../core/redact.js';

/** Longest socket path the kernel accepts (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH_BYTES = 107;

/** Longest request line accepted, in bytes. */
const MAX_REQUEST_BYTES = 64 * 1024;

/** How long a connection may stay without completing its request. */
const REQUEST_TIMEOUT_MS = 10_000;

/** The control socket of a PID file: the same folder and base name, `.sock` instead of `.pid`. */
export function controlSocketPath(pidFile: string): string {
  return `${pidFile.endsWith('.pid') ? pidFile.slice(0, -'.pid'.length) : pidFile}.sock`;
}

/** What the daemon answers on its control socket. */
export interface ControlHandlers {
  /** The status model as JSON data. */
  status(): unknown;
}

/** A listening control socket; `close` stops it and removes the socket file. */
export interface ControlServer {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Listens on `path` (mode 0600: the daemon's user only). A stale socket file left by a killed
 * daemon is replaced (the caller holds the PID file, so no other daemon owns it); any other kind of
 * file in the way is refused. Throws Unsupported when the path is too long for a Unix socket.
 */
export async function openControlSocket(path: string, handlers: ControlHandlers, logger: Logger): Promise<ControlServer> {
  if (Buffer.byteLength(path) > MAX_SOCKET_PATH_BYTES) {
    throw new EscaleError('Unsupported', `the control socket path '${path}' is longer than ${MAX_SOCKET_PATH_BYTES} bytes`, { path });
  }
  try {
    const info = await lstat(path);
    if (!info.isSocket()) throw new EscaleError('AlreadyExists', `'${path}' exists and is not a socket; not replaced`, { path });
    await unlink(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  const server = createServer((socket) => serve(socket, handlers, logger));
  await listenPrivately(server, path);
  return {
    path,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(path).catch(() => undefined);
    },
  };
}

/** Listens on a Unix socket created with mode 0600 (umask around the bind, then chmod). */
async function listenPrivately(server: Server, path: string): Promise<void> {
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => {
      server.off('error', reject);
      resolve();
    });
  });
  // why: bind() creates the socket file inside listen(), synchronously, with the process umask; a
  // narrow umask for that call leaves no moment where others could connect.
  const previous = process.umask(0o177);
  try {
    server.listen(path);
  } finally {
    process.umask(previous);
  }
  await listening;
  await chmod(path, 0o600);
}

function serve(socket: Socket, handlers: ControlHandlers, logger: Logger): void {
  let buffered = '';
  socket.setEncoding('utf8');
  socket.setTimeout(REQUEST_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', (error) => logger.debug(`control socket connection: ${error.message}`));
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const end = buffered.indexOf('\n');
    if (end < 0) {
      if (Buffer.byteLength(buffered) > MAX_REQUEST_BYTES) socket.end(`${JSON.stringify({ ok: false, error: 'request too long' })}\n`);
      return;
    }
    socket.removeAllListeners('data');
    socket.end(`${answer(buffered.slice(0, end), handlers)}\n`);
  });
}

/** The answer line to one request line. */
function answer(line: string, handlers: ControlHandlers): string {
  let command: unknown;
  try {
    command = (JSON.parse(line) as { command?: unknown })?.command;
  } catch {
    return JSON.stringify({ ok: false, error: 'the request is not JSON' });
  }
  if (command !== 'status') return JSON.stringify({ ok: false, error: `unknown command ${JSON.stringify(command)}` });
  // why: messages may quote addresses or server replies; every string is scrubbed of known secrets.
  return JSON.stringify({ ok: true, status: handlers.status() }, (_key, value: unknown) => (typeof value === 'string' ? globalSecrets.redact(value) : value));
}

/**
 * Asks the daemon listening on `path` for its status; the parsed `status` value. Throws
 * Unavailable when nobody answers (no socket, refused, timeout) and Protocol on a bad answer.
 */
export async function requestStatus(path: string, timeoutMs = 5000): Promise<unknown> {
  const text = await new Promise<string>((resolve, reject) => {
    const socket = createConnection(path);
    let received = '';
    socket.setEncoding('utf8');
    socket.setTimeout(timeoutMs, () => socket.destroy(new EscaleError('Unavailable', `no answer on the control socket '${path}' within ${timeoutMs} ms`, { path })));
    socket.on('connect', () => socket.write(`${JSON.stringify({ command: 'status' })}\n`));
    socket.on('data', (chunk: string) => (received += chunk));
    socket.on('end', () => resolve(received));
    socket.on('error', (error) => reject(error instanceof EscaleError ? error : new EscaleError('Unavailable', `cannot reach the control socket '${path}': ${error.message}`, { path, cause: error })));
  });
  let reply: { ok?: unknown; status?: unknown; error?: unknown };
  try {
    reply = JSON.parse(text) as typeof reply;
  } catch (error) {
    throw new EscaleError('Protocol', `the control socket '${path}' answered something that is not JSON`, { path, cause: error });
  }
  if (reply?.ok !== true) throw new EscaleError('Protocol', `the daemon refused the request: ${String(reply?.error)}`, { path });
  return reply.status;
}
