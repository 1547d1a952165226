/** certfleet claim … (claim credentials for fleet provisioning) */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { writePrivate } from '../../config/data-dir.js';
import { api } from '../client.js';
import { fields, positiveInt, print, server, withServer } from './common.js';

interface Claim {
  id: string;
  template: string;
  certificatePem: string;
  privateKeyPem: string;
  chainPem: string;
  caPem: string;
  certificate: { serial: string; subject: string; notAfter: string };
}

type Opts = { data: string; json?: boolean };

export function claimCommands(cmd: Command): void {
  const claim = cmd.command('claim').description('claim credentials: one certificate a batch of devices uses to provision itself');

  withServer(claim.command('create').description('make a claim credential for a template; writes cert.pem, key.pem (0600), chain.pem, ca.pem and claim.json'))
    .requiredOption('--template <name>', 'the provisioning template the claim provisions with')
    .requiredOption('--out <dir>', 'where to write the credential')
    .option('--validity-days <n>', 'validity of the claim certificate (default: the device profile\'s)', positiveInt)
    .action(async (o: Opts & { template: string; out: string; validityDays?: number }) => {
      const c = await api<Claim>(server(o), 'POST', '/api/v1/claims', { template: o.template, ...(o.validityDays !== undefined ? { validityDays: o.validityDays } : {}) });
      const dir = resolve(o.out);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cert.pem'), c.certificatePem);
      writePrivate(join(dir, 'key.pem'), c.privateKeyPem);
      writeFileSync(join(dir, 'chain.pem'), c.chainPem);
      writeFileSync(join(dir, 'ca.pem'), c.caPem);
      writeFileSync(join(dir, 'claim.json'), JSON.stringify({ template: c.template, certificateId: c.id }, null, 2) + '\n');
      const files = ['cert.pem', 'key.pem', 'chain.pem', 'ca.pem', 'claim.json'].map((f) => join(dir, f));
      const { privateKeyPem: _key, ...shown } = c;
      print(o.json, { ...shown, files }, () =>
        fields([
          ['claim', c.id],
          ['template', c.template],
          ['subject', c.certificate.subject],
          ['valid until', c.certificate.notAfter],
          ['files', files.join(' ')],
        ]),
      );
    });
}
