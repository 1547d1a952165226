/** The certfleet-agent command: the device-side SDK from a shell. */
import { readFile, writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { isKeyAlgorithm, KEY_ALGORITHMS, parseGeneralName, type KeyAlgorithm } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { CertificateSlots } from '../slots.js';
import { TrustStore } from '../trust-store.js';
import { simulate } from '../simulate/simulate.js';
import { estEnroll, estRenew } from '../est/enrollment.js';
import { parseDuration, parsePositiveDuration } from '../duration.js';
import { formatStatus, readStatus } from './status.js';
import { runCommand } from './run.js';
import { gatewayCommand } from './gateway.js';

const DIR_DEFAULT = './certfleet-agent';

function keyAlgorithm(v: string): KeyAlgorithm {
  if (!isKeyAlgorithm(v)) throw new AgentError('bad-input', `key algorithm must be one of ${KEY_ALGORITHMS.join(', ')}`);
  return v;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new AgentError('bad-input', `wants a whole number, got ${v}`);
  return n;
}
function percent(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new AgentError('bad-input', `wants a percentage from 0 to 100, got ${v}`);
  return n;
}

interface SimulateFlags {
  devices: number;
  data: string;
  concurrency: number;
  template: string;
  publish: number;
  hold?: boolean;
  renew?: boolean;
  timeout: number;
  awaitRenewal?: string;
  killDevices: number;
  clockSkew?: string;
  disconnectEvery?: string;
  json?: boolean;
}

/** `±2d` (or `2d`): uniform in [-2d, 2d]; `+2d`: [0, 2d]; `-2d`: [-2d, 0]. */
export function clockSkewRange(v: string): { minMs: number; maxMs: number } {
  const t = v.trim();
  if (t.startsWith('±')) {
    const d = parsePositiveDuration(t.slice(1), '--clock-skew');
    return { minMs: -d, maxMs: d };
  }
  const d = parseDuration(t, '--clock-skew');
  if (t.startsWith('+')) return { minMs: 0, maxMs: d };
  if (t.startsWith('-')) return { minMs: d, maxMs: 0 };
  return { minMs: -Math.abs(d), maxMs: Math.abs(d) };
}

function faultOptions(o: SimulateFlags) {
  return {
    killPercent: o.killDevices,
    ...(o.clockSkew ? { clockSkew: clockSkewRange(o.clockSkew) } : {}),
    ...(o.disconnectEvery ? { disconnectEveryMs: parsePositiveDuration(o.disconnectEvery, '--disconnect-every') } : {}),
    ...(o.awaitRenewal ? { awaitRenewalMs: parsePositiveDuration(o.awaitRenewal, '--await-renewal') } : {}),
  };
}

const print = (json: boolean | undefined, value: unknown, text: () => string) => console.log(json ? JSON.stringify(value, null, 2) : text());

export function program(): Command {
  const cmd = new Command('certfleet-agent').description('certfleet device agent: keys, certificate slots, trust store').showHelpAfterError();

  cmd
    .command('keygen')
    .description('generate the key for the next certificate in DIR/next/key.pem (mode 0600); with --subject, write a CSR for it')
    .option('--dir <dir>', 'agent data directory', DIR_DEFAULT)
    .addOption(new Option('--algorithm <alg>', 'key algorithm').choices([...KEY_ALGORITHMS]).default('ec-p256'))
    .option('--subject <dn>', 'CSR subject, e.g. CN=dev-1,O=Acme')
    .option('--san <name>', 'CSR subjectAltName, e.g. dns:dev-1.local (repeatable)', collect, [])
    .option('--csr <file>', 'write the CSR here instead of stdout')
    .option('--force', 'discard a pending next key or certificate and make a new key')
    .action(async (o: { dir: string; algorithm: string; subject?: string; san: string[]; csr?: string; force?: boolean }) => {
      const slots = await CertificateSlots.open(o.dir);
      const state = await slots.nextState();
      if (state !== 'absent' && !o.force) {
        throw new AgentError('key-exists', `the next slot already holds ${state === 'complete' ? 'a certificate' : 'a key'}; use --force to replace it`);
      }
      if (o.force) await slots.discardNext();
      const key = await slots.nextKey({ algorithm: keyAlgorithm(o.algorithm) });
      console.error(`generated ${key.algorithm} key in ${o.dir}/next/key.pem`);
      if (!o.subject) return;
      const csr = key.createCsr(o.subject, o.san.map(parseGeneralName));
      if (o.csr) {
        await writeFile(o.csr, csr);
        console.error(`wrote CSR to ${o.csr}`);
      } else process.stdout.write(csr);
    });

  cmd
    .command('install')
    .description('install a certificate for the key made by keygen: write it to the next slot, then promote it')
    .option('--dir <dir>', 'agent data directory', DIR_DEFAULT)
    .requiredOption('--cert <file>', 'certificate PEM (a chain may follow it)')
    .option('--chain <file>', 'intermediates PEM')
    .action(async (o: { dir: string; cert: string; chain?: string }) => {
      const slots = await CertificateSlots.open(o.dir);
      await slots.writeNext({ certificatePem: await readFile(o.cert, 'utf8'), ...(o.chain ? { chainPem: await readFile(o.chain, 'utf8') } : {}) });
      const current = await slots.promote();
      console.log(`installed ${current.certificate.subject()} (serial ${current.certificate.serial()}), valid until ${current.certificate.notAfter().toISOString()}`);
    });

  cmd
    .command('status')
    .description('the identity in use, its expiry and renewal window, the next slot, trust roots and time (reads only)')
    .option('--dir <dir>', 'agent data directory', DIR_DEFAULT)
    .option('--json', 'JSON output')
    .action(async (o: { dir: string; json?: boolean }) => {
      const s = await readStatus(o.dir);
      print(o.json, s, () => formatStatus(s));
    });

  const trust = cmd.command('trust').description('the roots this device trusts to recognise its server');
  trust
    .command('list')
    .option('--dir <dir>', 'agent data directory', DIR_DEFAULT)
    .option('--json', 'JSON output')
    .action(async (o: { dir: string; json?: boolean }) => {
      const roots = (await TrustStore.open(o.dir)).list().map((c) => ({ fingerprint: c.fingerprint(), subject: c.subject(), notAfter: c.notAfter().toISOString() }));
      print(o.json, roots, () => (roots.length ? roots.map((r) => `${r.fingerprint}  ${r.subject}  (until ${r.notAfter})`).join('\n') : 'no trusted roots'));
    });
  trust
    .command('add')
    .argument('<file>', 'PEM file of one or more CA certificates')
    .option('--dir <dir>', 'agent data directory', DIR_DEFAULT)
    .action(async (file: string, o: { dir: string }) => {
      const store = await TrustStore.open(o.dir);
      const added = await store.add(await readFile(file, 'utf8'));
      for (const fp of added) console.log(`added ${store.find(fp)!.subject()} ${fp}`);
      if (added.length === 0) console.log('already trusted');
    });

  const described = (i: { certificate: { subject(): string; serial(): string; notAfter(): Date } }) =>
    `${i.certificate.subject()} (serial ${i.certificate.serial()}), valid until ${i.certificate.notAfter().toISOString()}`;
  cmd
    .command('enroll')
    .description('first certificate over EST (RFC 7030 simpleenroll) with HTTP Basic; the server must chain to a root in the trust store')
    .requiredOption('--est <url>', 'EST server, https://host:port')
    .requiredOption('--username <u>', 'HTTP Basic user name')
    .requiredOption('--password <p>', 'HTTP Basic password (a one-time enrollment secret)')
    .option('--subject <dn>', 'CSR subject (default CN=<username>)')
    .option('--dir <dir>', 'agent data directory', DIR_DEFAULT)
    .action(async (o: { est: string; username: string; password: string; subject?: string; dir: string }) => {
      const id = await estEnroll({ dir: o.dir, url: o.est, username: o.username, password: o.password, subject: o.subject ?? `CN=${o.username}` });
      console.log(`enrolled ${described(id)}`);
    });
  cmd
    .command('renew')
    .description('renew the current certificate over EST (simplereenroll, authenticated by the current certificate)')
    .requiredOption('--est <url>', 'EST server, https://host:port')
    .option('--dir <dir>', 'agent data directory', DIR_DEFAULT)
    .action(async (o: { est: string; dir: string }) => {
      const id = await estRenew({ dir: o.dir, url: o.est });
      console.log(`renewed ${described(id)}`);
    });

  cmd.addCommand(runCommand());
  cmd.addCommand(gatewayCommand());

  cmd
    .command('simulate')
    .description('run N virtual devices against a certfleet server: provision each by claim, connect it with its own certificate, publish')
    .requiredOption('--devices <n>', 'how many virtual devices', count)
    .requiredOption('--data <dir>', "the server's data dir (its cli.json and ports.json name the server)")
    .option('--concurrency <n>', 'devices in flight at once', count, 32)
    .option('--template <name>', 'provisioning template (created if missing)', 'simulate')
    .option('--publish <k>', 'messages each device publishes', count, 1)
    .option('--hold', 'keep every device connected until all are done')
    .option('--renew', 'each device renews once over MQTT after publishing (renew, trial connection, confirm)')
    .option('--timeout <ms>', 'deadline of each connection and request', count, 30_000)
    .option('--await-renewal <duration>', "each device then stays connected up to this long for the platform's renew-required (a rotation campaign) and renews")
    .option('--kill-devices <percent>', 'fault: kill this % of devices abruptly mid-flow, then restart them from their persisted state', percent, 0)
    .option('--clock-skew <±duration>', "fault: skew each device's clock by up to this much (±2d both ways, +2d ahead, -2d behind)")
    .option('--disconnect-every <duration>', 'fault: cut each device\'s connection about this often; it reconnects')
    .option('--json', 'print the summary as JSON before the summary line')
    .action(async (o: SimulateFlags) => {
      let last = 0;
      let shown = '';
      const s = await simulate({
        ...faultOptions(o),
        data: o.data,
        devices: o.devices,
        concurrency: Math.max(1, o.concurrency),
        template: o.template,
        publish: o.publish,
        hold: o.hold ?? false,
        renew: o.renew ?? false,
        timeoutMs: o.timeout,
        onProgress: (p) => {
          const line = `… ${p.provisioned}/${p.total} provisioned, ${p.connected} connected, ${p.failed} failed${p.renewed ? `, ${p.renewed} renewed` : ''}`;
          // Every 2 s while it changes; devices waiting for a campaign stay a while after all have connected.
          if (line === shown || Date.now() - last < 2000) return;
          last = Date.now();
          shown = line;
          console.error(line);
        },
      });
      for (const [why, n] of Object.entries(s.reasons).sort((a, b) => b[1] - a[1])) console.error(`failed ${n}× ${why}`);
      if (s.killed || s.reconnects) console.error(`${s.killed} killed and restarted, ${s.reconnects} reconnections`);
      const mb = (b: number) => (b / 1048576).toFixed(1);
      console.error(
        `${(s.durationMs / 1000).toFixed(2)} s, ${s.devicesPerSecond.toFixed(1)} devices/s, ${s.published} messages; ` +
          `RSS ${mb(s.rssBaselineBytes)} MB before, ${mb(s.rssPeakBytes)} MB at peak`,
      );
      if (o.json) console.log(JSON.stringify(s));
      // The contract's summary line comes last.
      console.log(`${s.provisioned} provisioned, ${s.connected} connected, ${s.failed} failed${o.renew || o.awaitRenewal ? `, ${s.renewed} renewed` : ''}`);
      if (s.failed > 0) process.exitCode = 1;
    });
  return cmd;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    const e = err as { name?: string; code?: string; message: string };
    if (e.name === 'AgentError' || e.name === 'PkiError') {
      console.error(`error: ${e.message} (${e.code})`);
      process.exitCode = 1;
    } else if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      console.error(`error: ${e.message}`);
      process.exitCode = 1;
    } else throw err;
  }
}
