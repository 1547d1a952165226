/** The certificate chain a TLS client sent, for admission on the mqtt port and on the api port (EST, HTTPS provisioning). */
import type { Socket } from 'node:net';
import type { DetailedPeerCertificate, TLSSocket } from 'node:tls';

/** Longer than any chain certfleet issues (root, two intermediates, leaf) with room for cross-signs. */
const MAX_PEER_CHAIN = 10;

/** The DER certificates the client sent, leaf first; empty when it sent none or the socket is not TLS. */
export function peerChain(socket: Socket | TLSSocket): Buffer[] {
  if (typeof (socket as Partial<TLSSocket>).getPeerCertificate !== 'function') return [];
  const chain: Buffer[] = [];
  // getPeerCertificate(true) links each certificate to its issuer; a
  // self-signed one links to itself, and {} stands for "no certificate".
  let cert: DetailedPeerCertificate | undefined = (socket as TLSSocket).getPeerCertificate(true);
  while (cert?.raw && chain.length < MAX_PEER_CHAIN) {
    chain.push(cert.raw);
    if (cert.issuerCertificate === cert || !cert.issuerCertificate) break;
    cert = cert.issuerCertificate;
  }
  return chain;
}
