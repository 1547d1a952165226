/**
 * Child process for the power-cut tests of slots.ts: installs an identity
 * with writeNext + promote while the parent kills it, either at a named step
 * (CERTFLEET_AGENT_CRASH_AT) or after a random delay.
 *
 *   node --import tsx slot-writer.ts once SLOTS_DIR IDENTITY_DIR
 *   node --import tsx slot-writer.ts loop SLOTS_DIR IDENTITY_DIR_A IDENTITY_DIR_B
 *
 * An identity dir holds cert.pem, chain.pem and key.pem. `loop` swaps
 * between the two identities until killed and prints "ready" once started,
 * so the parent's random delay lands inside slot writes, not in start-up.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CertificateSlots, type SlotMaterial } from '../slots.js';

async function material(dir: string): Promise<SlotMaterial> {
  const [certificatePem, chainPem, keyPem] = await Promise.all(['cert.pem', 'chain.pem', 'key.pem'].map((f) => readFile(join(dir, f), 'utf8')));
  return { certificatePem: certificatePem!, chainPem: chainPem!, keyPem: keyPem! };
}

const [mode, slotsDir, ...identities] = process.argv.slice(2);
const slots = await CertificateSlots.open(slotsDir!);
const ids = await Promise.all(identities.map(material));
if (mode === 'once') {
  await slots.writeNext(ids[0]!);
  await slots.promote();
} else if (mode === 'loop') {
  process.stdout.write('ready\n');
  for (let i = 0; ; i++) {
    await slots.writeNext(ids[i % ids.length]!);
    await slots.promote();
  }
} else {
  throw new Error(`unknown mode ${mode}`);
}
