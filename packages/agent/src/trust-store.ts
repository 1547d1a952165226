/**
 * The roots a device trusts to recognise its server: several at once, so a
 * trust-anchor rollover (DESIGN.md "Lifecycle") can push the new root long
 * before the old one expires and retire the old one only afterwards.
 *
 * One PEM file per root in DIR/trust/, named by its SHA-256 fingerprint, each
 * written atomically. The rule that keeps a device reachable: a root is never
 * removed while it is still needed to reach the server, and the last root is
 * never removed at all (a device without roots can never be told new ones).
 */
import { mkdir, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Certificate, OID, validateChain } from '@certfleet/pki';
import { fsyncDir, readIfExists, sweepTemporaries, writeFileDurable } from './durable-fs.js';
import { AgentError } from './errors.js';

export interface RemovalPolicy {
  /** True while `root` is still needed to reach the server; such a root stays. */
  readonly stillNeeded: (root: Certificate) => boolean;
}

/** What applyBundle did; sent back to the platform as the device's acknowledgement. */
export interface TrustBundleReceipt {
  /** Fingerprints of every root held after the change, sorted. */
  readonly roots: readonly string[];
  readonly added: readonly string[];
  readonly removed: readonly string[];
  /** Not in the bundle, kept because still needed (or the last one). */
  readonly retained: readonly string[];
}

/** Keep every root: the safe default until the caller can tell which roots reach the server. */
export const KEEP_ALL: RemovalPolicy = { stillNeeded: () => true };

const normalise = (fp: string) => fp.replace(/:/g, '').toLowerCase();

function parseRoots(pem: string): Certificate[] {
  let certs: Certificate[];
  try {
    certs = Certificate.allFromPem(pem);
  } catch (err) {
    throw new AgentError('bad-input', `not a PEM bundle of certificates: ${(err as Error).message}`, { cause: err });
  }
  for (const c of certs) {
    // Only CA certificates can anchor a path; a leaf here would be a pin, which this store does not do.
    if (!c.basicConstraints()?.ca) throw new AgentError('not-a-ca', `${c.subject()} is not a CA certificate`);
  }
  return certs;
}

export class TrustStore {
  private constructor(
    readonly dir: string,
    private readonly roots: Map<string, { cert: Certificate; file: string; shared: boolean }>,
    /** Files in DIR/trust/ that could not be read as CA certificates (shown by status, never fatal). */
    readonly problems: readonly string[],
    private readonly policy: RemovalPolicy,
  ) {}

  /** Opens DIR/trust/ (created if absent). `policy` is applyBundle's default. */
  static async open(agentDir: string, opts: { policy?: RemovalPolicy } = {}): Promise<TrustStore> {
    const dir = join(agentDir, 'trust');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await sweepTemporaries(dir, { minAgeMs: 60_000 });
    const roots = new Map<string, { cert: Certificate; file: string; shared: boolean }>();
    const problems: string[] = [];
    for (const name of (await readdir(dir)).filter((n) => n.endsWith('.pem') && !n.startsWith('.')).sort()) {
      const file = join(dir, name);
      try {
        const certs = parseRoots((await readIfExists(file)) ?? '');
        for (const cert of certs) roots.set(cert.fingerprint(), { cert, file, shared: certs.length > 1 });
      } catch (err) {
        // One stray file must not cut the device off from the roots in the others.
        problems.push(`${name}: ${(err as Error).message}`);
      }
    }
    return new TrustStore(dir, roots, problems, opts.policy ?? KEEP_ALL);
  }

  /** The roots, by subject then fingerprint. */
  list(): Certificate[] {
    return [...this.roots.values()].map((r) => r.cert).sort((a, b) => a.subject().localeCompare(b.subject()) || a.fingerprint().localeCompare(b.fingerprint()));
  }

  /** The root with this fingerprint (hex, colons allowed) or a unique prefix of at least 8 hex digits. */
  find(fingerprint: string): Certificate | undefined {
    const fp = normalise(fingerprint);
    if (fp.length < 8) return undefined;
    const hits = [...this.roots.keys()].filter((k) => k.startsWith(fp));
    return hits.length === 1 ? this.roots.get(hits[0]!)!.cert : undefined;
  }

  /** Every root as one PEM text (node:tls `ca:` takes it as is). */
  bundle(): string {
    return this.list().map((c) => c.toPem()).join('');
  }

  /** Adds each CA certificate of `pem`; returns the fingerprints that were new. All or nothing on bad input. */
  async add(pem: string): Promise<string[]> {
    const added: string[] = [];
    for (const cert of parseRoots(pem)) {
      const fp = cert.fingerprint();
      if (this.roots.has(fp)) continue;
      const file = join(this.dir, `${fp}.pem`);
      await writeFileDurable(file, cert.toPem(), { mode: 0o644, overwrite: true });
      this.roots.set(fp, { cert, file, shared: false });
      added.push(fp);
    }
    return added;
  }

  /** Removes a root, unless it is still needed to reach the server or is the last one. */
  async remove(fingerprint: string, policy: RemovalPolicy): Promise<void> {
    const cert = this.find(fingerprint);
    if (!cert) throw new AgentError('trust-root-unknown', `no trusted root ${fingerprint}`);
    if (this.roots.size === 1) throw new AgentError('trust-root-needed', `${cert.subject()} is the last trusted root`);
    if (policy.stillNeeded(cert)) throw new AgentError('trust-root-needed', `${cert.subject()} is still needed to reach the server`);
    const entry = this.roots.get(cert.fingerprint())!;
    if (entry.shared) throw new AgentError('bad-input', `${cert.subject()} shares ${entry.file} with other certificates; edit that file by hand`);
    await unlink(entry.file);
    await fsyncDir(this.dir);
    this.roots.delete(cert.fingerprint());
  }

  /**
   * Applies a `$certfleet/things/{thing}/trust-bundle` message: adds the
   * bundle's new roots first, then removes roots absent from it that the
   * policy no longer needs, then acknowledges. Adding before removing means
   * the device never holds fewer of the roots it needs, even if cut off
   * half-way; a repeated bundle is a no-op that is acknowledged again.
   */
  async applyBundle(
    pem: string,
    ack: (receipt: TrustBundleReceipt) => void | Promise<void>,
    policy: RemovalPolicy = this.policy,
  ): Promise<TrustBundleReceipt> {
    const wanted = new Set(parseRoots(pem).map((c) => c.fingerprint()));
    const added = await this.add(pem);
    const removed: string[] = [];
    const retained: string[] = [];
    for (const cert of this.list().filter((c) => !wanted.has(c.fingerprint()))) {
      try {
        await this.remove(cert.fingerprint(), policy);
        removed.push(cert.fingerprint());
      } catch (err) {
        if (!(err instanceof AgentError) || (err.code !== 'trust-root-needed' && err.code !== 'bad-input')) throw err;
        retained.push(cert.fingerprint());
      }
    }
    const receipt: TrustBundleReceipt = { roots: [...this.roots.keys()].sort(), added, removed, retained };
    await ack(receipt);
    return receipt;
  }

  /**
   * A removal policy from the chain the server presented (leaf first): a
   * root is needed if the chain validates with the current roots but not
   * without that one. If the chain does not validate at all, every root is
   * treated as needed: nothing is removed on evidence that cannot be checked.
   */
  neededToReach(serverChain: readonly Certificate[], at: Date): RemovalPolicy {
    const [leaf, ...intermediates] = serverChain;
    const all = this.list();
    const reaches = (roots: Certificate[]) => {
      if (!leaf || roots.length === 0) return false;
      try {
        validateChain(leaf, { intermediates, roots, at, purpose: OID.serverAuth });
        return true;
      } catch {
        return false;
      }
    };
    if (!reaches(all)) return KEEP_ALL;
    return { stillNeeded: (root) => !reaches(all.filter((r) => r.fingerprint() !== root.fingerprint())) };
  }
}
