/**
 * The gateway role (DESIGN.md "bootstrap by network identity (a trusted
 * gateway asserts the SIM's IMSI)"): a thing whose attribute
 * `certfleet.role` is `gateway` may bootstrap other devices by their network
 * identity, over mutual TLS with one of its active certificates.
 *
 * The role is an attribute an operator sets (`POST /api/v1/things`,
 * `certfleet thing create NAME --attr certfleet.role=gateway`). A device
 * cannot give it to itself: devices never write attributes, and the things
 * that EST enrollment and network bootstrap create from a template never
 * carry it (templates that would set it are refused for those flows).
 */
import { CertfleetError } from '../errors.js';
import type { ThingRecord } from '../store/index.js';
import type { ProvisioningTemplate } from './templates.js';

export const ROLE_ATTRIBUTE = 'certfleet.role';
export const GATEWAY_ROLE = 'gateway';

export const isGateway = (thing: ThingRecord | undefined): boolean => thing?.attributes[ROLE_ATTRIBUTE] === GATEWAY_ROLE;

/** Refuses a template that would put a role on the things it makes (a device would choose its own role). */
export function refuseRoleTemplates(name: string, t: ProvisioningTemplate): ProvisioningTemplate {
  if (Object.hasOwn(t.thing.attributes, ROLE_ATTRIBUTE)) {
    throw new CertfleetError('bad-request', `template ${name} sets the attribute ${ROLE_ATTRIBUTE}, which only an operator may set on a thing`);
  }
  return t;
}

