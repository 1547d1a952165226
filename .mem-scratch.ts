import { spawn } from 'node:child_process';
import { writeFileSync, readFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import v8 from 'node:v8';
import { Harness } from './packages/server/src/broker/test-harness.js';
import { keyPem } from './packages/server/src/broker/test-fixtures.js';

const N = Number(process.env.N ?? 1000);
const h = await Harness.start();
h.policies.attach(h.f.dev1, 'any', { statements: [{ effect: 'allow', actions: ['connect'], resources: ['${client.id}'] }] });
const dir = mkdtempSync(join(tmpdir(), 'mem-'));
writeFileSync(join(dir, 'key.pem'), keyPem(h.f.dev1.key));
writeFileSync(join(dir, 'cert.pem'), h.f.dev1.cert.toPem() + h.f.issuing.cert.toPem());
writeFileSync(join(dir, 'ca.pem'), h.f.root.cert.toPem());
const client = `
import tls from 'node:tls'; import { readFileSync } from 'node:fs';
const [port, n, dir, prefix] = process.argv.slice(2);
const key = readFileSync(dir + '/key.pem'), cert = readFileSync(dir + '/cert.pem'), ca = readFileSync(dir + '/ca.pem');
const keep = [];
async function one(i) { return new Promise((res, rej) => {
  const s = tls.connect({ port: +port, host: '127.0.0.1', servername: 'localhost', key, cert, ca, minVersion: 'TLSv1.3' }, () => {
    const id = Buffer.from(prefix + i); const vh = Buffer.from([0,4,77,81,84,84,4,2,0,60]);
    const body = Buffer.concat([vh, Buffer.from([id.length >> 8, id.length & 255]), id]);
    s.write(Buffer.concat([Buffer.from([0x10, body.length]), body]));
  });
  s.once('data', (d) => { if (d[0] === 0x20 && d[3] === 0) { keep.push(s); res(); } else rej(new Error('connack ' + d.toString('hex'))); });
  s.on('error', rej);
}); }
for (let i = 0; i < +n; i += 16) await Promise.all(Array.from({ length: Math.min(16, +n - i) }, (_, j) => one(i + j)));
process.stdout.write('open ' + keep.length + '\\n'); setInterval(() => {}, 1000);
`;
writeFileSync(join(dir, 'client.mjs'), client);
async function clients(n: number, prefix: string) {
  const c = spawn(process.execPath, [join(dir, 'client.mjs'), String(h.broker.port), String(n), dir, prefix], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => c.stdout.on('data', (d: Buffer) => d.toString().includes('open') && res()));
  return c;
}
const warm = await clients(50, 'warm-');
await new Promise((r) => setTimeout(r, 500));
warm.kill(); await new Promise((r) => setTimeout(r, 1500));
const gc = () => { for (let i = 0; i < 3; i++) (globalThis as any).gc(); };
gc();
const m0 = process.memoryUsage();
const s0 = v8.writeHeapSnapshot(join(dir, 'before.heapsnapshot'));
const c = await clients(N, 'idle-');
await new Promise((r) => setTimeout(r, 1500));
gc();
const m1 = process.memoryUsage();
const s1 = v8.writeHeapSnapshot(join(dir, 'after.heapsnapshot'));
for (const k of ['rss', 'heapUsed', 'external', 'arrayBuffers'] as const) console.log(`${k}: ${((m1[k] - m0[k]) / N / 1024).toFixed(2)} KB per connection`);
function agg(file: string) {
  const snap = JSON.parse(readFileSync(file, 'utf8'));
  const f = snap.snapshot.meta.node_fields as string[]; const types = snap.snapshot.meta.node_types[0] as string[];
  const nf = f.length, iType = f.indexOf('type'), iName = f.indexOf('name'), iSize = f.indexOf('self_size');
  const out = new Map<string, { n: number; size: number }>();
  const nodes = snap.nodes as number[];
  for (let i = 0; i < nodes.length; i += nf) {
    const t = types[nodes[i + iType]!]!; const name = t === 'object' || t === 'closure' || t === 'native' ? `${t}:${snap.strings[nodes[i + iName]!]}` : t;
    const e = out.get(name) ?? { n: 0, size: 0 }; e.n++; e.size += nodes[i + iSize]!; out.set(name, e);
  }
  return out;
}
const a = agg(s0), b = agg(s1);
const rows = [...b].map(([k, v]) => [k, v.n - (a.get(k)?.n ?? 0), v.size - (a.get(k)?.size ?? 0)] as const).sort((x, y) => y[2] - x[2]);
let total = 0; for (const r of rows) total += r[2];
console.log(`heap snapshot delta: ${(total / N / 1024).toFixed(2)} KB per connection`);
for (const [k, n, size] of rows.slice(0, 40)) console.log(`${(size / N).toFixed(0).padStart(6)} B  ${(n / N).toFixed(2).padStart(6)} objs  ${k.slice(0, 90)}`);
c.kill();
await h.close();
process.exit(0);
