/**
 * CRL build: a 1,000,000-entry CRL (16-byte serials, revocation dates over
 * two years, reason codes mixed) prepared with prepareCrl, signed with the
 * issuing CA's P-256 key and assembled, on one thread, against the peers
 * measured in the same run (DESIGN.md "Performance baseline"):
 *   1. `openssl ca -gencrl` over an index.txt holding the same entries (its
 *      time includes reading index.txt, which is its database);
 *   2. @peculiar/x509's X509CrlGenerator on 5,000 entries, scaled linearly:
 *      a lower bound, as its cost grows faster than the entry count (1,000
 *      entries took 0.35 s here, 8,000 took 2.9 s; 100,000 did not finish
 *      in ten minutes).
 * The million-entry CRL must pass `openssl crl -verify` and read back with
 * parseCrl, or the run exits non-zero: the figure is for correct CRLs only.
 * Never a timed test in CI; run with `node --import tsx bench/crl.ts`
 * (CERTFLEET_BENCH_CRL_N overrides the entry count).
 */
import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { randomBytes, webcrypto } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import * as x509 from '@peculiar/x509';
import {
  assembleCrl,
  type CrlEntry,
  issuerInfoFromCertificate,
  parseCrl,
  prepareCrl,
  PROFILES,
  reasonName,
  signWith,
  verifyCrl,
} from '@certfleet/pki';
import { makeChild, makeRoot } from '../packages/pki/src/testing/hierarchy.js';

const N = Number(process.env.CERTFLEET_BENCH_CRL_N ?? 1_000_000);
const ROUNDS = 3;
const PEER_N = Math.min(N, 5_000);
const REASONS = [0, 0, 1, 4, 5]; // unspecified (no extension) is the common case

const log = (s = ''): void => void process.stdout.write(`${s}\n`);
const ms = (x: number): string => `${x.toFixed(0)} ms`;
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const mb = (bytes: number): string => `${(bytes / 1e6).toFixed(1)} MB`;

function run(cmd: string, args: string[], cwd: string): { ok: boolean; out: string } {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', maxBuffer: 1 << 26 });
  return { ok: r.status === 0, out: `${r.stdout}${r.stderr}` };
}

// ---------------------------------------------------------------- set-up (untimed)

const t0 = performance.now();
const root = makeRoot('ec-p256', 'CN=Bench Root,O=certfleet');
const inter = makeChild(root, PROFILES['intermediate-ca'], { name: 'CN=Bench Issuing CA,O=certfleet' });
const issuer = issuerInfoFromCertificate('inter', inter.cert);
const now = Math.floor(Date.now() / 1000) * 1000;
const serials = randomBytes(16 * N);
const entries: CrlEntry[] = new Array(N);
for (let i = 0; i < N; i++) {
  if (serials[16 * i] === 0) serials[16 * i] = 1;
  entries[i] = { serial: serials.toString('hex', 16 * i, 16 * i + 16), revokedAt: new Date(now - ((i * 63_113) % (2 * 365 * 86_400)) * 1000), reason: REASONS[i % REASONS.length]! };
}
const dir = mkdtempSync(join(tmpdir(), 'certfleet-bench-crl-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true })); // ~150 MB of index.txt and CRLs
const osslVersion = run('openssl', ['version'], dir).out.trim();
log(`certfleet CRL bench: node ${process.version}, ${osslVersion}, ${cpus().length} CPUs, one thread, not pinned`);
log(`set-up: CA hierarchy and ${N.toLocaleString('en-US')} entries in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
log();

// ---------------------------------------------------------------- ours

const window = { thisUpdate: new Date(now), nextUpdate: new Date(now + 7 * 86_400_000) };
const rounds: Array<{ prepare: number; sign: number; assemble: number }> = [];
let der: Buffer = Buffer.alloc(0);
for (let r = 0; r < ROUNDS; r++) {
  const a = performance.now();
  const p = prepareCrl({ issuer, crlNumber: BigInt(r + 1), ...window, entries, idp: { url: 'http://localhost:8080/crl/inter.crl' } });
  const b = performance.now();
  const signature = signWith(issuer.scheme, p.tbs, inter.key);
  const c = performance.now();
  der = assembleCrl(p.tbs, issuer.scheme, signature);
  rounds.push({ prepare: b - a, sign: c - b, assemble: performance.now() - c });
}
const prep = median(rounds.map((x) => x.prepare));
const sign = median(rounds.map((x) => x.sign));
const asm = median(rounds.map((x) => x.assemble));
const ours = median(rounds.map((x) => x.prepare + x.sign + x.assemble));

// Correctness: openssl must verify the very CRL measured, and it must read back.
writeFileSync(join(dir, 'crl.der'), der);
writeFileSync(join(dir, 'chain.pem'), root.cert.toPem() + inter.cert.toPem());
const check = run('openssl', ['crl', '-inform', 'DER', '-in', 'crl.der', '-CAfile', 'chain.pem', '-noout', '-verify'], dir);
const parsed = parseCrl(der);
if (!check.out.includes('verify OK') || parsed.count !== N || !verifyCrl(parsed, inter.cert.publicKey)) {
  log(`FAIL: the CRL does not verify (openssl: ${check.out.trim()}; parsed ${parsed.count} entries)`);
  process.exit(1);
}
const tp = performance.now();
let iterated = 0;
for (const _ of parsed.entries()) iterated++;
const iterate = performance.now() - tp;

// ---------------------------------------------------------------- peer 1: openssl ca -gencrl

const ymd = (d: Date): string => d.toISOString().slice(2, 19).replace(/[-T:]/g, '') + 'Z';
const index = entries
  .map((e) => `R\t491231235959Z\t${ymd(e.revokedAt)}${e.reason ? `,${reasonName(e.reason)}` : ''}\t${e.serial.toUpperCase()}\tunknown\t/CN=d\n`)
  .join('');
writeFileSync(join(dir, 'index.txt'), index);
writeFileSync(join(dir, 'crlnumber'), '01\n');
writeFileSync(join(dir, 'ca.pem'), inter.cert.toPem());
writeFileSync(join(dir, 'ca.key'), inter.key.export({ format: 'pem', type: 'pkcs8' }));
writeFileSync(
  join(dir, 'ca.cnf'),
  '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ncertificate = ca.pem\nprivate_key = ca.key\n' +
    'default_md = sha256\ndefault_crl_days = 7\nunique_subject = no\ncrl_extensions = e\n[e]\nauthorityKeyIdentifier = keyid:always\n',
);
const to = performance.now();
const gencrl = run('openssl', ['ca', '-config', 'ca.cnf', '-gencrl', '-out', 'ossl.pem'], dir);
const ossl = performance.now() - to;
if (!gencrl.ok) {
  log(`FAIL: openssl ca -gencrl: ${gencrl.out}`);
  process.exit(1);
}
run('openssl', ['crl', '-in', 'ossl.pem', '-outform', 'DER', '-out', 'ossl.der'], dir); // untimed: ca writes PEM only
const osslSize = Number(run('stat', ['-c', '%s', 'ossl.der'], dir).out.trim());

// ---------------------------------------------------------------- peer 2: @peculiar/x509

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);
const signingKey = await webcrypto.subtle.importKey('pkcs8', inter.key.export({ format: 'der', type: 'pkcs8' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign']);
const tx = performance.now();
await x509.X509CrlGenerator.create({
  issuer: new x509.Name(inter.cert.subjectDer),
  ...window,
  signingAlgorithm: { name: 'ECDSA', hash: 'SHA-256' },
  signingKey,
  entries: entries.slice(0, PEER_N).map((e) => ({ serialNumber: e.serial, revocationDate: e.revokedAt, ...(e.reason ? { reason: e.reason } : {}) })),
});
const peculiar = ((performance.now() - tx) * N) / PEER_N;

// ---------------------------------------------------------------- report

const perEntry = (t: number): string => `${((t * 1000) / N).toFixed(2)} µs/entry`;
log(`ours: ${N.toLocaleString('en-US')}-entry CRL, ${mb(der.length)} (${(der.length / N).toFixed(1)} bytes/entry), median of ${ROUNDS}`);
log(`  prepareCrl      ${ms(prep).padStart(8)}   ${perEntry(prep)}`);
log(`  sign (P-256)    ${ms(sign).padStart(8)}`);
log(`  assembleCrl     ${ms(asm).padStart(8)}`);
log(`  total           ${ms(ours).padStart(8)}   ${perEntry(ours)}   (rounds: ${rounds.map((x) => ms(x.prepare + x.sign + x.assemble)).join(', ')})`);
log(`  openssl crl -verify: verify OK; parseCrl counted ${parsed.count.toLocaleString('en-US')} and iterated ${iterated.toLocaleString('en-US')} entries in ${ms(iterate)}`);
log();
log(`peer: openssl ca -gencrl          ${ms(ossl).padStart(8)}   ${mb(osslSize)}   ours is ${(ossl / ours).toFixed(1)}× faster`);
log(`peer: @peculiar/x509, ${PEER_N.toLocaleString('en-US')} entries × ${N / PEER_N} ${ms(peculiar).padStart(8)}   (a lower bound)   ours is ≥ ${(peculiar / ours).toFixed(0)}× faster`);
