/**
 * OCSP responses per second under load: a real certfleet node (started in
 * process, SQLite data dir, 1,000 device certificates, 10 % of them revoked
 * keyCompromise) answering POST /ocsp on its http port, against
 * `openssl ocsp -index … -port` measured in the same run (DESIGN.md
 * "Performance baseline"), one process and `-multi 2` (one worker per core
 * on this 2-core machine: its strongest form here).
 *
 * Like for like, not the same CA: certfleet never exports a CA key, and has
 * no API that would certify a key openssl holds, so openssl cannot sign for
 * certfleet's issuing CA. openssl serves ITS OWN set instead, built by
 * openssl itself: a P-256 CA (`openssl req -x509`), 1,000 P-256 device
 * certificates issued by `openssl ca` (which writes its index.txt), the same
 * 10 % revoked with `openssl ca -revoke -crl_reason keyCompromise`, and a
 * delegated responder certificate (`openssl x509 -req`, OCSPSigning,
 * ocsp-nocheck) signing with P-256/SHA-256, as certfleet's responder does.
 * Both peers therefore answer the same number of certificates with the same
 * revoked share, send their responder certificate in each response, and get
 * the same request shape: one SHA-1 CertID per request (what OpenSSL and
 * most devices send), cycling over all 1,000 serials in the same order.
 *
 * Load: one generator for every peer, in a separate process (this file,
 * forked with --ocsp-load-generator) so it shares no event loop with the
 * certfleet node: raw TCP, a fresh connection per request (openssl's
 * responder answers HTTP/1.0 and closes; so both get the same), 16 requests
 * in flight. Every responder is up for the whole load phase (an idle one
 * waits in accept) and the figures are taken in 3 rounds, each figure once
 * per round in rotated order (2.5 s measured after a warm-up), so that other
 * work on the machine weighs on every figure alike: a rate is the median of
 * its rounds, a ratio the median of the ratios within each round, and the
 * latencies are pooled over the rounds. The main figure is for
 * nonce-less requests (cacheable, as RFC 5019 clients, browsers and most
 * devices ask: certfleet serves them from its pre-signed cache, filled
 * before the rounds as it is in steady state); a second
 * certfleet figure carries a fresh 16-byte RFC 8954 nonce per request, so
 * each answer is signed for itself. openssl signs every answer either way.
 * A "null responder" (a bare node:net server in the certfleet process,
 * answering every request with one fixed response of certfleet's size)
 * shows what the generator, the kernel and one Node process carry here with
 * no OCSP work at all: the most a Node responder could show. One more
 * certfleet figure, for information only, keeps each loop's connection open
 * (HTTP/1.1 keep-alive, as CDNs and device stacks do): openssl 3.0's
 * responder cannot, so it is not in the like-for-like ratios. Last, where
 * certfleet's time goes: its responder's respond() timed in process, without
 * HTTP, cached and with a nonce, and the store reads a nonce answer makes.
 *
 * A figure counts only when nothing failed (no connection error, timeout or
 * non-successful OCSP response) and 20 sampled responses per figure (to
 * every 7th request measured in the last round, revoked certificates among
 * them) pass `openssl ocsp -respin … -issuer … -CAfile …` ("Response verify
 * OK", the status good/revoked as expected, the nonce echoed); otherwise the
 * run exits non-zero. Never a timed test in CI; run by `npm run bench:ocsp`.
 * CERTFLEET_BENCH_OCSP_ROUNDS and CERTFLEET_BENCH_OCSP_SECONDS change the
 * rounds and the seconds measured per figure and round;
 * CERTFLEET_BENCH_OCSP_PROFILE=1 also profiles the certfleet node during its
 * runs (slower figures) and prints where its CPU time goes; set to a
 * directory, it also writes the .cpuprofile files there.
 */
import { execFile, fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Certificate, certIdFor, decodePem } from '@certfleet/pki';

const LOAD_GENERATOR = '--ocsp-load-generator';
const N = 1_000; // certificates per peer
const REVOKE_EVERY = 10; // every 10th certificate is revoked
const CONCURRENCY = 16;
const ROUNDS = Number(process.env.CERTFLEET_BENCH_OCSP_ROUNDS ?? 3);
const FIRST_WARMUP_MS = 2_000; // fills certfleet's answer cache, starts every process's JIT
const WARMUP_MS = 500; // each later run: connections and caches are warm
const MEASURE_MS = Number(process.env.CERTFLEET_BENCH_OCSP_SECONDS ?? 2.5) * 1000; // per figure per round
const SAMPLE = 20; // responses per figure checked by openssl
const TIMEOUT_MS = 5_000;
const GOAL = 10; // × the openssl responder
const NONCE_BYTES = 16;
/** Coprime with REVOKE_EVERY, so the sampled requests walk over revoked certificates too (2 in 20). */
const SAMPLE_STRIDE = 7;

// ---------------------------------------------------------------- messages between the bench and its generator

interface LoadJob {
  readonly label: string;
  readonly port: number;
  readonly path: string;
  /** DER OCSPRequests, base64; with `nonce`, each ends in NONCE_BYTES nonce octets rewritten per request. */
  readonly bodies: readonly string[];
  readonly nonce: boolean;
  /** One connection per loop for all its requests (HTTP/1.1 keep-alive) instead of one per request. */
  readonly keepAlive: boolean;
  readonly warmupMs: number;
  readonly measureMs: number;
  /**
   * How many measured responses to send back for checking: those to every
   * SAMPLE_STRIDE-th request sent, each for a different certificate.
   */
  readonly sample: number;
}

interface LoadResult {
  readonly label: string;
  readonly completed: number; // successful responses completed inside the measured window
  readonly perSec: number;
  readonly errors: number; // connection errors, bad HTTP, non-successful OCSP, whole run
  readonly timeouts: number;
  readonly firstError?: string;
  /** Milliseconds, each request completed inside the measured window. */
  readonly latencies: readonly number[];
  readonly responseBytes: number;
  readonly samples: ReadonlyArray<{ readonly index: number; readonly request: string; readonly response: string }>;
}

type ToGenerator = { readonly kind: 'run'; readonly job: LoadJob } | { readonly kind: 'exit' };
type FromGenerator = { readonly kind: 'ready' } | { readonly kind: 'result'; readonly result: LoadResult };

// ---------------------------------------------------------------- the load generator (child process)

const HEADER_END = Buffer.from('\r\n\r\n');

/** 0 when `der` is an OCSPResponse whose responseStatus is successful(0). */
function ocspStatus(der: Buffer): number {
  if (der.length < 5 || der[0] !== 0x30) return -1;
  const off = der[1]! < 0x80 ? 2 : 2 + (der[1]! & 0x7f);
  return der[off] === 0x0a && der[off + 1] === 0x01 ? der[off + 2]! : -1;
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : NaN;
}

function generate(job: LoadJob): Promise<LoadResult> {
  const requests = job.bodies.map((b64) => {
    const body = Buffer.from(b64, 'base64');
    const head =
      `POST ${job.path} HTTP/1.1\r\nHost: 127.0.0.1:${job.port}\r\nContent-Type: application/ocsp-request\r\n` +
      `Content-Length: ${body.length}\r\n${job.keepAlive ? '' : 'Connection: close\r\n'}\r\n`;
    return { head: Buffer.from(head, 'latin1'), body, whole: Buffer.concat([Buffer.from(head, 'latin1'), body]) };
  });
  const samples = new Map<number, { index: number; request: string; response: string }>();
  const latencies: number[] = [];
  let next = 0;
  let completed = 0;
  let errors = 0;
  let timeouts = 0;
  let firstError: string | undefined;
  let responseBytes = 0;
  const measureFrom = performance.now() + job.warmupMs;
  const stopAt = measureFrom + job.measureMs;

  return new Promise((resolve) => {
    let running = CONCURRENCY;
    const finish = (): void => {
      if (--running > 0) return;
      resolve({
        label: job.label,
        completed,
        perSec: (completed / job.measureMs) * 1000,
        errors,
        timeouts,
        ...(firstError ? { firstError } : {}),
        latencies: latencies.map((l) => Math.round(l * 1000) / 1000),
        responseBytes,
        samples: [...samples.values()],
      });
    };

    /** One of CONCURRENCY request loops: a fresh connection per request, or one kept open. */
    const loop = (): void => {
      let socket: Socket | undefined;
      let current: { t0: number; seq: number; index: number; body: Buffer; chunks: Buffer[]; received: number; bodyStart: number; contentLength: number } | undefined;

      const settle = (outcome: 'ok' | 'error' | 'timeout', why = ''): void => {
        const c = current;
        if (!c) return;
        current = undefined;
        const t1 = performance.now();
        if (outcome !== 'ok' || !job.keepAlive) {
          const s = socket;
          socket = undefined;
          s?.destroy();
        }
        if (outcome === 'timeout') timeouts++;
        else if (outcome === 'error') {
          errors++;
          firstError ??= why;
        } else if (t1 >= measureFrom && t1 <= stopAt) {
          completed++;
          latencies.push(t1 - c.t0);
          responseBytes = c.contentLength;
          if (c.seq % SAMPLE_STRIDE === 0 && samples.size < job.sample && !samples.has(c.index)) {
            const response = Buffer.concat(c.chunks, c.received).subarray(c.bodyStart, c.bodyStart + c.contentLength);
            samples.set(c.index, { index: c.index, request: c.body.toString('base64'), response: response.toString('base64') });
          }
        }
        start();
      };

      const onData = (s: Socket, chunk: Buffer): void => {
        const c = current;
        if (s !== socket || !c) return;
        c.chunks.push(chunk);
        c.received += chunk.length;
        if (c.bodyStart < 0) {
          const all = c.chunks.length === 1 ? chunk : Buffer.concat(c.chunks, c.received);
          const end = all.indexOf(HEADER_END);
          if (end < 0) return;
          const head = all.toString('latin1', 0, end);
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1];
          const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
          if (status !== '200' || length === undefined) return settle('error', `HTTP: ${head.split('\r\n')[0]}${length === undefined ? ' (no Content-Length)' : ''}`);
          c.bodyStart = end + 4;
          c.contentLength = Number(length);
        }
        if (c.received >= c.bodyStart + c.contentLength) {
          if (c.received > c.bodyStart + c.contentLength) return settle('error', 'bytes after the response');
          const status = ocspStatus(Buffer.concat(c.chunks, c.received).subarray(c.bodyStart));
          settle(status === 0 ? 'ok' : 'error', `OCSP responseStatus ${status}`);
        }
      };

      const open = (): Socket => {
        const s = connect(job.port, '127.0.0.1');
        s.setNoDelay(true);
        s.setTimeout(TIMEOUT_MS, () => s === socket && settle('timeout'));
        s.on('error', (err) => s === socket && settle('error', err.message));
        s.on('data', (chunk: Buffer) => onData(s, chunk));
        s.on('end', () => {
          if (s !== socket) return;
          if (current) settle('error', 'connection closed before the whole response');
          else socket = undefined; // a kept-alive connection the server closed between requests
        });
        return s;
      };

      const start = (): void => {
        if (performance.now() >= stopAt) {
          socket?.destroy();
          socket = undefined;
          return finish();
        }
        const seq = next++;
        const index = seq % requests.length;
        const r = requests[index]!;
        let body = r.body;
        let wire = r.whole;
        if (job.nonce) {
          body = Buffer.from(r.body);
          randomFillSync(body, body.length - NONCE_BYTES, NONCE_BYTES);
          wire = Buffer.concat([r.head, body]);
        }
        socket ??= open();
        current = { t0: performance.now(), seq, index, body, chunks: [], received: 0, bodyStart: -1, contentLength: 0 };
        socket.write(wire);
      };
      start();
    };
    for (let k = 0; k < CONCURRENCY; k++) loop();
  });
}

function runGenerator(): void {
  process.on('message', (m: ToGenerator) => {
    if (m.kind === 'exit') process.exit(0);
    void generate(m.job).then((result) => process.send!({ kind: 'result', result } satisfies FromGenerator));
  });
  process.send!({ kind: 'ready' } satisfies FromGenerator);
}

// ---------------------------------------------------------------- DER for OCSP requests

function tlv(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const len = n < 0x80 ? [n] : n < 0x100 ? [0x81, n] : [0x82, n >> 8, n & 0xff];
  return Buffer.concat([Buffer.from([tag, ...len]), body]);
}
const SEQ = 0x30;
const OCTETS = 0x04;
const ID_PKIX_OCSP_NONCE = Buffer.from('06092b0601050507300102', 'hex'); // 1.3.6.1.5.5.7.48.1.2

/** OCSPRequest { TBSRequest { requestList { Request { CertID } }, [2] { nonce }? } }; a nonce is the last NONCE_BYTES octets. */
function ocspRequest(certIdDer: Buffer, withNonce: boolean): Buffer {
  const requestList = tlv(SEQ, tlv(SEQ, certIdDer));
  const exts = withNonce ? [tlv(0xa2, tlv(SEQ, tlv(SEQ, ID_PKIX_OCSP_NONCE, tlv(OCTETS, tlv(OCTETS, Buffer.alloc(NONCE_BYTES, 0xa5))))))] : [];
  return tlv(SEQ, tlv(SEQ, requestList, ...exts));
}

// ---------------------------------------------------------------- the bench (parent process)

const log = (s = ''): void => void process.stdout.write(`${s}\n`);
const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');

function run(cmd: string, args: string[], cwd: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 24 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}

/**
 * Waits until the responder answers a real request. Not a bare connect: a
 * connection closed without a request sets openssl 3.0's responder spinning
 * at full CPU, never to accept again.
 */
async function waitForResponder(port: number, body: Buffer, child: ChildProcess): Promise<void> {
  const request = Buffer.concat([
    Buffer.from(`POST / HTTP/1.0\r\nContent-Type: application/ocsp-request\r\nContent-Length: ${body.length}\r\n\r\n`, 'latin1'),
    body,
  ]);
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`openssl ocsp exited with ${child.exitCode}`);
    const answer = await new Promise<string>((resolve) => {
      const s = connect(port, '127.0.0.1');
      let got = '';
      s.setTimeout(2000, () => s.destroy());
      s.on('data', (c: Buffer) => void (got += c.toString('latin1')));
      s.on('error', () => {});
      s.on('close', () => resolve(got));
      s.write(request);
    });
    if (answer.startsWith('HTTP/1.0 200')) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no OCSP answer on port ${port}`);
}

interface Peer {
  readonly serials: readonly string[]; // lowercase hex, index i = body i
  readonly revoked: ReadonlySet<string>;
  readonly issuerPem: string;
  readonly trustPem: string;
}

/** Shares of self time in a V8 CPU profile, by function and by package. */
function topSelfTime(profile: { nodes: Array<{ callFrame: { functionName: string; url: string }; hitCount?: number }> }) {
  const total = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0);
  const perFn = new Map<string, number>();
  const perArea = new Map<string, number>();
  const add = (m: Map<string, number>, k: string, h: number) => m.set(k, (m.get(k) ?? 0) + h);
  for (const n of profile.nodes) {
    const hits = n.hitCount ?? 0;
    if (!hits) continue;
    const { functionName, url } = n.callFrame;
    const native = functionName.startsWith('(') ? functionName : `${functionName} (native)`; // (idle), (program), (garbage collector)
    add(perFn, url ? `${functionName || '(anonymous)'} ${basename(url)}` : native, hits);
    const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1];
    const ours = /packages\/([^/]+)\/src/.exec(url)?.[1];
    add(perArea, !url ? native : url.startsWith('node:') ? 'node core (net, http, streams)' : pkg ?? (ours ? `certfleet ${ours}` : basename(url)), hits);
  }
  const sorted = (m: Map<string, number>, k: number) =>
    [...m].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, h]) => `${`${((h / total) * 100).toFixed(1)}%`.padStart(6)}  ${name}`);
  return { functions: sorted(perFn, 16), areas: sorted(perArea, 10) };
}

const execFileP = promisify(execFile);

/** Runs openssl in `cwd`; throws with its output if it fails. */
async function ossl(args: string[], cwd: string, what: string): Promise<void> {
  try {
    await execFileP('openssl', args, { cwd, maxBuffer: 1 << 24 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    throw new Error(`${what}: ${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/**
 * openssl's own set, made by openssl: a P-256 CA, N device certificates
 * issued by `openssl ca` (which writes index.txt), every REVOKE_EVERY-th
 * revoked by `openssl ca -revoke`, and a delegated OCSP responder.
 */
async function opensslSet(od: string): Promise<Peer> {
  mkdirSync(join(od, 'certs'), { recursive: true });
  const p256 = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await ossl(
    ['req', '-x509', ...p256, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3650', '-sha256', '-subj', '/O=certfleet bench/CN=openssl Bench CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
    od,
    'openssl req -x509 (CA)',
  );
  await ossl(['req', '-new', ...p256, '-keyout', 'device.key', '-out', 'device.csr', '-subj', '/CN=bench-device'], od, 'openssl req (device CSR)');
  writeFileSync(
    join(od, 'ca.cnf'),
    '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\nnew_certs_dir = certs\ncertificate = ca.pem\nprivate_key = ca.key\ndefault_md = sha256\n' +
      'default_days = 365\nunique_subject = no\npolicy = p\nrand_serial = yes\nx509_extensions = device\n[p]\ncommonName = supplied\n' +
      '[device]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = clientAuth\n' +
      'subjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n',
  );
  writeFileSync(join(od, 'index.txt'), '');
  // One CSR, N certificates: the device keys do not matter to OCSP, the serials and the index do.
  await ossl(['ca', '-config', 'ca.cnf', '-batch', '-notext', '-out', 'devices.pem', '-infiles', ...Array<string>(N).fill('device.csr')], od, 'openssl ca (devices)');
  const indexLines = readFileSync(join(od, 'index.txt'), 'utf8').trim().split('\n');
  if (indexLines.length !== N) throw new Error(`openssl ca wrote ${indexLines.length} index lines, not ${N}`);
  const caPem = readFileSync(join(od, 'ca.pem'), 'utf8');
  const peer: Peer = { serials: indexLines.map((l) => l.split('\t')[3]!.toLowerCase()), revoked: new Set(), issuerPem: caPem, trustPem: caPem };
  for (let i = 0; i < N; i += REVOKE_EVERY) {
    const serial = peer.serials[i]!.toUpperCase();
    await ossl(['ca', '-config', 'ca.cnf', '-revoke', `certs/${serial}.pem`, '-crl_reason', 'keyCompromise'], od, `openssl ca -revoke ${serial}`);
    (peer.revoked as Set<string>).add(peer.serials[i]!);
  }
  const revokedLines = readFileSync(join(od, 'index.txt'), 'utf8').split('\n').filter((l) => l.startsWith('R\t')).length;
  if (revokedLines !== peer.revoked.size) throw new Error(`index.txt holds ${revokedLines} R lines, expected ${peer.revoked.size}`);
  await ossl(['req', '-new', ...p256, '-keyout', 'resp.key', '-out', 'resp.csr', '-subj', '/CN=openssl OCSP responder'], od, 'openssl req (responder)');
  writeFileSync(join(od, 'resp.ext'), 'basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\nextendedKeyUsage = OCSPSigning\n1.3.6.1.5.5.7.48.1.5 = ASN1:NULL\n');
  await ossl(['x509', '-req', '-in', 'resp.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x7e57', '-days', '30', '-sha256', '-extfile', 'resp.ext', '-out', 'resp.pem'], od, 'openssl x509 -req (responder)');
  return peer;
}

async function main(): Promise<void> {
  const { initDataDir, startNode } = await import('../packages/server/src/index.js');
  const dir = mkdtempSync(join(tmpdir(), 'certfleet-bench-ocsp-'));
  const children: ChildProcess[] = [];
  const cleanup = (): void => {
    for (const c of children) if (c.exitCode === null && c.pid) tryKill(c);
    rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanup);
  const tryKill = (c: ChildProcess): void => {
    try {
      // openssl runs in its own process group (detached): its -multi workers go with it.
      process.kill(c.spawnargs[0] === 'openssl' ? -c.pid! : c.pid!, 'SIGTERM');
    } catch {
      /* already gone */
    }
  };

  const t0 = performance.now();
  const loadStart = loadavg()[0]!.toFixed(2);
  const osslVersion = run('openssl', ['version'], dir).out.trim();

  // -------------------------------------------------------------- both sets, made side by side
  // The generator loads while they are made; openssl's set is made by spawned openssl processes
  // while certfleet issues in this one.
  const gen = fork(process.argv[1]!, [LOAD_GENERATOR], { execArgv: process.execArgv.filter((a) => !a.startsWith('--cpu-prof')), stdio: 'inherit' });
  children.push(gen);
  const genReady = new Promise<void>((resolve, reject) => {
    gen.once('message', (m: FromGenerator) => (m.kind === 'ready' ? resolve() : reject(new Error('generator did not start'))));
    gen.once('exit', (code) => reject(new Error(`generator exited with ${code}`)));
  });
  const od = join(dir, 'openssl');
  const osSet = opensslSet(od).then((peer) => ({ peer, ms: performance.now() - t0 }));
  osSet.catch(() => {}); // reported when awaited below

  const data = join(dir, 'node');
  await initDataDir({ data });
  const node = await startNode({ data, host: '127.0.0.1', apiPort: 0, mqttPort: 0, httpPort: 0, say: () => {} });
  const s = node.services;
  const issuerId = await s.authorities.defaultIssuerId();
  const [issuing, root] = await s.authorities.chain(issuerId);
  const cf: Peer & { ids: string[] } = { serials: [], revoked: new Set(), issuerPem: issuing!.toPem(), trustPem: root!.toPem(), ids: [] };
  for (let i = 0; i < N; i++) {
    const { record } = await s.issuance.withGeneratedKey({ commonName: `bench-device-${String(i).padStart(4, '0')}` });
    (cf.serials as string[]).push(record.serial);
    cf.ids.push(record.id);
  }
  for (let i = 0; i < N; i += REVOKE_EVERY) {
    await s.revoker.revoke({ id: 'bench' }, cf.ids[i]!, 'keyCompromise');
    (cf.revoked as Set<string>).add(cf.serials[i]!);
  }
  const cfMs = performance.now() - t0;
  const { peer: os, ms: osMs } = await osSet;
  if (os.revoked.size !== cf.revoked.size) throw new Error(`openssl revoked ${os.revoked.size}, certfleet ${cf.revoked.size}`);
  await genReady;
  const osReady = performance.now();

  // -------------------------------------------------------------- the same requests, one per serial
  const requestsFor = (peer: Peer, withNonce: boolean): string[] => {
    const issuer = Certificate.fromDer(decodePem(peer.issuerPem, 'CERTIFICATE'));
    return peer.serials.map((serial) => ocspRequest(certIdFor(issuer, serial, 'sha1').der, withNonce).toString('base64'));
  };

  log(`certfleet OCSP bench: node ${process.version}, ${osslVersion}, ${cpus().length} CPUs, not pinned`);
  log(
    `set-up, side by side: certfleet issued ${fmt(N)} certificates and revoked ${cf.revoked.size} in ${(cfMs / 1000).toFixed(1)} s; ` +
      `openssl made its CA, ${fmt(N)} certificates (openssl ca) and revoked ${os.revoked.size} (openssl ca -revoke) in ${(osMs / 1000).toFixed(1)} s`,
  );
  log(
    `load: one SHA-1 CertID per request, ${CONCURRENCY} in flight, fresh TCP connection per request; ${ROUNDS} rounds, each figure once per round ` +
      `(order rotated): ${WARMUP_MS / 1000} s warm-up (${FIRST_WARMUP_MS / 1000} s in round 1) + ${MEASURE_MS / 1000} s measured`,
  );
  log();

  const load = (job: LoadJob): Promise<LoadResult> =>
    new Promise((resolve) => {
      gen.once('message', (m: FromGenerator) => m.kind === 'result' && resolve(m.result));
      gen.send({ kind: 'run', job } satisfies ToGenerator);
    });

  // -------------------------------------------------------------- the responders, all up at once (idle ones wait in accept)
  // 0. ceiling: a bare responder that answers every request with one fixed response of certfleet's size
  const fixed = await s.ocsp.respond(Buffer.from(requestsFor(cf, false)[1]!, 'base64'));
  const nullHead = Buffer.from(`HTTP/1.1 200 OK\r\nContent-Type: application/ocsp-response\r\nContent-Length: ${fixed.length}\r\nConnection: close\r\n\r\n`, 'latin1');
  const nullServer: Server = createServer((sock) => {
    let seen = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      seen = Buffer.concat([seen, c]);
      const end = seen.indexOf(HEADER_END);
      const len = end < 0 ? undefined : /content-length:\s*(\d+)/i.exec(seen.toString('latin1', 0, end))?.[1];
      if (len !== undefined && seen.length >= end + 4 + Number(len)) sock.end(Buffer.concat([nullHead, fixed]));
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((resolve) => nullServer.listen(0, '127.0.0.1', resolve));
  const nullPort = (nullServer.address() as { port: number }).port;

  // openssl ocsp -index, one process and -multi 2. Its log (a line per request from one process)
  // goes to a file, not through a pipe to this process, which serves certfleet.
  const startOpenssl = async (multi: number): Promise<{ port: number; child: ChildProcess }> => {
    const port = await freePort();
    const args = ['ocsp', '-index', 'index.txt', '-port', String(port), '-rsigner', 'resp.pem', '-rkey', 'resp.key', '-CA', 'ca.pem', '-nmin', '60'];
    if (multi > 1) args.push('-multi', String(multi));
    const logFile = join(od, `ocsp-${multi}.log`);
    const out = openSync(logFile, 'w');
    // Its own process group either way, so its -multi workers stop with it: -multi makes one
    // itself with setpgid, which fails (exit 1, the reason sent to syslog) in a new session.
    const child = spawn('openssl', args, { cwd: od, stdio: ['ignore', out, out], detached: multi === 1 });
    closeSync(out);
    children.push(child);
    await waitForResponder(port, Buffer.from(requestsFor(os, false)[0]!, 'base64'), child).catch((err: Error) => {
      throw new Error(`openssl ocsp${multi > 1 ? ` -multi ${multi}` : ''}: ${err.message}: ${readFileSync(logFile, 'utf8').slice(0, 2000)}`);
    });
    return { port, child };
  };
  const ossl1 = await startOpenssl(1);
  const ossl2 = await startOpenssl(2);

  // certfleet's steady state: every nonce-less answer pre-signed (what its cache is for). Asked in
  // process here, so no figure's warm-up is spent filling it.
  for (const b64 of requestsFor(cf, false)) await s.ocsp.respond(Buffer.from(b64, 'base64'));

  // -------------------------------------------------------------- rounds: every figure once per round, order rotated
  // Interleaved short runs rather than one long run each, so that other work on the machine
  // weighs on every figure alike; ratios are taken within each round, then the median.
  interface Figure {
    readonly key: 'certfleet' | 'certfleetNonce' | 'certfleetKeepAlive' | 'openssl' | 'opensslMulti' | 'ceiling';
    readonly label: string;
    readonly port: number;
    readonly path: string;
    readonly peer: Peer;
    readonly nonce: boolean;
    readonly keepAlive: boolean;
  }
  const figures: Figure[] = [
    { key: 'certfleet', label: 'certfleet POST /ocsp, nonce-less (cached answers)', port: node.ports.http, path: '/ocsp', peer: cf, nonce: false, keepAlive: false },
    { key: 'certfleetNonce', label: 'certfleet POST /ocsp, fresh nonce (signed each)', port: node.ports.http, path: '/ocsp', peer: cf, nonce: true, keepAlive: false },
    { key: 'openssl', label: 'openssl ocsp -index, one process', port: ossl1.port, path: '/', peer: os, nonce: false, keepAlive: false },
    { key: 'opensslMulti', label: 'openssl ocsp -index -multi 2', port: ossl2.port, path: '/', peer: os, nonce: false, keepAlive: false },
    { key: 'ceiling', label: 'null responder: fixed bytes, bare node:net (ceiling)', port: nullPort, path: '/ocsp', peer: cf, nonce: false, keepAlive: false },
    { key: 'certfleetKeepAlive', label: 'info: certfleet nonce-less, keep-alive connections', port: node.ports.http, path: '/ocsp', peer: cf, nonce: false, keepAlive: true },
  ];
  const bodies = new Map(figures.map((f) => [f, requestsFor(f.peer, f.nonce)]));
  const results = new Map<Figure, LoadResult[]>(figures.map((f) => [f, []]));

  const profileTo = process.env.CERTFLEET_BENCH_OCSP_PROFILE;
  const profiling = profileTo !== undefined && profileTo !== '' && profileTo !== '0';
  const session = profiling ? new Session() : undefined;
  const profiles: Array<{ label: string; top: ReturnType<typeof topSelfTime> }> = [];
  /** Profiles this process (the certfleet node) while f runs; the last round only. */
  const profiled = async <T>(label: string, f: () => Promise<T>): Promise<T> => {
    if (!session) return f();
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: 200 });
    await session.post('Profiler.start');
    const r = await f();
    const { profile } = await session.post('Profiler.stop');
    session.disconnect();
    profiles.push({ label, top: topSelfTime(profile as unknown as Parameters<typeof topSelfTime>[0]) });
    if (profileTo !== '1') writeFileSync(join(profileTo!, `ocsp-${label.replace(/\W+/g, '-')}.cpuprofile`), JSON.stringify(profile));
    return r;
  };

  for (let round = 0; round < ROUNDS; round++) {
    for (let k = 0; k < figures.length; k++) {
      const f = figures[(k + round) % figures.length]!;
      const job: LoadJob = {
        label: f.label,
        port: f.port,
        path: f.path,
        bodies: bodies.get(f)!,
        nonce: f.nonce,
        keepAlive: f.keepAlive,
        warmupMs: round === 0 ? FIRST_WARMUP_MS : WARMUP_MS,
        measureMs: MEASURE_MS,
        sample: SAMPLE,
      };
      const r = round === ROUNDS - 1 && f.port === node.ports.http ? await profiled(f.label, () => load(job)) : await load(job);
      results.get(f)!.push(r);
    }
  }
  gen.send({ kind: 'exit' } satisfies ToGenerator);

  // Where certfleet's time goes: respond() in process, no HTTP, one call at a time; and the three
  // store reads a nonce answer makes (the CA's revocation, the CA, the certificate).
  const usPer = async (n: number, f: (i: number) => Promise<unknown>): Promise<number> => {
    for (let i = 0; i < Math.min(n, 200); i++) await f(i); // warm-up
    const start = performance.now();
    for (let i = 0; i < n; i++) await f(i);
    return ((performance.now() - start) * 1000) / n;
  };
  const plainDer = requestsFor(cf, false).map((b) => Buffer.from(b, 'base64'));
  const nonceDer = requestsFor(cf, true).map((b) => Buffer.from(b, 'base64'));
  const inProcess = {
    cachedRespond: await usPer(5 * N, (i) => s.ocsp.respond(plainDer[i % N]!)),
    nonceRespond: await usPer(2 * N, (i) => {
      const der = nonceDer[i % N]!;
      randomFillSync(der, der.length - NONCE_BYTES, NONCE_BYTES);
      return s.ocsp.respond(der);
    }),
    caRevocation: await usPer(N, () => s.revoker.caRevocation(issuerId)),
    caRecord: await usPer(N, () => s.authorities.get(issuerId)),
    certificateBySerial: await usPer(N, (i) => s.store.getCertificateBySerial(cf.serials[i % N]!)),
  };
  const storeReads = inProcess.caRevocation + inProcess.caRecord + inProcess.certificateBySerial;

  for (const o of [ossl1, ossl2]) {
    tryKill(o.child);
    if (o.child.exitCode === null) await new Promise((resolve) => o.child.once('exit', resolve));
  }
  await new Promise((resolve) => nullServer.close(resolve));
  await node.close();
  const loadDone = performance.now();

  /** A figure over all rounds: the median rate, latencies pooled, errors summed, samples of the last round. */
  const merged = (f: Figure) => {
    const rs = results.get(f)!;
    const lat = Float64Array.from(rs.flatMap((r) => r.latencies)).sort();
    return {
      label: f.label,
      perSec: median(rs.map((r) => r.perSec)),
      rounds: rs.map((r) => Math.round(r.perSec)),
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      responseBytes: rs.at(-1)!.responseBytes,
      completed: rs.reduce((a, r) => a + r.completed, 0),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      timeouts: rs.reduce((a, r) => a + r.timeouts, 0),
      firstError: rs.find((r) => r.firstError)?.firstError,
      samples: rs.at(-1)!.samples,
    };
  };
  type Merged = ReturnType<typeof merged>;
  const m = Object.fromEntries(figures.map((f) => [f.key, merged(f)])) as Record<Figure['key'], Merged>;
  /** Median over rounds of a's rate / b's rate in the same round. */
  const pairedRatio = (a: Figure['key'], b: Figure['key']): number => {
    const fa = figures.find((f) => f.key === a)!;
    const fb = figures.find((f) => f.key === b)!;
    return median(results.get(fa)!.map((r, i) => r.perSec / results.get(fb)![i]!.perSec));
  };

  // -------------------------------------------------------------- correctness of what was measured
  const vd = join(dir, 'verify');
  mkdirSync(vd);
  const problems: string[] = [];
  const verify = (r: Merged, peer: Peer, nonce: boolean): number => {
    writeFileSync(join(vd, 'issuer.pem'), peer.issuerPem);
    writeFileSync(join(vd, 'trust.pem'), peer.trustPem);
    let ok = 0;
    if (r.samples.length !== SAMPLE) problems.push(`${r.label}: ${r.samples.length}/${SAMPLE} sampled responses came back`);
    if (!r.samples.some((smp) => peer.revoked.has(peer.serials[smp.index]!))) problems.push(`${r.label}: no revoked certificate among the samples`);
    for (const smp of r.samples) {
      const serial = peer.serials[smp.index]!;
      const response = Buffer.from(smp.response, 'base64');
      writeFileSync(join(vd, 'resp.der'), response);
      // -no_nonce: the request openssl builds here from -serial is not the one that was sent.
      const out = run('openssl', ['ocsp', '-respin', 'resp.der', '-issuer', 'issuer.pem', '-CAfile', 'trust.pem', '-no_nonce', '-serial', `0x${serial}`], vd).out;
      const status = new RegExp(`0x${serial}: (good|revoked|unknown)`, 'i').exec(out)?.[1];
      const expected = peer.revoked.has(serial) ? 'revoked' : 'good';
      const why: string[] = [];
      if (!out.includes('Response verify OK')) why.push('does not verify');
      if (status !== expected) why.push(`status ${status ?? '?'}, expected ${expected}`);
      if (expected === 'revoked' && !/Reason: keyCompromise/.test(out)) why.push('no keyCompromise reason');
      if (nonce && response.indexOf(Buffer.from(smp.request, 'base64').subarray(-NONCE_BYTES)) < 0) why.push('nonce not echoed');
      if (why.length) problems.push(`${r.label}, serial ${serial}: ${why.join('; ')}\n${out.trim()}`);
      else ok++;
    }
    return ok;
  };
  const checked = {
    certfleet: verify(m.certfleet, cf, false),
    certfleetNonce: verify(m.certfleetNonce, cf, true),
    certfleetKeepAlive: verify(m.certfleetKeepAlive, cf, false),
    openssl: verify(m.openssl, os, false),
    opensslMulti: verify(m.opensslMulti, os, false),
  };
  const verified = Object.values(checked).reduce((a, b) => a + b, 0);
  for (const r of Object.values(m)) {
    if (r.errors || r.timeouts) problems.push(`${r.label}: ${r.errors} errors, ${r.timeouts} timeouts${r.firstError ? ` (first: ${r.firstError})` : ''}`);
    if (!r.completed) problems.push(`${r.label}: nothing completed`);
  }

  // -------------------------------------------------------------- report
  const verifiedOf: Partial<Record<Figure['key'], number>> = checked;
  const w = Math.max(...figures.map((f) => f.label.length));
  log(`${'responder (fresh connection per request unless said)'.padEnd(w)}  ${'responses/s'.padStart(11)}  ${'rounds'.padStart(20)}  ${'p50 ms'.padStart(6)}  ${'p99 ms'.padStart(6)}  bytes  err  t/o  verified`);
  log(`${'-'.repeat(w)}  ${'-'.repeat(11)}  ${'-'.repeat(20)}  ------  ------  -----  ---  ---  --------`);
  for (const f of figures) {
    const r = m[f.key];
    const v = verifiedOf[f.key];
    log(
      `${f.label.padEnd(w)}  ${fmt(r.perSec).padStart(11)}  ${r.rounds.map(fmt).join(' ').padStart(20)}  ${ms(r.p50Ms).padStart(6)}  ${ms(r.p99Ms).padStart(6)}  ` +
        `${String(r.responseBytes || '-').padStart(5)}  ${String(r.errors).padStart(3)}  ${String(r.timeouts).padStart(3)}  ${v === undefined ? '-' : `${v}/${SAMPLE}`}`,
    );
  }
  const x = (v: number): string => `${v.toFixed(2)}×`;
  const ratios = {
    noncelessVsOpenssl: pairedRatio('certfleet', 'openssl'),
    noncelessVsOpensslMulti2: pairedRatio('certfleet', 'opensslMulti'),
    nonceVsOpenssl: pairedRatio('certfleetNonce', 'openssl'),
    nonceVsOpensslMulti2: pairedRatio('certfleetNonce', 'opensslMulti'),
    ceilingVsOpensslMulti2: pairedRatio('ceiling', 'opensslMulti'),
    noncelessVsCeiling: pairedRatio('certfleet', 'ceiling'),
    keepAliveVsOpensslMulti2: pairedRatio('certfleetKeepAlive', 'opensslMulti'),
  };
  const strongerKey = m.opensslMulti.perSec >= m.openssl.perSec ? 'opensslMulti' : 'openssl';
  const goal = pairedRatio('certfleet', strongerKey);
  log();
  log(`ratios (median over the ${ROUNDS} rounds of the ratio within each round)`);
  log(`  certfleet nonce-less / openssl one process       ${x(ratios.noncelessVsOpenssl)}`);
  log(`  certfleet nonce-less / openssl -multi 2          ${x(ratios.noncelessVsOpensslMulti2)}`);
  log(`  certfleet with nonce / openssl one process       ${x(ratios.nonceVsOpenssl)}`);
  log(`  certfleet with nonce / openssl -multi 2          ${x(ratios.nonceVsOpensslMulti2)}`);
  log(`  null responder ceiling / openssl -multi 2        ${x(ratios.ceilingVsOpensslMulti2)}`);
  log(`  certfleet nonce-less / null responder ceiling    ${x(ratios.noncelessVsCeiling)}`);
  log(`  info: certfleet keep-alive / openssl -multi 2    ${x(ratios.keepAliveVsOpensslMulti2)}   (openssl 3.0's responder closes every connection)`);
  const ceilingVsStronger = pairedRatio('ceiling', strongerKey);
  log(
    `  goal: certfleet nonce-less ≥ ${GOAL}× the stronger openssl (${m[strongerKey].label.replace('openssl ocsp -index', 'openssl')}): ${x(goal)}, ${goal >= GOAL ? 'met' : 'NOT met'}` +
      (ceilingVsStronger < GOAL ? `; even the null responder is only ${x(ceilingVsStronger)} it with this load on this machine` : ''),
  );
  log();
  log(
    `certfleet respond() in process, µs per call: cached nonce-less answer ${inProcess.cachedRespond.toFixed(1)}; ` +
      `with a nonce ${inProcess.nonceRespond.toFixed(1)}, of which store reads ${storeReads.toFixed(1)} ` +
      `(caRevocation ${inProcess.caRevocation.toFixed(1)} + authorities.get ${inProcess.caRecord.toFixed(1)} + getCertificateBySerial ${inProcess.certificateBySerial.toFixed(1)}) ` +
      `and the rest (parse, build, P-256 sign, assemble) ${(inProcess.nonceRespond - storeReads).toFixed(1)}`,
  );
  log(
    `openssl ocsp -respin … -issuer … -CAfile …: ${verified}/${5 * SAMPLE} sampled responses verify with the expected status` +
      `${checked.certfleetNonce === SAMPLE ? ' (nonces echoed)' : ''}; load average ${loadStart} before, ${loadavg()[0]!.toFixed(2)} after` +
      `; load ${((loadDone - osReady) / 1000).toFixed(0)} s, total ${((performance.now() - t0) / 1000).toFixed(0)} s`,
  );
  for (const p of profiles) {
    log();
    log(`CPU profile of the certfleet process, ${p.label}, last round (self time):`);
    for (const l of p.top.areas) log(`  ${l}`);
    log('  top functions:');
    for (const l of p.top.functions) log(`  ${l}`);
  }
  if (profiles.length) {
    log('  (native: writev and close are socket syscalls, writev on loopback also running the receiving TCP path; run is node:crypto');
    log('   signing; Statement and all are better-sqlite3 preparing and running a query; (idle) is this process waiting)');
  }
  const fig = (r: Merged) => ({
    perSec: Math.round(r.perSec),
    rounds: r.rounds,
    p50Ms: Number(r.p50Ms.toFixed(3)),
    p99Ms: Number(r.p99Ms.toFixed(3)),
    errors: r.errors,
    timeouts: r.timeouts,
  });
  if (problems.length) {
    log();
    log(`FAIL: the figures do not count:\n  ${problems.join('\n  ')}`);
  }
  log(
    JSON.stringify({
      bench: 'ocsp',
      node: process.version,
      openssl: osslVersion,
      cpus: cpus().length,
      certificates: N,
      revoked: cf.revoked.size,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      measureSecondsPerRound: MEASURE_MS / 1000,
      profiled: profiling,
      loadAverage: [Number(loadStart), Number(loadavg()[0]!.toFixed(2))],
      certfleetNonceless: fig(m.certfleet),
      certfleetNonce: fig(m.certfleetNonce),
      certfleetKeepAlive: fig(m.certfleetKeepAlive),
      opensslOne: fig(m.openssl),
      opensslMulti2: fig(m.opensslMulti),
      nullCeiling: fig(m.ceiling),
      ratios: Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, Number(v.toFixed(3))])),
      inProcessMicros: Object.fromEntries(Object.entries(inProcess).map(([k, v]) => [k, Number(v.toFixed(2))])),
      goalMet: goal >= GOAL,
      sampleVerified: checked,
      ok: problems.length === 0,
    }),
  );
  process.exitCode = problems.length ? 1 : 0;
}

if (process.argv.includes(LOAD_GENERATOR)) runGenerator();
else await main();
