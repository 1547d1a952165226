/**
 * The fleet audit at a million certificates. Not a test: `npm run bench:audit [certificates]`.
 *
 * Fills a fresh SQLite file and a temporary PostgreSQL schema (skipped if
 * unreachable) with `certificates` (default 1,000,000) straight through the
 * driver: expiries spread over two years from 15 days ago (so ~2% expire
 * within 30 days and ~2% have expired), statuses as a real fleet (active,
 * some revoked, inactive, pending), 0.1% RSA-1024 keys, and three issuers, one
 * of them revoked with active certificates still under it. Then times the
 * audit (lifecycle/audits.ts) and the audit with its findings stored
 * (lifecycle/findings.ts), per dialect, median of 3 runs after a warm-up
 * (for stored findings the warm-up, where every finding is new, is printed too).
 * `AUDIT_BENCH_BEFORE=file.ts` also times another runAudit (the previous
 * implementation) on the same rows, for a side-by-side figure.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { EventBus } from '../packages/server/src/events/bus.js';
import { runAudit } from '../packages/server/src/lifecycle/audits.js';
import { AuditFindings } from '../packages/server/src/lifecycle/findings.js';
import { bulkInsertCertificatesForBench, vacuumAnalyzeForBench, type BenchTarget } from '../packages/server/src/store/bench-support.js';
import { openStore, type CertificateStatus, type NewCertificate, type Store } from '../packages/server/src/store/index.js';
import { PG_URL, caFixture, dropTestSchema, postgresUnreachable } from '../packages/server/src/store/test-fixtures.js';

const COUNT = Number(process.argv[2] ?? 1_000_000);
const DAY = 86_400_000;
const NOW = new Date('2030-01-01T00:00:00.000Z');
const RUNS = 3;

// Deterministic spread (splitmix32), so both dialects hold the same rows.
function unit(i: number, salt: number): number {
  let z = (i * 0x9e3779b9 + salt) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
}

const STATUSES: Array<[CertificateStatus, number]> = [['revoked', 0.05], ['inactive', 0.08], ['pending-activation', 0.1]];
const der = randomBytes(420);

function certificate(issuers: readonly string[], i: number): NewCertificate {
  const notAfter = new Date(NOW.getTime() - 15 * DAY + Math.floor(unit(i, 1) * 730 * DAY));
  const createdAt = new Date(NOW.getTime() - Math.floor(unit(i, 2) * 365 * DAY));
  const r = unit(i, 3);
  const status = STATUSES.find(([, below]) => r < below)?.[0] ?? 'active';
  const body = Buffer.from(der);
  body.writeUInt32BE(i, 0);
  // 0.1% weak keys: RSA below 2048 bits is a finding without parsing the certificate.
  const keyAlgorithm = unit(i, 4) < 0.001 ? 'rsa-1024' : 'ec-p256';
  return {
    id: createHash('sha256').update(body).digest('hex'),
    serial: i.toString(16).padStart(32, '0'),
    issuerId: issuers[Math.floor(unit(i, 5) * issuers.length)]!,
    thingName: null,
    status,
    profile: 'device',
    subject: `CN=device-${i}`,
    notBefore: createdAt,
    notAfter,
    keyAlgorithm,
    der: body,
    createdAt,
    revokedAt: status === 'revoked' ? NOW : null,
    revocationReason: status === 'revoked' ? 'keyCompromise' : null,
  };
}

interface Subject {
  readonly label: string;
  readonly store: Store;
  readonly target: BenchTarget;
  size(): string;
  close(): Promise<void>;
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function median(work: () => Promise<unknown>): Promise<{ median: number; min: number; max: number; first: number }> {
  const t0 = performance.now();
  await work();
  const first = performance.now() - t0;
  const runs: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = performance.now();
    await work();
    runs.push(performance.now() - t);
  }
  runs.sort((a, b) => a - b);
  return { median: runs[Math.floor(RUNS / 2)]!, min: runs[0]!, max: runs.at(-1)!, first };
}

async function measure(s: Subject): Promise<void> {
  console.log(`\n== ${s.label}: ${COUNT.toLocaleString('en')} certificates`);
  const root = caFixture({ kind: 'root' });
  const live = caFixture({ kind: 'intermediate', parentId: root.id });
  const revoked = caFixture({ kind: 'intermediate', parentId: root.id, status: 'revoked' });
  for (const c of [root, live, revoked]) await s.store.insertCa(c);
  const started = performance.now();
  await bulkInsertCertificatesForBench(s.target, COUNT, (i) => certificate([root.id, live.id, live.id, revoked.id], i));
  await vacuumAnalyzeForBench(s.target);
  console.log(`  loaded in ${seconds(performance.now() - started)}, ${s.size()}`);

  const now = () => NOW;
  const deps = { cas: s.store, certificates: s.store, policies: s.store, connections: s.store, now };
  let findings = 0;
  const audit = await median(async () => {
    findings = (await runAudit(deps)).length;
  });
  console.log(`  audit run: median ${seconds(audit.median)} (min ${seconds(audit.min)}, max ${seconds(audit.max)}), ${findings.toLocaleString('en')} findings`);
  const stored = new AuditFindings({ audit: deps, store: s.store, bus: new EventBus(), now });
  const withStore = await median(() => stored.run('bench'));
  // The warm-up is the first run: every finding is new (inserted); the timed runs find them again.
  console.log(`  audit run + findings stored: first run (all new) ${seconds(withStore.first)}; found again: median ${seconds(withStore.median)} (min ${seconds(withStore.min)}, max ${seconds(withStore.max)})`);

  // A day later: the expiry window moves, so some findings are new and some resolved.
  const later = () => new Date(NOW.getTime() + DAY);
  const nextDay = new AuditFindings({ audit: deps, store: s.store, bus: new EventBus(), now: later });
  const t = performance.now();
  const { run } = await nextDay.run('bench');
  console.log(`  a day later, stored: ${seconds(performance.now() - t)} (${run.newFindings.toLocaleString('en')} new, ${run.resolvedFindings.toLocaleString('en')} resolved of ${run.findings.toLocaleString('en')})`);

  const before = process.env.AUDIT_BENCH_BEFORE;
  if (before) {
    const previous = (await import(before)) as { runAudit: (d: unknown) => Promise<unknown[]> };
    const t = performance.now();
    const n = (await previous.runAudit(deps)).length;
    console.log(`  previous audit (${before}), one run: ${seconds(performance.now() - t)}, ${n.toLocaleString('en')} findings`);
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'certfleet-audit-bench-'));
  const path = join(dir, 'bench.db');
  const sqlite: Subject = {
    label: 'SQLite',
    store: await openStore(path),
    target: { dialect: 'sqlite', path },
    size: () => `${(statSync(path).size / 2 ** 20).toFixed(0)} MiB`,
    close: async () => rmSync(dir, { recursive: true, force: true }),
  };
  try {
    await measure(sqlite);
  } finally {
    await sqlite.store.close();
    await sqlite.close();
  }
  const pg = await postgresUnreachable();
  if (pg.skip) {
    console.log(`\n== PostgreSQL: skipped (${pg.skip})`);
    return;
  }
  const schema = `certfleet_audit_bench_${randomBytes(4).toString('hex')}`;
  const store = await openStore(PG_URL, { schema });
  try {
    await measure({ label: 'PostgreSQL', store, target: { dialect: 'postgres', url: PG_URL, schema }, size: () => `schema ${schema}`, close: async () => {} });
  } finally {
    await store.close();
    await dropTestSchema(schema);
  }
}

await main();
