/** The certfleet-agent command: the device-side SDK from a shell. */
import { readFile, writeFile } from 'node:fs/promises';
import { Command, Option } from 'commander';
import { isKeyAlgorithm, KEY_ALGORITHMS, parseGeneralName, type KeyAlgorithm } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { CertificateSlots } from '../slots.js';
import { TrustStore } from '../trust-store.js';
import { formatStatus, readStatus } from './status.js';

const DIR_DEFAULT = './certfleet-agent';

function keyAlgorithm(v: string): KeyAlgorithm {
  if (!isKeyAlgorithm(v)) throw new AgentError('bad-input', `key algorithm must be one of ${KEY_ALGORITHMS.join(', ')}`);
  return v;
}

const collect = (v: string, prev: string[]) => [...prev, v];
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
