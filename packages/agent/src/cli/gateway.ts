/**
 * `certfleet-agent gateway bootstrap`: a gateway asks for the certificate of
 * a device behind it by the device's IMSI or IMEI (gateway/network-bootstrap.ts).
 * With `--csr` the device's own request is relayed and the certificate
 * printed; with `--device-dir` the gateway makes the device's key and leaves
 * a ready agent data dir.
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { AgentError } from '../errors.js';
import { bootstrapIntoDeviceDir, bootstrapWithCsr, type NetworkIdentity } from '../gateway/network-bootstrap.js';

interface BootstrapFlags {
  data: string;
  api: string;
  imsi?: string;
  imei?: string;
  template: string;
  csr?: string;
  deviceDir?: string;
  param: string[];
  timeout?: string;
  json?: boolean;
}

/** `k=v` pairs into template parameters; a key given twice is a mistake, not an override. */
export function templateParameters(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new AgentError('bad-input', `--param wants NAME=VALUE, got ${JSON.stringify(pair)}`);
    const k = pair.slice(0, at);
    if (Object.hasOwn(out, k)) throw new AgentError('bad-input', `--param ${k} is given twice`);
    out[k] = pair.slice(at + 1);
  }
  return out;
}

/** Exactly one of --imsi and --imei. */
export function networkIdentityOf(f: { imsi?: string; imei?: string }): NetworkIdentity {
  if ((f.imsi === undefined) === (f.imei === undefined)) throw new AgentError('bad-input', 'give exactly one of --imsi and --imei');
  return f.imsi !== undefined ? { type: 'imsi', value: f.imsi.trim() } : { type: 'imei', value: f.imei!.trim() };
}

export function gatewayCommand(): Command {
  const gateway = new Command('gateway').description('gateway duties for devices behind it');
  gateway
    .command('bootstrap')
    .description("a device's certificate by its IMSI or IMEI, asked for with this gateway's certificate (POST /api/v1/network-bootstrap)")
    .requiredOption('--data <dir>', "the gateway's agent data directory (its identity and trusted roots)")
    .requiredOption('--api <url>', 'https://host:port of the api port')
    .option('--imsi <digits>', "the device's IMSI")
    .option('--imei <digits>', "the device's IMEI (or IMEISV)")
    .requiredOption('--template <name>', 'provisioning template')
    .option('--csr <file>', "the device's CSR (PEM): relay it and print certificate and chain")
    .option('--device-dir <dir>', 'make the device key here and leave an agent data dir (key 0600, certificate, chain, roots)')
    .option('--param <k=v>', 'template parameter (repeatable)', (v: string, prev: string[]) => [...prev, v], [])
    .option('--timeout <ms>', 'deadline of the request', '30000')
    .option('--json', 'print the server\'s answer as JSON')
    .action(async (o: BootstrapFlags) => {
      if ((o.csr === undefined) === (o.deviceDir === undefined)) throw new AgentError('bad-input', 'give exactly one of --csr FILE and --device-dir DIR');
      const timeoutMs = Number(o.timeout);
      if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) throw new AgentError('bad-input', `--timeout wants milliseconds, got ${o.timeout}`);
      const common = { gatewayDir: o.data, url: o.api, networkIdentity: networkIdentityOf(o), template: o.template, parameters: templateParameters(o.param), timeoutMs };
      if (o.csr !== undefined) {
        const answer = await bootstrapWithCsr({ ...common, csrPem: await readFile(o.csr, 'utf8') });
        if (o.json) console.log(JSON.stringify(answer, null, 2));
        else {
          console.error(`issued certificate ${answer.certificateId} for thing ${answer.thingName}`);
          process.stdout.write(answer.certificatePem + answer.chainPem);
        }
        return;
      }
      const { answer, identity } = await bootstrapIntoDeviceDir({ ...common, deviceDir: o.deviceDir! });
      if (o.json) console.log(JSON.stringify(answer, null, 2));
      else console.log(`bootstrapped thing ${answer.thingName}: ${identity.certificate.subject()} (serial ${identity.certificate.serial()}), valid until ${identity.certificate.notAfter().toISOString()}, in ${o.deviceDir}`);
    });
  return gateway;
}
