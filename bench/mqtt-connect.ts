/**
 * The device endpoint under connection load: mutual-TLS connect + CONNACK
 * rate, and memory per idle connection, of `certfleet serve` against
 * Mosquitto measured in the same run with the same PKI and the same client.
 *
 * Set-up, as a user would do it: `certfleet init` and `certfleet serve` (a
 * child process, SQLite data dir, ports chosen by the server), then through
 * the REST API 200 device certificates (P-256 keys) with one policy attached
 * that allows connect for any client id (`${client.id}`); the connections
 * reuse them round-robin, each with its own client id. Mosquitto 2 (a child,
 * on a free port of 127.0.0.1, the system one on 1883 left alone) gets a
 * server certificate that certfleet issued for localhost, certfleet's
 * issuing CA and root as its client CA file, `require_certificate true` and
 * `use_identity_as_username true` with anonymous clients refused; neither
 * broker logs a line per connection. Both brokers send the server
 * certificate with its issuing CA, the clients theirs with its issuing CA.
 *
 * The load generator is this process, the same code for every broker
 * (support/mqtt-load.ts): each of C loops does TCP connect → full TLS
 * handshake with a device certificate (no session is ever offered for
 * resumption, checked on every connect), verifying the server for
 * `localhost` against the root → MQTT 3.1.1 CONNECT (clean session, keep
 * alive 30 s) → CONNACK 0 → DISCONNECT and close, again. Each figure is
 * taken in ROUNDS rounds (the brokers back to back, order rotated), 1 s
 * warm-up (2 s in the first round) and 4 s measured: a rate is the median of
 * its rounds, a ratio the median of the ratios within each round. TLS 1.3
 * at 8 and 32 connects in flight, TLS 1.2 at 32. The CPU each broker process
 * used in the measured window (/proc/PID/stat) gives CPU time per connect,
 * which depends far less than the rate on what else the machine was doing;
 * the generator's own share of a core says when it, not the broker, was the
 * limit. A third, reference broker at 32 in flight (support/null-broker.ts:
 * node:tls with OpenSSL checking the client chain, CONNACK to any first
 * read) shows what Node's TLS alone costs, so certfleet's own work per
 * connect is told apart from the runtime's.
 *
 * Memory: after a warm-up, IDLE connections (TLS 1.3, keep alive 60 s) are
 * opened to each broker and left silent; its VmRSS (/proc/PID/status) before
 * and after, over IDLE, is its memory per idle connection (V8's heap grows in
 * steps, so certfleet's figure carries some of that step). All are then
 * closed.
 *
 * Last, certfleet's own steps per connect are timed in process, in CPU and
 * wall time (support/certfleet-steps.ts): parsing the leaf, admission, the
 * policy load at CONNECT, the connection-record writes.
 *
 * Nothing is pinned. To pin, run the whole bench under `taskset -c 0 npm run
 * bench:mqtt` (everything on CPU 0, the brokers inherit it) or set
 * CERTFLEET_BENCH_MQTT_SERVER_CPUS=1 to start the brokers under
 * `taskset -c 1` and `taskset -c 0 npm run bench:mqtt` for the generator, so
 * a broker and the generator never share a core.
 * CERTFLEET_BENCH_MQTT_ROUNDS, CERTFLEET_BENCH_MQTT_SECONDS (per figure and
 * round) and CERTFLEET_BENCH_MQTT_IDLE (1,000 by default) change the rounds,
 * the seconds and the idle connections; CERTFLEET_BENCH_MQTT_PROFILE=1 starts certfleet under
 * `node --cpu-prof` (slower figures) and prints where its CPU time went while
 * it was measured. Never a timed test in CI; run by `npm run bench:mqtt`.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { SecureVersion } from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import { nowMicros, selfTime, type SelfTime, type Window } from './support/cpu-profile.js';
import { ClientContexts, closeMqtt, connectRate, openIdle, openMqtt, percentile, type RateResult } from './support/mqtt-load.js';
import { certfleetSteps, type Steps } from './support/certfleet-steps.js';
import { cpuMs, issueDevices, MOSQUITTO, pidOf, rssBytes, startCertfleet, startMosquitto, startNullBroker, type Broker } from './support/mqtt-peers.js';

const DEVICES = 200;
const ROUNDS = Number(process.env.CERTFLEET_BENCH_MQTT_ROUNDS ?? 2);
const MEASURE_MS = Number(process.env.CERTFLEET_BENCH_MQTT_SECONDS ?? 4) * 1000;
const FIRST_WARMUP_MS = 2_000;
const WARMUP_MS = 1_000;
const IDLE = Number(process.env.CERTFLEET_BENCH_MQTT_IDLE ?? 1_000);
const IDLE_IN_FLIGHT = 32;
const SERVER_CPUS = process.env.CERTFLEET_BENCH_MQTT_SERVER_CPUS || undefined;
const PROFILE = !['', '0', undefined].includes(process.env.CERTFLEET_BENCH_MQTT_PROFILE);

interface Config {
  readonly version: SecureVersion;
  readonly concurrency: number;
}
/** The node:tls null broker is measured at 32 in flight only: it is a reference, and the run must stay short. */
const CONFIGS: readonly Config[] = [
  { version: 'TLSv1.3', concurrency: 8 },
  { version: 'TLSv1.3', concurrency: 32 },
  { version: 'TLSv1.2', concurrency: 32 },
];

const log = (s = ''): void => void process.stdout.write(`${s}\n`);
const fmt = (x: number): string => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '-');
const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(2) : '-');
const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`;
const x2 = (v: number): string => `${v.toFixed(2)}×`;
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/** Retries one connect until the broker answers CONNACK 0 (mosquitto has no "ready" file). */
async function ready(b: Broker, contexts: ClientContexts): Promise<void> {
  const until = Date.now() + 15_000;
  let last = '';
  while (Date.now() < until) {
    if (b.child.exitCode !== null) throw new Error(`${b.name} exited with ${b.child.exitCode}:\n${b.output()}`);
    try {
      const o = await openMqtt(b.port, contexts.for('TLSv1.3', 0), `bench-ready-${b.name}`, 30);
      await closeMqtt(o.socket);
      return;
    } catch (err) {
      last = (err as Error).message;
      await sleep(100);
    }
  }
  throw new Error(`${b.name} did not accept a connect in 15 s (${last}):\n${b.output()}`);
}

interface Memory {
  readonly before: number;
  readonly after: number;
  readonly perConnection: number;
  readonly opened: number;
  readonly alive: number;
  readonly errors: number;
  readonly firstError?: string;
}

async function idleMemory(b: Broker, contexts: ClientContexts): Promise<Memory> {
  await sleep(1_000);
  const pid = pidOf(b);
  const before = rssBytes(pid);
  const idle = await openIdle(b.port, contexts, 'TLSv1.3', IDLE, IDLE_IN_FLIGHT, `bench-idle-${b.name}`, 60);
  await sleep(2_000); // let the broker finish whatever each CONNECT started (connection records, events)
  const after = rssBytes(pid);
  const alive = idle.alive();
  await idle.close();
  return {
    before,
    after,
    perConnection: (after - before) / Math.max(1, alive),
    opened: idle.sockets.length,
    alive,
    errors: idle.errors,
    ...(idle.firstError ? { firstError: idle.firstError } : {}),
  };
}

interface Run extends RateResult {
  /** ms of broker CPU (all its threads) in the measured window. */
  readonly serverCpuMs: number;
}

async function measure(b: Broker, contexts: ClientContexts, cfg: Config, round: number, windows: Window[] | undefined): Promise<Run> {
  const pid = pidOf(b);
  let cpuStart = 0;
  let cpuEnd = 0;
  let from = 0;
  const r = await connectRate({
    port: b.port,
    contexts,
    version: cfg.version,
    concurrency: cfg.concurrency,
    warmupMs: round === 0 ? FIRST_WARMUP_MS : WARMUP_MS,
    measureMs: MEASURE_MS,
    clientIdPrefix: `bench-${b.name}-${cfg.version}-${cfg.concurrency}-${round}`,
    onWindow: (edge) => {
      if (edge === 'start') {
        cpuStart = cpuMs(pid);
        from = nowMicros();
      } else {
        cpuEnd = cpuMs(pid);
        windows?.push({ from, to: nowMicros() });
      }
    },
  });
  return { ...r, serverCpuMs: cpuEnd - cpuStart };
}

async function main(): Promise<void> {
  const t0 = performance.now();
  const load0 = loadavg()[0]!.toFixed(2);
  const dir = mkdtempSync(join(tmpdir(), 'certfleet-bench-mqtt-'));
  const brokers: Broker[] = [];
  process.on('exit', () => {
    for (const b of brokers) if (b.child.exitCode === null && b.child.signalCode === null) b.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const profDir = join(dir, 'profile');
  mkdirSync(profDir);
  const node = await startCertfleet(join(dir, 'certfleet'), PROFILE ? ['--cpu-prof', '--cpu-prof-dir', profDir] : [], SERVER_CPUS);
  brokers.push(node);
  const credentials = await issueDevices(node, DEVICES);
  const mdir = join(dir, 'mosquitto');
  mkdirSync(mdir);
  const mosquitto = await startMosquitto(node, mdir, SERVER_CPUS);
  brokers.push(mosquitto);
  const nullBroker = await startNullBroker(mdir, SERVER_CPUS);
  brokers.push(nullBroker);
  const contexts = new ClientContexts(node.caPem, credentials);
  for (const b of brokers) await ready(b, contexts);
  const measuredAt = (cfg: Config): Broker[] => (cfg.concurrency === 32 ? brokers : brokers.filter((b) => b !== nullBroker));
  const setupS = (performance.now() - t0) / 1000;

  const mosquittoVersion = spawnSync(MOSQUITTO, ['-h'], { encoding: 'utf8' }).stdout.split('\n')[0]?.trim() ?? '?';
  log(`certfleet MQTT connect bench: node ${process.version}, ${mosquittoVersion}, ${cpus().length} CPUs, ` +
    (SERVER_CPUS ? `brokers pinned to CPU ${SERVER_CPUS} (taskset)` : 'not pinned'));
  log(`set-up: certfleet init + serve, ${DEVICES} device certificates and a policy through the REST API, mosquitto with certfleet's PKI: ${setupS.toFixed(1)} s`);
  log(`load: one generator (this process) for all; TLS connect (full handshake, P-256 certificates both ways) → CONNECT → CONNACK 0 → DISCONNECT;`);
  log(`      ${ROUNDS} rounds per figure, brokers back to back, ${FIRST_WARMUP_MS / 1000} s warm-up in round 1 and ${WARMUP_MS / 1000} s after, ${MEASURE_MS / 1000} s measured`);
  log();

  // Each broker admits a connect at each TLS version, negotiates that version and resumes nothing.
  const problems: string[] = [];
  for (const b of brokers) {
    for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
      const o = await openMqtt(b.port, contexts.for(version, 1), `bench-check-${b.name}-${version}`, 30);
      if (o.protocol !== version) problems.push(`${b.name}: asked for ${version}, got ${o.protocol}`);
      if (o.reused) problems.push(`${b.name}: ${version} session resumed`);
      await closeMqtt(o.socket);
    }
  }

  // -------------------------------------------------------------- memory per idle connection
  const memory = new Map<Broker, Memory>();
  for (const b of brokers) {
    // Warm-up: the first connects load code and fill caches; that memory is not per connection.
    await connectRate({ port: b.port, contexts, version: 'TLSv1.3', concurrency: 8, warmupMs: 0, measureMs: 1_500, clientIdPrefix: `bench-warm-${b.name}` });
    memory.set(b, await idleMemory(b, contexts));
  }

  // -------------------------------------------------------------- connect rate
  const windows: Window[] = [];
  const runs = new Map<string, Run[]>();
  const key = (b: Broker, c: Config) => `${b.name} ${c.version} ${c.concurrency}`;
  for (let round = 0; round < ROUNDS; round++) {
    for (const cfg of CONFIGS) {
      // Rotated per configuration and round, so no broker always runs first (or right after another).
      const here = measuredAt(cfg);
      const shift = (round + CONFIGS.indexOf(cfg)) % here.length;
      for (const b of [...here.slice(shift), ...here.slice(0, shift)]) {
        const r = await measure(b, contexts, cfg, round, b === node && PROFILE ? windows : undefined);
        runs.set(key(b, cfg), [...(runs.get(key(b, cfg)) ?? []), r]);
      }
    }
  }
  const stopped = new Map<Broker, string>();
  for (const b of brokers) stopped.set(b, await b.stop());
  const profile: SelfTime | undefined = PROFILE ? selfTime(profDir, windows) : undefined;
  const steps: Steps = await certfleetSteps(node.data, credentials);

  // -------------------------------------------------------------- report
  const merged = (b: Broker, c: Config) => {
    const rs = runs.get(key(b, c))!;
    const pool = (f: (r: Run) => Float64Array) => Float64Array.from(rs.flatMap((r) => [...f(r)])).sort();
    const completed = rs.reduce((a, r) => a + r.completed, 0);
    const serverCpuMs = rs.reduce((a, r) => a + r.serverCpuMs, 0);
    return {
      perSec: median(rs.map((r) => r.perSec)),
      rounds: rs.map((r) => Math.round(r.perSec)),
      handshakeP50: percentile(pool((r) => r.handshakeMs), 50),
      connackP50: percentile(pool((r) => r.connackMs), 50),
      connackP99: percentile(pool((r) => r.connackMs), 99),
      cpuPerConnectMs: serverCpuMs / Math.max(1, completed),
      serverCores: serverCpuMs / (rs.length * MEASURE_MS),
      generatorCores: median(rs.map((r) => r.generatorCpu)),
      errors: rs.reduce((a, r) => a + r.errors, 0),
      firstError: rs.find((r) => r.firstError)?.firstError,
      reused: rs.reduce((a, r) => a + r.reused, 0),
      protocols: [...new Set(rs.flatMap((r) => r.protocols))],
      completed,
    };
  };
  const label = (b: Broker, c: Config) => `${b.name.padEnd(9)} ${c.version.replace('TLSv', 'TLS ')} ×${String(c.concurrency).padEnd(2)}`;
  const w = label(node, CONFIGS[0]!).length;
  log(`${'broker, TLS, in flight'.padEnd(w)}  connects/s  ${'rounds'.padStart(11)}  handshake p50  CONNACK p50  CONNACK p99  CPU ms/connect  broker cores  generator cores  err`);
  log(`${'-'.repeat(w)}  ----------  ${'-'.repeat(11)}  -------------  -----------  -----------  --------------  ------------  ---------------  ---`);
  const figures: Record<string, ReturnType<typeof merged>> = {};
  for (const cfg of CONFIGS) {
    for (const b of measuredAt(cfg)) {
      const m = merged(b, cfg);
      figures[key(b, cfg)] = m;
      log(
        `${label(b, cfg)}  ${fmt(m.perSec).padStart(10)}  ${m.rounds.map(fmt).join(' ').padStart(11)}  ${`${ms(m.handshakeP50)} ms`.padStart(13)}  ` +
          `${`${ms(m.connackP50)} ms`.padStart(11)}  ${`${ms(m.connackP99)} ms`.padStart(11)}  ${ms(m.cpuPerConnectMs).padStart(14)}  ` +
          `${m.serverCores.toFixed(2).padStart(12)}  ${m.generatorCores.toFixed(2).padStart(15)}  ${String(m.errors).padStart(3)}`,
      );
      if (m.errors) problems.push(`${label(b, cfg)}: ${m.errors} failed connects (first: ${m.firstError})`);
      if (m.reused) problems.push(`${label(b, cfg)}: ${m.reused} resumed sessions`);
      if (!m.completed) problems.push(`${label(b, cfg)}: no connect completed`);
      if (m.protocols.some((p) => p !== cfg.version)) problems.push(`${label(b, cfg)}: negotiated ${m.protocols.join(', ')}`);
    }
  }
  log('  (handshake: connect() to the client\'s end of the handshake; CONNACK: from there to CONNACK 0, i.e. the broker\'s admission and CONNECT handling,');
  log('   and under TLS 1.3 also its check of the client certificate, which comes after the client is done; CPU ms/connect: broker process, all threads)');
  log();
  log(`memory per idle connection (${fmt(IDLE)} opened, TLS 1.3, keep alive 60 s, silent; VmRSS before and after)`);
  for (const b of brokers) {
    const m = memory.get(b)!;
    log(`  ${b.name.padEnd(9)}  ${kb(m.perConnection).padStart(9)}   RSS ${(m.before / 1e6).toFixed(1)} MB → ${(m.after / 1e6).toFixed(1)} MB, ${fmt(m.alive)}/${fmt(IDLE)} open when measured`);
    if (m.errors || m.alive !== IDLE) problems.push(`${b.name} idle: ${m.alive}/${IDLE} open, ${m.errors} failed (first: ${m.firstError ?? '-'})`);
  }
  log();

  /** Median over rounds of a's rate over b's in the same round. */
  const paired = (a: Broker, b: Broker, cfg: Config) => {
    const ra = runs.get(key(a, cfg))!;
    const rb = runs.get(key(b, cfg))!;
    return median(ra.map((r, i) => r.perSec / rb[i]!.perSec));
  };
  const ratios: Record<string, number> = {};
  const pairs: Array<[Broker, Broker, string]> = [
    [node, mosquitto, 'certfleet / mosquitto'],
    [node, nullBroker, 'certfleet / node:tls null broker'],
    [nullBroker, mosquitto, 'node:tls null broker / mosquitto'],
  ];
  log('ratios (rates: median over rounds of the ratio within each round)');
  for (const [a, b, name] of pairs) {
    log(`  ${name}`);
    for (const cfg of CONFIGS.filter((c) => measuredAt(c).includes(a) && measuredAt(c).includes(b))) {
      const what = `${cfg.version} ×${cfg.concurrency}`;
      const rate = paired(a, b, cfg);
      const cpu = figures[key(a, cfg)]!.cpuPerConnectMs / figures[key(b, cfg)]!.cpuPerConnectMs;
      ratios[`${a.name}/${b.name} rate ${what}`] = rate;
      ratios[`${a.name}/${b.name} cpu ${what}`] = cpu;
      log(`    connects/s, ${what.padEnd(12)} ${x2(rate).padStart(7)}     broker CPU per connect ${x2(cpu).padStart(7)}`);
    }
    const mem = memory.get(a)!.perConnection / memory.get(b)!.perConnection;
    ratios[`${a.name}/${b.name} memory per idle connection`] = mem;
    log(`    memory per idle connection      ${x2(mem).padStart(7)}`);
  }
  const generatorBound = Object.entries(figures).filter(([, m]) => m.generatorCores > 0.9).map(([k]) => k);
  if (generatorBound.length) log(`  note: the generator used more than 0.9 of a core for ${generatorBound.join('; ')}: those rates are the generator's limit as much as the broker's`);
  log();
  log(
    `certfleet's steps per connect in process (one call at a time, the code and data dir serve used), µs of CPU (of wall time): ` +
      Object.entries(steps).map(([k, v]) => `${k} ${v.cpu.toFixed(0)} (${v.wall.toFixed(0)})`).join(', '),
  );
  log(`stopped by SIGTERM: ${brokers.map((b) => `${b.name} ${stopped.get(b)}`).join('; ')}`);
  log(`load average ${load0} before, ${loadavg()[0]!.toFixed(2)} after; total ${((performance.now() - t0) / 1000).toFixed(0)} s`);

  if (profile) {
    log();
    log(
      `CPU profile of the certfleet process while measured: ${fmt(profile.samples)} samples over ${fmt(profile.ms)} ms, ` +
        `${((profile.idleMs / profile.ms) * 100).toFixed(0)} % of it idle; shares of the busy time. Self time by area:`,
    );
    for (const l of profile.areas) log(`  ${l}`);
    log('  self time, top functions:');
    for (const l of profile.functions) log(`  ${l}`);
    log("  certfleet's own functions, inclusive (on the stack):");
    for (const l of profile.ownInclusive) log(`  ${l}`);
    log('  ((program) is native code with no JavaScript on the stack: OpenSSL\'s handshake and record work on libuv\'s reads and writes)');
  }
  if (problems.length) {
    log();
    log(`FAIL: the figures do not count:\n  ${problems.join('\n  ')}`);
  }
  log(
    JSON.stringify({
      bench: 'mqtt-connect',
      node: process.version,
      mosquitto: mosquittoVersion,
      cpus: cpus().length,
      pinnedBrokers: SERVER_CPUS ?? null,
      devices: DEVICES,
      rounds: ROUNDS,
      measureSecondsPerRound: MEASURE_MS / 1000,
      profiled: PROFILE,
      loadAverage: [Number(load0), Number(loadavg()[0]!.toFixed(2))],
      figures: Object.fromEntries(
        Object.entries(figures).map(([k, m]) => [
          k,
          {
            perSec: Math.round(m.perSec),
            rounds: m.rounds,
            handshakeP50Ms: Number(m.handshakeP50.toFixed(3)),
            connackP50Ms: Number(m.connackP50.toFixed(3)),
            connackP99Ms: Number(m.connackP99.toFixed(3)),
            cpuPerConnectMs: Number(m.cpuPerConnectMs.toFixed(3)),
            brokerCores: Number(m.serverCores.toFixed(2)),
            generatorCores: Number(m.generatorCores.toFixed(2)),
            errors: m.errors,
          },
        ]),
      ),
      idle: Object.fromEntries(brokers.map((b) => [b.name, { connections: IDLE, ...memory.get(b)!, perConnection: Math.round(memory.get(b)!.perConnection) }])),
      inProcessMicros: Object.fromEntries(Object.entries(steps).map(([k, v]) => [k, { cpu: Number(v.cpu.toFixed(1)), wall: Number(v.wall.toFixed(1)) }])),
      ratios: Object.fromEntries(Object.entries(ratios).map(([k, v]) => [k, Number(v.toFixed(3))])),
      ok: problems.length === 0,
    }),
  );
  process.exitCode = problems.length ? 1 : 0;
}

await main();
