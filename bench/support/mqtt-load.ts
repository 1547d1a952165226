/**
 * The MQTT-over-mutual-TLS load generator of bench/mqtt-connect.ts: the same
 * code drives every broker measured.
 *
 * One connect is: TCP connect, a full TLS handshake presenting a device
 * certificate (the client never offers a session to resume: no `session`
 * option is given and no ticket is kept, so every handshake is a full one,
 * which `isSessionReused()` confirms), then an MQTT 3.1.1 CONNECT, and the
 * CONNACK read back. The packets are a handful of bytes each and are written
 * here by hand (MQTT 3.1.1 §3.1, §3.2, §3.14), so the generator spends its
 * CPU on TLS, not on an MQTT client library.
 */
import { performance } from 'node:perf_hooks';
import { connect as tlsConnect, createSecureContext, type SecureContext, type SecureVersion, type TLSSocket } from 'node:tls';

export const CONNECT_TIMEOUT_MS = 10_000;

/** A device credential: its key and its certificate followed by the issuing CA (RFC 8446 §4.4.2). */
export interface Credential {
  readonly key: string;
  readonly certChain: string;
}

export interface Endpoint {
  readonly port: number;
  /** The root the client trusts; the server's certificate is checked against it for `localhost`. */
  readonly caPem: string;
}

/** MQTT "Remaining Length" (§2.2.3): 7 bits a byte, high bit set while more follow. */
function remainingLength(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

/**
 * CONNECT (§3.1): protocol name "MQTT", level 4 (3.1.1), flags 0x02 (clean
 * session, no will, no user name or password: the certificate is the
 * identity), keep alive in seconds, and the client identifier as the whole
 * payload.
 */
export function connectPacket(clientId: string, keepAliveSeconds: number): Buffer {
  const id = Buffer.from(clientId, 'utf8');
  const variable = Buffer.from([0x00, 0x04, 0x4d, 0x51, 0x54, 0x54, 0x04, 0x02, keepAliveSeconds >> 8, keepAliveSeconds & 0xff]);
  const payload = Buffer.concat([Buffer.from([id.length >> 8, id.length & 0xff]), id]);
  return Buffer.concat([Buffer.from([0x10, ...remainingLength(variable.length + payload.length)]), variable, payload]);
}

/** DISCONNECT (§3.14): the client's clean goodbye, so the server publishes no will. */
export const DISCONNECT = Buffer.from([0xe0, 0x00]);

/** TLS contexts built once per credential and version: parsing PEM per connect would load the generator, not the server. */
export class ClientContexts {
  private readonly byVersion = new Map<SecureVersion, SecureContext[]>();

  constructor(
    private readonly endpointCa: string,
    private readonly credentials: readonly Credential[],
  ) {}

  get size(): number {
    return this.credentials.length;
  }

  for(version: SecureVersion, index: number): SecureContext {
    let list = this.byVersion.get(version);
    if (!list) {
      list = this.credentials.map((c) => createSecureContext({ key: c.key, cert: c.certChain, ca: this.endpointCa, minVersion: version, maxVersion: version }));
      this.byVersion.set(version, list);
    }
    return list[index % list.length]!;
  }
}

export interface Opened {
  readonly socket: TLSSocket;
  /** ms from connect() to the end of the client's handshake. */
  readonly handshakeMs: number;
  /** ms from the end of the handshake to CONNACK: the server's admission, its CONNECT handling, and (TLS 1.3) its check of the client's certificate. */
  readonly connackMs: number;
  readonly protocol: string | null;
  readonly reused: boolean;
}

/** One connect, up to an accepted CONNACK; rejects on a refusal, an error, a close or a timeout. */
export function openMqtt(port: number, context: SecureContext, clientId: string, keepAliveSeconds: number): Promise<Opened> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    let handshakeAt = 0;
    let got = Buffer.alloc(0);
    let settled = false;
    const socket = tlsConnect({ host: '127.0.0.1', port, servername: 'localhost', secureContext: context, rejectUnauthorized: true });
    const fail = (why: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new Error(why));
    };
    const timer = setTimeout(() => fail(`no CONNACK in ${CONNECT_TIMEOUT_MS} ms`), CONNECT_TIMEOUT_MS);
    socket.setNoDelay(true);
    socket.once('secureConnect', () => {
      handshakeAt = performance.now();
      socket.write(connectPacket(clientId, keepAliveSeconds));
    });
    const onData = (chunk: Buffer): void => {
      got = Buffer.concat([got, chunk]);
      if (got.length < 4) return;
      socket.off('data', onData);
      // CONNACK (§3.2): type 2, remaining length 2, acknowledge flags, return code (0 = accepted).
      if (got[0] !== 0x20 || got[1] !== 0x02) return fail(`not a CONNACK: ${got.subarray(0, 8).toString('hex')}`);
      if (got[3] !== 0) return fail(`CONNACK return code ${got[3]}`);
      settled = true;
      clearTimeout(timer);
      socket.off('close', onClose);
      const t = performance.now();
      resolve({ socket, handshakeMs: handshakeAt - t0, connackMs: t - handshakeAt, protocol: socket.getProtocol(), reused: socket.isSessionReused() });
    };
    const onClose = (): void => fail(handshakeAt ? 'closed before CONNACK' : 'closed during the TLS handshake');
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.on('error', (err) => fail(err.message));
  });
}

/** DISCONNECT, close_notify and FIN; resolves once the socket is closed both ways. */
export function closeMqtt(socket: TLSSocket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.once('close', () => resolve());
    socket.on('error', () => socket.destroy());
    // A server that never closes its side must not hold a worker.
    setTimeout(() => socket.destroy(), 2_000).unref();
    socket.end(DISCONNECT);
  });
}

export interface RateJob {
  readonly port: number;
  readonly contexts: ClientContexts;
  readonly version: SecureVersion;
  readonly concurrency: number;
  readonly warmupMs: number;
  readonly measureMs: number;
  /** Unique per job, so no two connections of a run share a client id. */
  readonly clientIdPrefix: string;
  /** Called at the start and at the end of the measured window (server CPU is read there). */
  readonly onWindow?: (edge: 'start' | 'end') => void;
}

export interface RateResult {
  /** CONNACKs received inside the measured window. */
  readonly completed: number;
  readonly perSec: number;
  readonly errors: number;
  readonly firstError?: string;
  readonly reused: number;
  readonly protocols: readonly string[];
  /** Sorted, ms, connects completed inside the window. */
  readonly handshakeMs: Float64Array;
  readonly connackMs: Float64Array;
  /** Share of one core the generator used during the window. */
  readonly generatorCpu: number;
}

/**
 * `concurrency` loops, each: connect → CONNACK → DISCONNECT → closed, again,
 * until the window ends. Only connects whose CONNACK lands inside the window
 * count; the ones before warm the server and the generator.
 */
export async function connectRate(job: RateJob): Promise<RateResult> {
  const start = performance.now();
  const measureFrom = start + job.warmupMs;
  const stopAt = measureFrom + job.measureMs;
  const handshake: number[] = [];
  const connack: number[] = [];
  const protocols = new Set<string>();
  let completed = 0;
  let errors = 0;
  let reused = 0;
  let firstError: string | undefined;
  let seq = 0;
  let cpuAtStart: NodeJS.CpuUsage | undefined;
  let cpu: NodeJS.CpuUsage | undefined;
  const startTimer = setTimeout(() => {
    cpuAtStart = process.cpuUsage();
    job.onWindow?.('start');
  }, job.warmupMs);
  const endTimer = setTimeout(() => {
    cpu = process.cpuUsage(cpuAtStart);
    job.onWindow?.('end');
  }, job.warmupMs + job.measureMs);

  const loop = async (): Promise<void> => {
    while (performance.now() < stopAt) {
      const n = seq++;
      try {
        const o = await openMqtt(job.port, job.contexts.for(job.version, n), `${job.clientIdPrefix}-${n}`, 30);
        const t = performance.now();
        if (t >= measureFrom && t <= stopAt) {
          completed++;
          handshake.push(o.handshakeMs);
          connack.push(o.connackMs);
          if (o.reused) reused++;
          if (o.protocol) protocols.add(o.protocol);
        }
        await closeMqtt(o.socket);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: job.concurrency }, loop));
  clearTimeout(startTimer);
  clearTimeout(endTimer);
  const used = cpu ?? process.cpuUsage(cpuAtStart);
  return {
    completed,
    perSec: (completed / job.measureMs) * 1000,
    errors,
    ...(firstError ? { firstError } : {}),
    reused,
    protocols: [...protocols],
    handshakeMs: Float64Array.from(handshake).sort(),
    connackMs: Float64Array.from(connack).sort(),
    generatorCpu: (used.user + used.system) / 1000 / job.measureMs,
  };
}

export interface IdleSet {
  readonly sockets: readonly TLSSocket[];
  readonly errors: number;
  readonly firstError?: string;
  /** How many of the opened connections are still open now. */
  alive(): number;
  close(): Promise<void>;
}

/** Opens `count` connections, `concurrency` at a time, and keeps them open and silent (keep alive `keepAliveSeconds`). */
export async function openIdle(port: number, contexts: ClientContexts, version: SecureVersion, count: number, concurrency: number, clientIdPrefix: string, keepAliveSeconds: number): Promise<IdleSet> {
  const sockets: TLSSocket[] = [];
  let open = 0;
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const worker = async (): Promise<void> => {
    while (next < count) {
      const n = next++;
      try {
        const o = await openMqtt(port, contexts.for(version, n), `${clientIdPrefix}-${n}`, keepAliveSeconds);
        sockets.push(o.socket);
        open++;
        o.socket.once('close', () => open--);
        o.socket.on('error', () => {});
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return {
    sockets,
    errors,
    ...(firstError ? { firstError } : {}),
    alive: () => open,
    close: async () => {
      await Promise.all(sockets.map((s) => closeMqtt(s)));
    },
  };
}

export function percentile(sorted: Float64Array, p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
}
