/**
 * A device key held on a PKCS#11 token: an EC P-256 pair generated on the
 * token with the private half CKA_SENSITIVE and not CKA_EXTRACTABLE
 * (PKCS#11 v2.40 §4.9), so no software on the device can ever read it. The
 * agent gets its public key and signatures, nothing more.
 *
 * CSRs: @certfleet/pki is the one encoder of CertificationRequestInfo
 * (RFC 2986 §4.1) and it signs with a node:crypto KeyObject. So the request
 * info is taken from a request pki built around the token's public key
 * (signed by a throwaway key that is dropped at once), and is signed again
 * here on the token: CKM_ECDSA over the SHA-256 digest, the raw r||s turned
 * into the DER Ecdsa-Sig-Value X.509 carries (RFC 3279 §2.2.3, RFC 5758
 * §3.2: ecdsa-with-SHA256, parameters absent).
 *
 * TLS: Node 20 takes a client key only as PEM/DER or through an OpenSSL
 * engine (`privateKeyEngine` / `privateKeyIdentifier`, deprecated with
 * OpenSSL 3 engines; providers are not reachable from Node 20). tlsEngineKey()
 * gives the RFC 7512 PKCS#11 URI for that; tlsKeyPem() refuses.
 *
 * What was measured with Node 20.20 (OpenSSL 3.0 built in) and libp11's
 * engine (Debian libengine-pkcs11-openssl): loaded by its path, the engine
 * signs the CertificateVerify and the mutual-TLS handshake succeeds; but
 * OpenSSL refuses a second engine initialisation in the same process
 * ("engine routines::init failed"), so one process can hold one token-backed
 * TLS identity. tlsSecureContext() builds that context once and reuses it
 * for every connection; a renewed key takes effect on the next start.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createSecureContext, type SecureContext } from 'node:tls';
import { buildCsr, encodePem, generateKeyPair, parseName, type Certificate, type GeneralName, type NameAttribute } from '@certfleet/pki';
import { AgentError } from '../errors.js';
import { bytesOf, childrenOf, encodeTlv, expectTag, readTlv, TAG } from '../der.js';
import type { KeyStore } from '../keystore.js';
import { rawEcdsaToDer } from './ecdsa-signature.js';
import { tokenError, TokenSession, type Handle, type TokenOptions } from './token.js';

/** DER of the namedCurve OID prime256v1 (RFC 5480 §2.1.1.1): CKA_EC_PARAMS of a P-256 key. */
const P256_PARAMS = Buffer.from('06082a8648ce3d030107', 'hex');
const BIT_STRING = 0x03;

/** Where Debian, Fedora and source builds put libp11's engine. */
export const ENGINE_PATHS = [
  '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so',
  '/usr/lib/aarch64-linux-gnu/engines-3/pkcs11.so',
  '/usr/lib64/engines-3/pkcs11.so',
  '/usr/local/lib/engines-3/pkcs11.so',
];

let engineContext: { identifier: string; cert: string; ca: string | undefined; context: SecureContext } | undefined;

export interface Pkcs11KeyOptions extends TokenOptions {
  /** CKA_LABEL of the key pair on the token. */
  readonly keyLabel: string;
}

/** The uncompressed point from CKA_EC_POINT: DER OCTET STRING per PKCS#11 v2.40 §2.3.3, though some tokens give it bare. */
function ecPoint(value: Buffer): Buffer {
  if (value[0] === 0x04 && value.length === 65) return value;
  const el = readTlv(value, 0);
  if (el.tag !== TAG.octetString) throw new AgentError('token-error', 'CKA_EC_POINT is neither a point nor an OCTET STRING');
  return value.subarray(el.contentStart, el.end);
}

function publicKeyFromPoint(point: Buffer): KeyObject {
  if (point.length !== 65 || point[0] !== 0x04) throw new AgentError('token-error', 'the token key is not an uncompressed P-256 point');
  const b64 = (b: Buffer) => b.toString('base64url');
  return createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: b64(point.subarray(1, 33)), y: b64(point.subarray(33)) }, format: 'jwk' });
}

export class Pkcs11KeyStore implements KeyStore {
  readonly algorithm = 'ec-p256';

  private constructor(
    private readonly token: TokenSession,
    private readonly privateHandle: Handle,
    private readonly publicHandle: Handle | undefined,
    private readonly pub: KeyObject,
    readonly options: Pkcs11KeyOptions,
  ) {}

  /** Generates a P-256 pair on the token; 'key-exists' if a key with this label is there already. */
  static async generate(opts: Pkcs11KeyOptions): Promise<Pkcs11KeyStore> {
    const token = await TokenSession.open(opts);
    const { p, module, session } = token;
    try {
      if (token.find([{ type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }, { type: p.CKA_LABEL, value: opts.keyLabel }]).length > 0) {
        throw new AgentError('key-exists', `token ${opts.tokenLabel} already holds a key labelled ${opts.keyLabel}`);
      }
      const id = randomBytes(16);
      const common = [
        { type: p.CKA_TOKEN, value: true },
        { type: p.CKA_LABEL, value: opts.keyLabel },
        { type: p.CKA_ID, value: id },
      ];
      const pair = module.C_GenerateKeyPair(
        session,
        { mechanism: p.CKM_EC_KEY_PAIR_GEN },
        [...common, { type: p.CKA_EC_PARAMS, value: P256_PARAMS }, { type: p.CKA_VERIFY, value: true }],
        [
          ...common,
          { type: p.CKA_PRIVATE, value: true },
          // The point of a token: the private key can be used, never read (PKCS#11 v2.40 §4.9 table 27).
          { type: p.CKA_SENSITIVE, value: true },
          { type: p.CKA_EXTRACTABLE, value: false },
          { type: p.CKA_SIGN, value: true },
        ],
      );
      const [point] = module.C_GetAttributeValue(session, pair.publicKey, [{ type: p.CKA_EC_POINT }]);
      return new Pkcs11KeyStore(token, pair.privateKey, pair.publicKey, publicKeyFromPoint(ecPoint(point!.value as Buffer)), opts);
    } catch (err) {
      token.close();
      throw tokenError(`cannot generate a key on token ${opts.tokenLabel}`, err);
    }
  }

  /** Opens the key labelled `keyLabel`; 'key-missing' if the token has none. */
  static async open(opts: Pkcs11KeyOptions): Promise<Pkcs11KeyStore> {
    const token = await TokenSession.open(opts);
    const { p, module, session } = token;
    try {
      const [priv] = token.find([{ type: p.CKA_CLASS, value: p.CKO_PRIVATE_KEY }, { type: p.CKA_LABEL, value: opts.keyLabel }]);
      if (priv === undefined) throw new AgentError('key-missing', `no key labelled ${opts.keyLabel} on token ${opts.tokenLabel}`);
      const [idAttr] = module.C_GetAttributeValue(session, priv, [{ type: p.CKA_ID }]);
      const [pubHandle] = token.find([{ type: p.CKA_CLASS, value: p.CKO_PUBLIC_KEY }, { type: p.CKA_ID, value: idAttr!.value as Buffer }]);
      if (pubHandle === undefined) throw new AgentError('key-missing', `the key ${opts.keyLabel} on ${opts.tokenLabel} has no public half`);
      const [point] = module.C_GetAttributeValue(session, pubHandle, [{ type: p.CKA_EC_POINT }]);
      return new Pkcs11KeyStore(token, priv, pubHandle, publicKeyFromPoint(ecPoint(point!.value as Buffer)), opts);
    } catch (err) {
      token.close();
      throw tokenError(`cannot open key ${opts.keyLabel} on token ${opts.tokenLabel}`, err);
    }
  }

  static async openOrGenerate(opts: Pkcs11KeyOptions): Promise<Pkcs11KeyStore> {
    try {
      return await Pkcs11KeyStore.open(opts);
    } catch (err) {
      if (!(err instanceof AgentError) || err.code !== 'key-missing') throw err;
      return Pkcs11KeyStore.generate(opts);
    }
  }

  /** What the token says of the private key: the properties that make it a hardware key. */
  privateKeyAttributes(): { sensitive: boolean; extractable: boolean; alwaysSensitive: boolean; neverExtractable: boolean } {
    const { p, module, session } = this.token;
    const [s, e, as, ne] = module.C_GetAttributeValue(session, this.privateHandle, [
      { type: p.CKA_SENSITIVE },
      { type: p.CKA_EXTRACTABLE },
      { type: p.CKA_ALWAYS_SENSITIVE },
      { type: p.CKA_NEVER_EXTRACTABLE },
    ]);
    const flag = (a: { value?: unknown } | undefined) => (a?.value as Buffer | undefined)?.[0] === 1;
    return { sensitive: flag(s), extractable: flag(e), alwaysSensitive: flag(as), neverExtractable: flag(ne) };
  }

  publicKey(): KeyObject {
    return this.pub;
  }

  /** ECDSA with SHA-256 on the token; the DER Ecdsa-Sig-Value. */
  sign(data: Uint8Array): Buffer {
    const { p, module, session } = this.token;
    const digest = createHash('sha256').update(data).digest();
    try {
      module.C_SignInit(session, { mechanism: p.CKM_ECDSA }, this.privateHandle);
      return rawEcdsaToDer(module.C_Sign(session, digest, Buffer.alloc(132)));
    } catch (err) {
      throw tokenError(`signing on token ${this.token.tokenLabel} failed`, err);
    }
  }

  createCsr(subject: string | readonly NameAttribute[], sans: readonly GeneralName[] = []): string {
    const attrs = typeof subject === 'string' ? parseName(subject) : subject;
    const draft = buildCsr({ subject: attrs, publicKey: this.pub, privateKey: generateKeyPair('ec-p256').privateKey, sans });
    const [info, algorithm] = childrenOf(draft, expectTag(readTlv(draft, 0), TAG.sequence, 'CertificationRequest'));
    const infoDer = bytesOf(draft, expectTag(info, TAG.sequence, 'CertificationRequestInfo'));
    const signature = this.sign(infoDer);
    const der = encodeTlv(TAG.sequence, infoDer, bytesOf(draft, algorithm!), encodeTlv(BIT_STRING, Buffer.from([0]), signature));
    return encodePem('CERTIFICATE REQUEST', der);
  }

  tlsKeyPem(): string {
    throw new AgentError('token-error', `the key ${this.options.keyLabel} cannot leave token ${this.options.tokenLabel}; use tlsEngineKey()`);
  }

  /**
   * The key as OpenSSL's pkcs11 engine names it (RFC 7512 URI), for
   * tls.createSecureContext({ privateKeyEngine: 'pkcs11', privateKeyIdentifier }).
   * The PIN is in the URI because the engine has no other way to receive it.
   */
  tlsEngineKey(): { engine: string; identifier: string } {
    const enc = encodeURIComponent;
    return {
      engine: 'pkcs11',
      identifier: `pkcs11:token=${enc(this.options.tokenLabel)};object=${enc(this.options.keyLabel)};type=private?pin-value=${enc(this.options.pin)}`,
    };
  }

  /**
   * A TLS context presenting `certificatePem` with this token key, through
   * OpenSSL's pkcs11 engine (libp11); `PKCS11_MODULE_PATH` tells the engine
   * which module to load. Built once per process (see the file comment).
   */
  tlsSecureContext(certificatePem: string, opts: { ca?: string; engine?: string } = {}): SecureContext {
    const engine = opts.engine ?? ENGINE_PATHS.find((p) => existsSync(p));
    if (!engine) throw new AgentError('token-error', `no OpenSSL pkcs11 engine (libengine-pkcs11-openssl) in ${ENGINE_PATHS.join(', ')}`);
    const identifier = this.tlsEngineKey().identifier;
    if (engineContext) {
      if (engineContext.identifier === identifier && engineContext.cert === certificatePem && engineContext.ca === opts.ca) return engineContext.context;
      throw new AgentError('token-error', 'this process already holds a token-backed TLS identity; OpenSSL initialises the pkcs11 engine once per process: restart to use the new one');
    }
    process.env.PKCS11_MODULE_PATH ??= this.options.library;
    try {
      const context = createSecureContext({ cert: certificatePem, privateKeyEngine: engine, privateKeyIdentifier: identifier, ...(opts.ca ? { ca: opts.ca } : {}) });
      engineContext = { identifier, cert: certificatePem, ca: opts.ca, context };
      return context;
    } catch (err) {
      throw tokenError(`the pkcs11 engine ${engine} could not load key ${this.options.keyLabel}`, err);
    }
  }

  matches(cert: Certificate): boolean {
    return this.pub.equals(cert.publicKey);
  }

  /** Deletes the pair from the token (a renewal that failed its trial, a superseded key). */
  destroy(): void {
    const { module, session } = this.token;
    try {
      module.C_DestroyObject(session, this.privateHandle);
      if (this.publicHandle !== undefined) module.C_DestroyObject(session, this.publicHandle);
    } catch (err) {
      throw tokenError(`cannot delete key ${this.options.keyLabel}`, err);
    } finally {
      this.token.close();
    }
  }

  close(): void {
    this.token.close();
  }
}
