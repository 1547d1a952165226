/**
 * PKCS#11 CKM_ECDSA returns the signature as r || s, each as wide as the
 * curve order (PKCS#11 v2.40 Current Mechanisms §2.3.1); X.509 and PKCS#10
 * carry it as the DER SEQUENCE { r INTEGER, s INTEGER } of RFC 3279 §2.2.3
 * (Ecdsa-Sig-Value).
 */
import { AgentError } from '../errors.js';
import { encodeTlv, TAG, unsignedInteger } from '../der.js';

export function rawEcdsaToDer(raw: Uint8Array): Buffer {
  if (raw.length === 0 || raw.length % 2 !== 0) throw new AgentError('bad-response', `an ECDSA r||s signature has an even, non-zero length; got ${raw.length} bytes`);
  const half = raw.length / 2;
  return encodeTlv(TAG.sequence, unsignedInteger(raw.subarray(0, half)), unsignedInteger(raw.subarray(half)));
}
