/**
 * Issuance throughput on ONE core, in process: verifyCsr → prepareIssuance →
 * signWith → assembleCertificate for distinct P-256 CSRs, against the peers
 * measured in the same run (DESIGN.md "Performance baseline"):
 *   1. `openssl speed ecdsap256`: the bound for one CSR verify + one sign;
 *   2. node:crypto's raw P-256 sign;
 *   3. @peculiar/x509: CSR verify + X509CertificateGenerator.create;
 *   4. the schema parse of a CSR (AsnConvert) against our DER walker (csr.ts).
 * A sample of the issued certificates must pass `openssl verify -x509_strict`,
 * or the run exits non-zero: the figure is for correct certificates only.
 * Never a timed test in CI; run by `npm run bench:issue`.
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { createPublicKey, randomBytes, sign, webcrypto } from 'node:crypto';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { CertificationRequest } from '@peculiar/asn1-csr';
import { AsnConvert } from '@peculiar/asn1-schema';
import * as x509 from '@peculiar/x509';
import {
  assembleCertificate,
  buildCsr,
  CertificateTemplate,
  encodePem,
  generateKeyPair,
  importSpki,
  issuerInfoFromCertificate,
  OID,
  parseCsr,
  prepareIssuance,
  PROFILES,
  signWith,
  verifyCsr,
} from '@certfleet/pki';
import { makeChild, makeRoot } from '../packages/pki/src/testing/hierarchy.js';
import { openssl } from '../packages/pki/src/testing/openssl.js';

const N = 5_000; // distinct CSRs issued per round
const ROUNDS = 5;
const PEER_N = 1_000; // @peculiar/x509 is slower: fewer per round
const PEER_ROUNDS = 3;
const SAMPLE = 20; // certificates checked by openssl verify
const TARGET = 5_000; // certificates/s per core: the target der.ts is written for

// ---------------------------------------------------------------- one core

// JavaScript runs on one thread, but V8's GC and libuv have helpers; pin the
// whole process (and the openssl it spawns) to one CPU so "per core" is exact.
// CERTFLEET_BENCH_PIN=0 runs unpinned, for comparison.
function pinToOneCore(): string {
  if (process.env.CERTFLEET_BENCH_PINNED) return `pinned to CPU ${process.env.CERTFLEET_BENCH_PINNED}`;
  if (process.env.CERTFLEET_BENCH_PIN === '0') return 'not pinned (CERTFLEET_BENCH_PIN=0)';
  const probe = spawnSync('taskset', ['-cp', String(process.pid)], { encoding: 'utf8' });
  const cpu = /list:\s*(\d+)/.exec(probe.stdout ?? '')?.[1];
  if (probe.status !== 0 || cpu === undefined) return 'not pinned (taskset unavailable)';
  const r = spawnSync('taskset', ['-c', cpu, process.execPath, ...process.execArgv, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, CERTFLEET_BENCH_PINNED: cpu },
  });
  process.exit(r.status ?? 1);
}
const pinning = pinToOneCore();

// ---------------------------------------------------------------- helpers

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Calls fn(i) for i = 0, 1, … until at least `ms` have passed; returns calls per second. */
function perSecond(fn: (i: number) => unknown, ms = 1000): number {
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    for (let k = 0; k < 200; k++) fn(n++);
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return (n / elapsed) * 1000;
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US');
const ratio = (a: number, b: number): string => `${(a / b).toFixed(2)}×`;
const log = (s = ''): void => void process.stdout.write(`${s}\n`);

// ---------------------------------------------------------------- set-up (untimed)

const t0 = performance.now();
const root = makeRoot('ec-p256', 'CN=Bench Root,O=certfleet');
const inter = makeChild(root, PROFILES['intermediate-ca'], { name: 'CN=Bench Issuing CA,O=certfleet' });
const template = new CertificateTemplate(issuerInfoFromCertificate('ca', inter.cert), PROFILES.device);
const scheme = template.issuer.scheme;
const caKey = inter.key;

const csrs: Buffer[] = [];
for (let i = 0; i < N; i++) {
  csrs.push(
    buildCsr({
      subject: [{ type: OID.commonName, value: `device-${String(i).padStart(5, '0')}` }],
      ...generateKeyPair('ec-p256'),
      sans: [{ type: 'uri', value: `urn:certfleet:device:${i}` }],
    }),
  );
}
log(`certfleet issuance bench: node ${process.version}, ${openssl(['version']).out.trim()}, ${cpus().length} CPUs, ${pinning}`);
log(`set-up: CA hierarchy and ${fmt(N)} distinct P-256 CSRs (${csrs[0]!.length} bytes each) in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
log();

// ---------------------------------------------------------------- ours

function prepare(der: Buffer) {
  const csr = verifyCsr(der);
  return prepareIssuance(template, { subject: csr.subject, publicKey: csr.publicKey, sans: csr.requestedSans, now: new Date() });
}

/** The whole hot path for one request. */
function issue(der: Buffer): Buffer {
  const p = prepare(der);
  return assembleCertificate(p.tbs, scheme, signWith(scheme, p.tbs, caKey));
}

for (let i = 0; i < Math.min(1000, N); i++) issue(csrs[i]!); // warm-up
const oursRounds: number[] = [];
let lastRound: Buffer[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const out: Buffer[] = new Array(N);
  const start = performance.now();
  for (let i = 0; i < N; i++) out[i] = issue(csrs[i]!);
  oursRounds.push((N / (performance.now() - start)) * 1000);
  lastRound = out;
}
const ours = median(oursRounds);

// Correctness: a spread sample must chain to the root under openssl's strict checks.
const files: Record<string, string> = { 'root.pem': root.cert.toPem(), 'inter.pem': inter.cert.toPem() };
const names: string[] = [];
for (let k = 0; k < SAMPLE; k++) {
  const name = `c${String(k).padStart(2, '0')}.pem`;
  files[name] = encodePem('CERTIFICATE', lastRound[Math.floor((k * N) / SAMPLE)]!);
  names.push(name);
}
const check = openssl(['verify', '-x509_strict', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', ...names], files);
const verified = names.filter((n) => check.out.includes(`${n}: OK`)).length;
if (!check.ok || verified !== SAMPLE) {
  log(`FAIL: openssl verify -x509_strict accepted ${verified}/${SAMPLE} sampled certificates:\n${check.out}`);
  process.exit(1);
}

// Where the time goes: the path cut after each step, each variant run over
// the same distinct CSRs (best of two passes), so the increments add up to the
// whole (a key imported a moment ago verifies slower than a reused one would).
function usPerCsr(fn: (der: Buffer) => unknown): number {
  let best = Infinity;
  for (let pass = 0; pass < 2; pass++) {
    const start = performance.now();
    for (let i = 0; i < N; i++) fn(csrs[i]!);
    best = Math.min(best, ((performance.now() - start) * 1000) / N);
  }
  return best;
}
const stages: Array<[string, number]> = [
  ['parseCsr', usPerCsr((d) => parseCsr(d))],
  ['importSpki (JWK)', usPerCsr((d) => importSpki(parseCsr(d).spki))],
  ['CSR signature check', usPerCsr((d) => verifyCsr(d))],
  ['prepareIssuance', usPerCsr(prepare)],
  ['sign + assemble', usPerCsr(issue)],
];
const breakdown = stages.map(([label, us], k) => [label, us - (k > 0 ? stages[k - 1]![1] : 0)] as const);
// keys.ts imports EC keys as JWK rather than DER; this is the figure behind that.
const derImport = usPerCsr((d) => createPublicKey({ key: parseCsr(d).spki, format: 'der', type: 'spki' })) - stages[0]![1];

// ---------------------------------------------------------------- peer 1: openssl speed

const speed = openssl(['speed', '-seconds', '3', '-elapsed', 'ecdsap256']);
const row = /256 bits ecdsa \(nistp256\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)/.exec(speed.out);
if (!speed.ok || !row) {
  log(`FAIL: cannot read openssl speed output:\n${speed.out}`);
  process.exit(1);
}
const osslSign = Number(row[1]);
const osslVerify = Number(row[2]);
const osslBound = 1 / (1 / osslSign + 1 / osslVerify);

// ---------------------------------------------------------------- peer 2: node:crypto raw sign

const msg = randomBytes(300);
const nodeSign = perSecond(() => sign('sha256', msg, caKey), 2000);

// ---------------------------------------------------------------- peer 3: @peculiar/x509

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const caCryptoKey = await webcrypto.subtle.importKey(
  'pkcs8',
  caKey.export({ format: 'der', type: 'pkcs8' }),
  { name: 'ECDSA', namedCurve: 'P-256' },
  false,
  ['sign'],
);
const peerIssuer = new x509.X509Certificate(inter.cert.der).subjectName;
const peerFixed = [
  new x509.BasicConstraintsExtension(false, undefined, true),
  new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
  new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
  new x509.AuthorityKeyIdentifierExtension(inter.cert.subjectKeyIdentifier()!.toString('hex')),
];

/** The same issuance as ours (same profile, same extensions), written as @peculiar/x509's documentation shows. */
async function peerIssue(der: Buffer): Promise<x509.X509Certificate> {
  const req = new x509.Pkcs10CertificateRequest(der);
  if (!(await req.verify())) throw new Error('CSR signature does not verify');
  const san = req.getExtension(OID.subjectAltName);
  const serial = randomBytes(16);
  serial[0] = (serial[0]! & 0x7f) | 0x01;
  const now = Date.now();
  return x509.X509CertificateGenerator.create({
    serialNumber: serial.toString('hex'),
    subject: req.subjectName,
    issuer: peerIssuer,
    notBefore: new Date(now - 3600_000),
    notAfter: new Date(now + 365 * 86_400_000),
    publicKey: req.publicKey,
    signingKey: caCryptoKey,
    signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
    extensions: [...peerFixed, await x509.SubjectKeyIdentifierExtension.create(req.publicKey), ...(san ? [san] : [])],
  });
}

for (let i = 0; i < 200; i++) await peerIssue(csrs[i]!); // warm-up
const peerRounds: number[] = [];
let peerSample: x509.X509Certificate | undefined;
for (let r = 0; r < PEER_ROUNDS; r++) {
  const start = performance.now();
  for (let i = 0; i < PEER_N; i++) peerSample = await peerIssue(csrs[(r * PEER_N + i) % N]!);
  peerRounds.push((PEER_N / (performance.now() - start)) * 1000);
}
const peer = median(peerRounds);
const peerCheck = openssl(['verify', '-x509_strict', '-CAfile', 'root.pem', '-untrusted', 'inter.pem', 'p.pem'], {
  'root.pem': root.cert.toPem(),
  'inter.pem': inter.cert.toPem(),
  'p.pem': peerSample!.toString('pem'),
});

// ---------------------------------------------------------------- peer 4: CSR parse, schema vs DER walk

for (let i = 0; i < 2000; i++) AsnConvert.parse(csrs[i % N]!, CertificationRequest); // warm-up
const asnParse = perSecond((i) => AsnConvert.parse(csrs[i % N]!, CertificationRequest), 1500);
const oursParse = perSecond((i) => parseCsr(csrs[i % N]!), 1500);

// ---------------------------------------------------------------- report

const rows: Array<[string, number, string]> = [
  ['certfleet: verifyCsr → prepare → sign → assemble', ours, `certificates/s, median of ${ROUNDS} × ${fmt(N)}`],
  ['openssl speed ecdsap256: sign', osslSign, 'signatures/s'],
  ['openssl speed ecdsap256: verify', osslVerify, 'verifications/s'],
  ['  bound: 1 / (1/sign + 1/verify)', osslBound, 'CSR verify + certificate sign /s'],
  ['node:crypto sign(sha256, 300 B, P-256)', nodeSign, 'signatures/s'],
  ['@peculiar/x509: CSR verify + generator', peer, `certificates/s, median of ${PEER_ROUNDS} × ${fmt(PEER_N)}`],
  ['CSR parse: certfleet parseCsr (DER walk)', oursParse, 'parses/s'],
  ['CSR parse: AsnConvert.parse(CertificationRequest)', asnParse, 'parses/s'],
];
const w = Math.max(...rows.map(([l]) => l.length));
log(`${'measurement'.padEnd(w)}  ${'per second'.padStart(10)}  unit`);
log(`${'-'.repeat(w)}  ${'-'.repeat(10)}  ${'-'.repeat(36)}`);
for (const [label, value, unit] of rows) log(`${label.padEnd(w)}  ${fmt(value).padStart(10)}  ${unit}`);
log();
log(`certfleet rounds (certificates/s): ${oursRounds.map(fmt).join(', ')}`);
log(`certfleet µs per certificate, step by step: ${breakdown.map(([l, us]) => `${l} ${us.toFixed(1)}`).join(' + ')} = ${stages.at(-1)![1].toFixed(1)}`);
log(`  (importSpki through DER instead of JWK: ${derImport.toFixed(1)} µs)`);
log();
log('ratios');
log(`  certfleet / openssl bound        ${ratio(ours, osslBound)}`);
log(`  certfleet / @peculiar/x509       ${ratio(ours, peer)}`);
log(`  certfleet / ${fmt(TARGET)} target         ${ratio(ours, TARGET)}`);
log(`  parseCsr / AsnConvert.parse      ${ratio(oursParse, asnParse)}`);
log(`  node sign / openssl sign         ${ratio(nodeSign, osslSign)}`);
log();
log(`openssl verify -x509_strict: ${verified}/${SAMPLE} sampled certfleet certificates OK; @peculiar/x509 sample: ${peerCheck.ok ? 'OK' : `FAILED (${peerCheck.out.trim().split('\n').pop()})`}`);
log(
  JSON.stringify({
    bench: 'issue',
    node: process.version,
    cores: 1,
    pinned: pinning.startsWith('pinned'),
    certfleetPerSec: Math.round(ours),
    certfleetRounds: oursRounds.map(Math.round),
    opensslSignPerSec: osslSign,
    opensslVerifyPerSec: osslVerify,
    opensslBoundPerSec: Math.round(osslBound),
    nodeSignPerSec: Math.round(nodeSign),
    peculiarPerSec: Math.round(peer),
    parseCsrPerSec: Math.round(oursParse),
    asnParsePerSec: Math.round(asnParse),
    stepsMicros: Object.fromEntries(breakdown.map(([l, us]) => [l, Number(us.toFixed(2))])),
    derKeyImportMicros: Number(derImport.toFixed(2)),
    ratios: {
      vsOpensslBound: Number((ours / osslBound).toFixed(3)),
      vsPeculiar: Number((ours / peer).toFixed(3)),
      vsTarget: Number((ours / TARGET).toFixed(3)),
      parseVsAsn: Number((oursParse / asnParse).toFixed(3)),
    },
    sampleVerified: verified,
  }),
);
