/** The certfleet command. Each subcommand talks to the running server, except init and serve. */
import { Command, Option } from 'commander';
import { isKeyAlgorithm, KEY_ALGORITHMS, type KeyAlgorithm } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import { initDataDir } from '../node/init.js';
import { startNode } from '../node/serve.js';
import { trustCommands } from './commands/trust.js';
import { ApiError } from './client.js';
import { auditLogCommands } from './commands/audit-log.js';
import { auditCommands } from './commands/audit.js';
import { batchCommands } from './commands/batch.js';
import { caCommands } from './commands/ca.js';
import { certCommands } from './commands/cert.js';
import { groupCommands } from './commands/group.js';
import { policyCommands } from './commands/policy.js';
import { claimCommands } from './commands/claim.js';
import { estCommands } from './commands/est.js';
import { templateCommands } from './commands/template.js';
import { thingCommands } from './commands/thing.js';
import { tokenCommands } from './commands/token.js';
import { webhookCommands } from './commands/webhook.js';
import { campaignCommands } from './commands/campaign.js';
import { tenantCommands } from './commands/tenant.js';

function port(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CertfleetError('bad-request', `bad port ${v}`);
  return n;
}

function keyAlgorithm(v: string): KeyAlgorithm {
  if (!isKeyAlgorithm(v)) throw new CertfleetError('bad-request', `key algorithm must be one of ${KEY_ALGORITHMS.join(', ')}`);
  return v;
}

export function program(): Command {
  const cmd = new Command('certfleet').description('Certificate identity for every device of an IoT fleet').showHelpAfterError();
  // `--tenant NAME` anywhere on the line: every server-talking command then uses DATA/tenants/NAME/cli.json (client.ts).
  cmd.option('--tenant <name>', 'talk to this tenant (its SNI host and token; also CERTFLEET_TENANT)').hook('preAction', (root) => {
    const tenant = (root.opts() as { tenant?: string }).tenant;
    if (tenant) process.env.CERTFLEET_TENANT = tenant;
  });

  cmd
    .command('init')
    .description('create a data dir: database, root and issuing CA, TLS certificate, admin token')
    .option('--data <dir>', 'data directory', './certfleet-data')
    .option('--force', 'replace an existing data dir')
    .option('--database <url>', 'postgres://… (default: embedded SQLite in the data dir)')
    .addOption(new Option('--key-algorithm <alg>', 'CA key algorithm').choices([...KEY_ALGORITHMS]).default('ec-p256'))
    .action(async (o: { data: string; force?: boolean; database?: string; keyAlgorithm: string }) => {
      const r = await initDataDir({
        data: o.data,
        force: o.force ?? false,
        keyAlgorithm: keyAlgorithm(o.keyAlgorithm),
        ...(o.database ? { database: o.database } : {}),
        ...(process.env.CERTFLEET_PASSPHRASE ? { passphrase: process.env.CERTFLEET_PASSPHRASE } : {}),
      });
      console.log(`initialised ${r.dir.root}`);
      console.log(`root CA ${r.rootId}, issuing CA ${r.issuingId}; devices trust ${r.dir.caFile}`);
      console.log(`admin token (shown once; also in ${r.dir.cliJson}): ${r.adminToken}`);
    });

  cmd
    .command('serve')
    .description('run the node: HTTPS API, MQTT over mutual TLS, plain HTTP for OCSP, CRLs and the trust bundle')
    .option('--data <dir>', 'data directory (initialised on first start)', './certfleet-data')
    .option('--host <addr>', 'address to listen on', '::')
    .option('--api-port <n>', 'HTTPS API port (0: any free port)', port, 8443)
    .option('--mqtt-port <n>', 'MQTT over TLS port', port, 8883)
    .option('--http-port <n>', 'plain HTTP port', port, 8080)
    .option('--database <url>', 'database URL (default: the one chosen at init)')
    .option('--redis <url>', 'redis://… for several nodes')
    .option('--public-url <url>', 'how devices reach the http port, written into certificates as CRL and OCSP locations (default http://localhost:PORT)')
    .option('--log', 'log every request (JSON, pino)')
    .action(async (o: { data: string; host: string; apiPort: number; mqttPort: number; httpPort: number; database?: string; redis?: string; publicUrl?: string; log?: boolean }) => {
      const node = await startNode({
        data: o.data,
        host: o.host,
        apiPort: o.apiPort,
        mqttPort: o.mqttPort,
        httpPort: o.httpPort,
        logger: o.log ?? false,
        ...(o.database ? { database: o.database } : {}),
        ...(o.redis ? { redis: o.redis } : {}),
        ...(o.publicUrl ? { publicUrl: o.publicUrl } : {}),
        ...(process.env.CERTFLEET_PASSPHRASE ? { passphrase: process.env.CERTFLEET_PASSPHRASE } : {}),
      });
      const stop = () => {
        void node.close().then(() => process.exit(0));
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  thingCommands(cmd);
  certCommands(cmd);
  caCommands(cmd);
  trustCommands(cmd);
  tokenCommands(cmd);
  webhookCommands(cmd);
  campaignCommands(cmd);
  groupCommands(cmd);
  policyCommands(cmd);
  templateCommands(cmd);
  claimCommands(cmd);
  estCommands(cmd);
  auditLogCommands(cmd);
  auditCommands(cmd);
  batchCommands(cmd);
  tenantCommands(cmd);
  return cmd;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await program().parseAsync(argv);
  } catch (err) {
    if (err instanceof ApiError) {
      console.error(`error: ${err.message}`);
      process.exitCode = 1;
    } else if (err instanceof CertfleetError || (err as { name?: string }).name === 'PkiError') {
      const e = err as CertfleetError;
      console.error(`error: ${e.message} (${e.code})`);
      process.exitCode = 1;
    } else throw err;
  }
}
