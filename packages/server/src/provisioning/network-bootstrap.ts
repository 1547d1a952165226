/**
 * Bootstrap by network identity (DESIGN.md "Provisioning": a trusted
 * gateway asserts the SIM's IMSI). A device on a private network has no
 * credential of its own yet; the gateway it sits behind knows its IMSI or
 * IMEI from the network and vouches for it: it sends the device's CSR with
 * that identity, over mutual TLS with its own certificate, and gets the
 * device's certificate back.
 *
 *  - Only a gateway may ask: its certificate is admitted as by the broker and
 *    sits on a thing with `certfleet.role=gateway` (gateway-role.ts), else 403.
 *  - The identity is checked strictly (network-identity.ts) and bound to the
 *    thing, unique per type across things (stored attribute `imsi`/`imei`
 *    and a unique index).
 *  - The thing comes from a provisioning template: its name is the
 *    template's `thing.name`, where the declared parameter `IMSI` (or
 *    `IMEI`) is the asserted identity whatever the gateway sends (e.g.
 *    `"imsi-${parameters.IMSI}"`). An identity bound already names its
 *    thing, and the template's override rule decides (`do-nothing`:
 *    another certificate on the same thing; `replace`, `merge`; `fail`: 409).
 *  - Thing, identity, certificate, policies and groups are written in one
 *    transaction with one audit entry whose actor is the gateway.
 */
import { commonName, parseCsr, decodePem, Certificate, OID } from '@certfleet/pki';
import { CertfleetError } from '../errors.js';
import type { EventBus } from '../events/index.js';
import { audit, type Actor } from '../registry/actor.js';
import type { Issuance } from '../registry/issuance.js';
import type { CertificateStore, EnrollmentStore, ThingStore } from '../store/index.js';
import { isGateway, refuseRoleTemplates } from './gateway-role.js';
import { parseNetworkIdentity } from './network-identity.js';
import type { ProvisioningTemplates } from './template-registry.js';
import { decideThing, renderTemplate, resolveParameters } from './templates.js';

const MAX_CSR_LENGTH = 32 * 1024;

export interface NetworkBootstrapDeps {
  readonly store: Pick<EnrollmentStore, 'networkIdentityThing' | 'bootstrapNetworkIdentity'> & Pick<ThingStore, 'getThing'> & Pick<CertificateStore, 'getCertificate'>;
  readonly templates: Pick<ProvisioningTemplates, 'load'>;
  /** An Issuance whose thing lookup lets the store create the thing in the certificate's transaction. */
  readonly issuance: Pick<Issuance, 'fromCsr'>;
  readonly bus: Pick<EventBus, 'emit'>;
  readonly now: () => Date;
}

export interface Bootstrapped {
  readonly thingName: string;
  readonly certificateId: string;
  readonly certificatePem: string;
  readonly chainPem: string;
  readonly deviceConfiguration: Record<string, unknown>;
}

export const gatewayActor = (certificateId: string): Actor => ({ id: `gateway:${certificateId}` });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export class NetworkBootstrap {
  constructor(private readonly deps: NetworkBootstrapDeps) {}

  /** 403 unless the admitted certificate `gatewayCertificateId` is a gateway's. */
  async gateway(gatewayCertificateId: string): Promise<string> {
    const cert = await this.deps.store.getCertificate(gatewayCertificateId);
    const thing = cert?.thingName ? await this.deps.store.getThing(cert.thingName) : undefined;
    if (!isGateway(thing)) throw new CertfleetError('forbidden', 'only a gateway (a thing with the attribute certfleet.role=gateway) may bootstrap devices by network identity');
    return thing!.name;
  }

  async bootstrap(gatewayCertificateId: string, body: unknown): Promise<Bootstrapped> {
    const gatewayThing = await this.gateway(gatewayCertificateId);
    if (!isObject(body)) throw new CertfleetError('bad-request', 'the request must be a JSON object');
    const identity = parseNetworkIdentity(body.networkIdentity);
    const csr = body.csr;
    if (typeof csr !== 'string' || csr.length === 0 || csr.length > MAX_CSR_LENGTH) throw new CertfleetError('bad-request', `csr must be a PEM CSR of at most ${MAX_CSR_LENGTH} characters`);
    if (typeof body.template !== 'string') throw new CertfleetError('bad-request', 'template must name a provisioning template');
    const templateName = body.template;
    const loaded = await this.deps.templates.load(templateName);
    if (!loaded) throw new CertfleetError('not-found', `no provisioning template named ${templateName}`);
    const template = refuseRoleTemplates(templateName, loaded);
    if (template.thing.name.includes('${cert.id}')) throw new CertfleetError('bad-request', 'the thing is named before its certificate exists: the template cannot name it by ${cert.id}');

    const der = decodePem(csr, 'CERTIFICATE REQUEST', 'NEW CERTIFICATE REQUEST');
    const csrCn = commonName(parseCsr(der).subject) ?? null;
    const identityParameter = identity.type.toUpperCase();
    const sent = body.parameters === undefined ? {} : body.parameters;
    if (!isObject(sent)) throw new CertfleetError('bad-request', 'parameters must be an object');
    // The gateway's assertion, not whatever else was sent, is the identity.
    const parameters = resolveParameters(template, { ...sent, ...(Object.hasOwn(template.parameters, identityParameter) ? { [identityParameter]: identity.value } : {}) });
    const render = (certificate: { id: string; subjectCn: string | null }) => renderTemplate(template, { parameters, certificate });

    const thingName = (await this.deps.store.networkIdentityThing(identity.type, identity.value)) ?? render({ id: '0'.repeat(64), subjectCn: csrCn }).thingName;
    const actor = gatewayActor(gatewayCertificateId);
    const at = this.deps.now();
    let deviceConfiguration: Record<string, unknown> = {};
    const issued = await this.deps.issuance.fromCsr({
      csr: der,
      profile: 'device',
      thing: thingName,
      store: async (record) => {
        const plan = render({ id: record.id, subjectCn: cnOf(record.der) });
        deviceConfiguration = plan.deviceConfiguration;
        const attributes = { ...plan.attributes, [identity.type]: identity.value };
        await this.deps.store.bootstrapNetworkIdentity(
          { type: identity.type, value: identity.value, thingName, at, certificate: record, decideThing: (existing) => decideThing(plan.override, existing, attributes), policies: plan.policies, groups: plan.groups },
          audit(actor, 'provisioning.network-bootstrap', `certificate:${record.id}`, {
            gatewayThing,
            networkIdentity: identity,
            thing: thingName,
            template: templateName,
            serial: record.serial,
            policies: plan.policies,
            groups: plan.groups,
          }),
        );
      },
    });
    this.deps.bus.emit('thing.changed', { thingName, certificateId: issued.record.id });
    return { thingName, certificateId: issued.record.id, certificatePem: issued.certificatePem, chainPem: issued.chainPem, deviceConfiguration };
  }
}

function cnOf(der: Buffer): string | null {
  return Certificate.fromDer(der).subjectAttributes().filter((a) => a.type === OID.commonName).at(-1)?.value ?? null;
}
