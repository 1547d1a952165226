/** Thing names and attributes: what the registry accepts. */
import { CertfleetError } from '../errors.js';

/** As AWS IoT thing names, so names move between the two: 1-128 of A-Z a-z 0-9 : _ -. */
const THING_NAME = /^[A-Za-z0-9:_-]{1,128}$/;
/** Attribute names are what a policy's ${thing.attr.KEY} can name. */
const ATTR_KEY = /^[A-Za-z0-9_.-]{1,128}$/;
const MAX_ATTRS = 50;

export function checkThingName(name: unknown): string {
  if (typeof name !== 'string' || !THING_NAME.test(name)) {
    throw new CertfleetError('bad-request', 'thing name must be 1-128 characters of A-Z a-z 0-9 : _ -');
  }
  return name;
}

export function checkAttributes(attrs: unknown): Record<string, string> {
  if (attrs === undefined || attrs === null) return {};
  if (typeof attrs !== 'object' || Array.isArray(attrs)) throw new CertfleetError('bad-request', 'attributes must be an object of strings');
  const entries = Object.entries(attrs as Record<string, unknown>);
  if (entries.length > MAX_ATTRS) throw new CertfleetError('bad-request', `at most ${MAX_ATTRS} attributes`);
  for (const [k, v] of entries) {
    if (!ATTR_KEY.test(k)) throw new CertfleetError('bad-request', `attribute name "${k}" is not allowed`);
    if (typeof v !== 'string' || v.length > 800 || /[\u0000-\u001f\u007f]/.test(v)) {
      throw new CertfleetError('bad-request', `attribute ${k} must be a string of at most 800 characters without control characters`);
    }
  }
  return Object.fromEntries(entries) as Record<string, string>;
}

/** Group names follow thing names. */
export function checkGroupName(name: unknown): string {
  if (typeof name !== 'string' || !THING_NAME.test(name)) {
    throw new CertfleetError('bad-request', 'group name must be 1-128 characters of A-Z a-z 0-9 : _ -');
  }
  return name;
}

/** As AWS IoT policy names: 1-128 of word characters and + = , . @ -. */
const POLICY_NAME = /^[\w+=,.@-]{1,128}$/;

export function checkPolicyName(name: unknown): string {
  if (typeof name !== 'string' || !POLICY_NAME.test(name)) {
    throw new CertfleetError('bad-request', 'policy name must be 1-128 characters of A-Z a-z 0-9 _ + = , . @ -');
  }
  return name;
}

export function checkDescription(d: unknown): string | undefined {
  if (d === undefined || d === null) return undefined;
  if (typeof d !== 'string' || d.length > 2048 || /[\u0000-\u001f\u007f]/.test(d.replace(/[\n\t]/g, ''))) {
    throw new CertfleetError('bad-request', 'description must be at most 2048 characters without control characters');
  }
  return d;
}
