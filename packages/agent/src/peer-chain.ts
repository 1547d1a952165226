/** The certificate chain a TLS server sent, for the agent's own checks against its trust store and time floor. */
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';
import { encodePem } from '@certfleet/pki';

/** Leaf first, as PEM; the walk stops where the chain repeats (a self-signed root is its own issuer). */
export function peerChain(socket: TLSSocket): { pems: string[]; leaf: DetailedPeerCertificate } {
  const leaf = socket.getPeerCertificate(true);
  const pems: string[] = [];
  const seen = new Set<string>();
  for (let c: DetailedPeerCertificate | undefined = leaf; c?.raw && !seen.has(c.fingerprint256); c = c.issuerCertificate) {
    seen.add(c.fingerprint256);
    pems.push(encodePem('CERTIFICATE', c.raw));
  }
  return { pems, leaf };
}
