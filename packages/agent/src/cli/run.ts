/** `certfleet-agent run`: the long-running device agent (run/agent.ts) from a shell or a service manager. */
import { chmod, copyFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { parsePositiveDuration } from '../duration.js';
import { AgentError } from '../errors.js';
import { TrustStore } from '../trust-store.js';
import { DeviceAgent } from '../run/agent.js';
import { updateConfig, type AgentConfig, type ClaimConfig } from '../run/config.js';
import { errorFields, jsonLineLog } from '../run/log.js';

interface RunFlags {
  data: string;
  mqtt?: string;
  api?: string;
  thing?: string;
  ca?: string;
  renewBefore?: string;
  renewFraction?: string;
  jitter?: string;
  renewVia?: 'mqtt' | 'est';
  est?: string;
  retryMin?: string;
  retryMax?: string;
  reconnectMin?: string;
  reconnectMax?: string;
  timeout?: string;
  claimCert?: string;
  claimKey?: string;
  template?: string;
  serial?: string;
  clock?: string;
}

const ms = (v: string | undefined, what: string) => (v === undefined ? undefined : parsePositiveDuration(v, what));

/** Copies the claim credential into DIR/claim/ (key 0600): the agent must find it after the source is gone. */
async function keepClaim(dir: string, f: RunFlags): Promise<ClaimConfig | undefined> {
  if (!f.claimCert && !f.claimKey) return undefined;
  if (!f.claimCert || !f.claimKey || !f.template) throw new AgentError('bad-input', 'a claim credential needs --claim-cert, --claim-key and --template');
  const claimDir = join(dir, 'claim');
  await mkdir(claimDir, { recursive: true, mode: 0o700 });
  const certFile = join(claimDir, 'cert.pem');
  const keyFile = join(claimDir, 'key.pem');
  await copyFile(f.claimCert, certFile);
  await copyFile(f.claimKey, keyFile);
  await chmod(keyFile, 0o600);
  return { certFile, keyFile, template: f.template, parameters: f.serial ? { SerialNumber: f.serial } : {} };
}

async function configFrom(f: RunFlags): Promise<AgentConfig> {
  if (f.renewBefore && f.renewFraction) throw new AgentError('bad-input', 'give --renew-before or --renew-fraction, not both');
  const claim = await keepClaim(f.data, f);
  return updateConfig(f.data, {
    mqtt: f.mqtt,
    api: f.api,
    thing: f.thing,
    renewVia: f.renewVia,
    est: f.est,
    threshold: f.renewBefore ? { days: parsePositiveDuration(f.renewBefore, '--renew-before') / 86_400_000 } : f.renewFraction ? { fraction: Number(f.renewFraction) } : undefined,
    jitter: f.jitter === undefined ? undefined : Number(f.jitter),
    retryMinMs: ms(f.retryMin, '--retry-min'),
    retryMaxMs: ms(f.retryMax, '--retry-max'),
    reconnectMinMs: ms(f.reconnectMin, '--reconnect-min'),
    reconnectMaxMs: ms(f.reconnectMax, '--reconnect-max'),
    timeoutMs: ms(f.timeout, '--timeout'),
    claim,
  });
}

/** A wall clock that reads `iso` now and then runs at real speed (a device whose RTC is wrong). */
function injectedClock(iso: string): () => Date {
  const at = Date.parse(iso);
  if (!Number.isFinite(at)) throw new AgentError('bad-input', `--clock wants an ISO instant, got ${iso}`);
  const offset = at - Date.now();
  return () => new Date(Date.now() + offset);
}

export function runCommand(): Command {
  return new Command('run')
    .description('the long-running device agent: connect with the current identity, renew on schedule or when asked, apply trust bundles, reconnect after drops; one JSON line per step on stdout')
    .option('--data <dir>', 'agent data directory', './certfleet-agent')
    .option('--mqtt <url>', 'device endpoint, mqtts://host:port (kept in DIR/agent.json)')
    .option('--api <url>', 'api port, https://host:port: renewal after expiry and trusted time')
    .option('--thing <name>', 'thing name (default: the CN of the current certificate)')
    .option('--ca <file>', "add the server's root (PEM) to the trust store first")
    .option('--renew-before <duration>', 'renew this long before expiry (default 28d)')
    .option('--renew-fraction <f>', 'renew when this fraction of the lifetime is left, e.g. 0.33')
    .option('--jitter <f>', 'spread renewals over this fraction of the threshold before it (0..1, default 0.1)')
    .addOption(new Option('--renew-via <how>', 'renewal protocol').choices(['mqtt', 'est']))
    .option('--est <url>', 'EST server for --renew-via est (default: --api)')
    .option('--retry-min <duration>', 'first renewal retry delay (30s)')
    .option('--retry-max <duration>', 'longest renewal retry delay (1h)')
    .option('--reconnect-min <duration>', 'first reconnection delay (1s)')
    .option('--reconnect-max <duration>', 'longest reconnection delay (60s)')
    .option('--timeout <duration>', 'deadline of each connection and request (30s)')
    .option('--claim-cert <file>', 'claim certificate: provisions a device without identity, and replaces one whose renewal after expiry is refused')
    .option('--claim-key <file>', "the claim certificate's key")
    .option('--template <name>', 'provisioning template for the claim flow')
    .option('--serial <s>', 'SerialNumber parameter for the template')
    .addOption(new Option('--clock <iso>', 'the wall clock reads this instant at start (testing a device without a real-time clock)').hideHelp())
    .action(async (f: RunFlags) => {
      const log = jsonLineLog();
      if (f.ca) {
        const added = await (await TrustStore.open(f.data)).add(await readFile(f.ca, 'utf8'));
        if (added.length) log('trust-added', { roots: added });
      }
      const config = await configFrom(f);
      const agent = await DeviceAgent.open({ dir: f.data, config, log, ...(f.clock ? { wallClock: injectedClock(f.clock) } : {}) });
      let stopping: Promise<void> | undefined;
      const stop = (signal: string) => {
        stopping ??= (async () => {
          log('stopping', { signal });
          await agent.stop();
          process.exit(0);
        })();
      };
      process.on('SIGTERM', () => stop('SIGTERM'));
      process.on('SIGINT', () => stop('SIGINT'));
      try {
        await agent.start();
      } catch (err) {
        log('failed', errorFields(err));
        await agent.stop();
        throw err;
      }
      // Runs until a signal: the MQTT connection and timers keep the event loop alive; this keeps it through a reconnect gap.
      setInterval(() => {}, 1 << 30);
    });
}
