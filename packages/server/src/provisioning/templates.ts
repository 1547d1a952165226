/**
 * Provisioning templates: what a claimed device becomes. Checked strictly
 * once, when the template is saved, so provisioning never meets a surprise
 * (as policy documents, registry/policy/document.ts):
 *
 *   { "description"?: "…",
 *     "parameters"?: { "SerialNumber": { "type": "string", "default"?: "…" } },
 *     "thing": { "name": "${parameters.SerialNumber}" | "${cert.subject.cn}" | "…",
 *                "attributes"?: { "model": "${parameters.Model}" },
 *                "groups"?: ["sensors"],
 *                "override"?: "do-nothing" | "replace" | "fail" | "merge" },
 *     "policies"?: ["telemetry"],
 *     "deviceConfiguration"?: { …any JSON, strings may hold placeholders… },
 *     "preProvisioningHook"?: { "url": "https://…", "timeoutMs"?: 5000 } }
 *
 * Placeholders are `${parameters.NAME}` (a declared parameter),
 * `${cert.subject.cn}` and `${cert.id}` (the certificate being provisioned).
 * Every refusal is a CertfleetError 'bad-request' whose message starts with
 * the path of the offending value.
 */
import { CertfleetError } from '../errors.js';
import { checkAttributes, checkGroupName, checkPolicyName, checkThingName } from '../registry/things.js';
import type { ThingAttributes, ThingChange, ThingRecord } from '../store/index.js';

export const OVERRIDE_RULES = ['do-nothing', 'replace', 'fail', 'merge'] as const;
export type OverrideRule = (typeof OVERRIDE_RULES)[number];

export const TEMPLATE_MAX_BYTES = 20 * 1024;
const MAX_PARAMETERS = 50;
const MAX_LIST = 20;
const MAX_PARAMETER_VALUE = 256;
export const HOOK_DEFAULT_TIMEOUT_MS = 5000;
const HOOK_MAX_TIMEOUT_MS = 30_000;

const PARAMETER_NAME = /^[A-Za-z0-9_]{1,64}$/;
const PLACEHOLDER = /\$\{([^}]*)\}/g;
const CONTROL = /[\u0000-\u001f\u007f]/;

export interface ParameterSpec {
  readonly type: 'string';
  readonly default?: string;
}

export interface ProvisioningTemplate {
  readonly description?: string;
  readonly parameters: Readonly<Record<string, ParameterSpec>>;
  readonly thing: {
    readonly name: string;
    readonly attributes: Readonly<Record<string, string>>;
    readonly groups: readonly string[];
    readonly override: OverrideRule;
  };
  readonly policies: readonly string[];
  readonly deviceConfiguration: Readonly<Record<string, unknown>>;
  readonly preProvisioningHook?: { readonly url: string; readonly timeoutMs: number };
}

/** What the placeholders stand for when a device is provisioned. */
export interface RenderContext {
  readonly parameters: Readonly<Record<string, string>>;
  readonly certificate: { readonly id: string; readonly subjectCn: string | null };
}

/** A template with its placeholders filled: what the store is asked to do. */
export interface ProvisioningPlan {
  readonly thingName: string;
  readonly attributes: ThingAttributes;
  readonly groups: readonly string[];
  readonly override: OverrideRule;
  readonly policies: readonly string[];
  readonly deviceConfiguration: Record<string, unknown>;
}

const bad = (path: string, msg: string) => new CertfleetError('bad-request', `${path}: ${msg}`);
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function object(v: unknown, path: string): Record<string, unknown> {
  if (!isObject(v)) throw bad(path, 'must be an object');
  return v;
}

function onlyKeys(obj: Record<string, unknown>, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(obj)) if (!allowed.includes(k)) throw bad(path, `unknown field "${k}" (allowed: ${allowed.join(', ')})`);
}

function text(v: unknown, path: string, max = 512): string {
  if (typeof v !== 'string' || v.length === 0 || v.length > max || CONTROL.test(v)) throw bad(path, `must be a string of 1-${max} characters without control characters`);
  return v;
}

function list(v: unknown, path: string): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.length > MAX_LIST) throw bad(path, `must be an array of at most ${MAX_LIST} names`);
  return v.map((x, i) => text(x, `${path}[${i}]`, 128));
}

/** Checks that every `${…}` names a declared parameter or a certificate variable. */
function checkPlaceholders(s: string, path: string, declared: ReadonlySet<string>): void {
  for (const m of s.matchAll(PLACEHOLDER)) {
    const v = m[1]!;
    if (v === 'cert.subject.cn' || v === 'cert.id') continue;
    const p = /^parameters\.(.+)$/.exec(v);
    if (!p) throw bad(path, `unknown placeholder \${${v}} (\${parameters.NAME}, \${cert.subject.cn} or \${cert.id})`);
    if (!declared.has(p[1]!)) throw bad(path, `\${${v}} names a parameter the template does not declare`);
  }
  if (/\$\{[^}]*$/.test(s)) throw bad(path, 'unterminated placeholder');
}

/** The text around the placeholders must already fit: `fixed` checks it with each placeholder replaced by a harmless stand-in. */
function checkShape(s: string, path: string, fits: (sample: string) => unknown): void {
  try {
    fits(s.replace(PLACEHOLDER, 'x'));
  } catch (err) {
    throw bad(path, (err as Error).message);
  }
}

function parameters(v: unknown): Record<string, ParameterSpec> {
  if (v === undefined) return {};
  const obj = object(v, 'parameters');
  const names = Object.keys(obj);
  if (names.length > MAX_PARAMETERS) throw bad('parameters', `at most ${MAX_PARAMETERS}`);
  const out: Record<string, ParameterSpec> = {};
  for (const name of names) {
    const path = `parameters.${name}`;
    if (!PARAMETER_NAME.test(name)) throw bad(path, 'a parameter name is 1-64 of A-Z a-z 0-9 _');
    const spec = object(obj[name], path);
    onlyKeys(spec, ['type', 'default'], path);
    if (spec.type !== 'string') throw bad(`${path}.type`, 'must be "string"');
    out[name] = spec.default === undefined ? { type: 'string' } : { type: 'string', default: parameterValue(spec.default, `${path}.default`) };
  }
  return out;
}

function parameterValue(v: unknown, path: string): string {
  if (typeof v !== 'string' || v.length > MAX_PARAMETER_VALUE || CONTROL.test(v)) throw bad(path, `must be a string of at most ${MAX_PARAMETER_VALUE} characters without control characters`);
  return v;
}

/** Every string inside a JSON value, with its path. */
function* strings(v: unknown, path: string): Generator<[string, string]> {
  if (typeof v === 'string') yield [v, path];
  else if (Array.isArray(v)) for (let i = 0; i < v.length; i++) yield* strings(v[i], `${path}[${i}]`);
  else if (isObject(v)) for (const [k, x] of Object.entries(v)) yield* strings(x, `${path}.${k}`);
}

/** Checks a template document and returns it normalised (defaults filled in). */
export function parseTemplate(input: unknown): ProvisioningTemplate {
  const doc = object(input, 'template');
  if (Buffer.byteLength(JSON.stringify(doc)) > TEMPLATE_MAX_BYTES) throw bad('template', `larger than ${TEMPLATE_MAX_BYTES} bytes of JSON`);
  onlyKeys(doc, ['description', 'parameters', 'thing', 'policies', 'deviceConfiguration', 'preProvisioningHook'], 'template');
  const params = parameters(doc.parameters);
  const declared = new Set(Object.keys(params));

  const thing = object(doc.thing, 'thing');
  onlyKeys(thing, ['name', 'attributes', 'groups', 'override'], 'thing');
  const name = text(thing.name, 'thing.name');
  checkPlaceholders(name, 'thing.name', declared);
  checkShape(name, 'thing.name', checkThingName);
  const attributes = thing.attributes === undefined ? {} : object(thing.attributes, 'thing.attributes');
  for (const [k, v] of Object.entries(attributes)) {
    const path = `thing.attributes.${k}`;
    if (typeof v !== 'string') throw bad(path, 'must be a string');
    // `certfleet.` attributes carry roles (provisioning/gateway-role.ts) that only an operator
    // may give; a template runs on a device's request, so it may never set one.
    if (k.startsWith('certfleet.')) throw bad(path, 'certfleet.* attributes are reserved to operators');
    checkPlaceholders(v, path, declared);
  }
  checkShape(JSON.stringify(attributes), 'thing.attributes', (s) => checkAttributes(JSON.parse(s)));
  const groups = list(thing.groups, 'thing.groups');
  groups.forEach((g, i) => {
    checkPlaceholders(g, `thing.groups[${i}]`, declared);
    checkShape(g, `thing.groups[${i}]`, checkGroupName);
  });
  const override = thing.override ?? 'do-nothing';
  if (!(OVERRIDE_RULES as readonly unknown[]).includes(override)) throw bad('thing.override', `must be one of ${OVERRIDE_RULES.join(', ')}`);

  // Policies are named literally: which permissions a device gets is never up to what it sends.
  const policies = list(doc.policies, 'policies');
  policies.forEach((p, i) => checkShape(p, `policies[${i}]`, checkPolicyName));
  if (policies.some((p) => p.includes('${'))) throw bad('policies', 'policy names cannot hold placeholders');

  const deviceConfiguration = doc.deviceConfiguration === undefined ? {} : object(doc.deviceConfiguration, 'deviceConfiguration');
  for (const [s, path] of strings(deviceConfiguration, 'deviceConfiguration')) checkPlaceholders(s, path, declared);

  let hook: ProvisioningTemplate['preProvisioningHook'];
  if (doc.preProvisioningHook !== undefined) {
    const h = object(doc.preProvisioningHook, 'preProvisioningHook');
    onlyKeys(h, ['url', 'timeoutMs'], 'preProvisioningHook');
    const url = text(h.url, 'preProvisioningHook.url', 2048);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw bad('preProvisioningHook.url', 'is not a URL');
    }
    if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw bad('preProvisioningHook.url', 'must be http:// or https://');
    const timeoutMs = h.timeoutMs ?? HOOK_DEFAULT_TIMEOUT_MS;
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > HOOK_MAX_TIMEOUT_MS) {
      throw bad('preProvisioningHook.timeoutMs', `must be a whole number of ms from 1 to ${HOOK_MAX_TIMEOUT_MS}`);
    }
    hook = { url, timeoutMs };
  }
  const description = doc.description === undefined ? undefined : text(doc.description, 'description', 2048);
  return {
    ...(description !== undefined ? { description } : {}),
    parameters: params,
    thing: { name, attributes: attributes as Record<string, string>, groups, override: override as OverrideRule },
    policies,
    deviceConfiguration,
    ...(hook ? { preProvisioningHook: hook } : {}),
  };
}

/** The parameters a device sent, checked and completed with defaults; those the template does not declare are ignored. */
export function resolveParameters(t: ProvisioningTemplate, given: unknown): Record<string, string> {
  const sent = given === undefined || given === null ? {} : object(given, 'parameters');
  const out: Record<string, string> = {};
  for (const [name, spec] of Object.entries(t.parameters)) {
    const v = sent[name];
    if (v !== undefined) out[name] = parameterValue(v, `parameters.${name}`);
    else if (spec.default !== undefined) out[name] = spec.default;
  }
  return out;
}

function fill(s: string, ctx: RenderContext, path: string): string {
  return s.replace(PLACEHOLDER, (_, v: string) => {
    if (v === 'cert.id') return ctx.certificate.id;
    if (v === 'cert.subject.cn') {
      if (ctx.certificate.subjectCn === null) throw bad(path, 'the certificate has no subject CN');
      return ctx.certificate.subjectCn;
    }
    const name = v.slice('parameters.'.length);
    const value = ctx.parameters[name];
    if (value === undefined) throw bad(path, `parameter ${name} is required`);
    return value;
  });
}

function fillJson(v: unknown, ctx: RenderContext, path: string): unknown {
  if (typeof v === 'string') return fill(v, ctx, path);
  if (Array.isArray(v)) return v.map((x, i) => fillJson(x, ctx, `${path}[${i}]`));
  if (isObject(v)) return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, fillJson(x, ctx, `${path}.${k}`)]));
  return v;
}

/** Fills the placeholders; the results must be valid names and attributes ('bad-request' otherwise). */
export function renderTemplate(t: ProvisioningTemplate, ctx: RenderContext): ProvisioningPlan {
  const checked = <T>(path: string, value: string, check: (s: string) => T): T => {
    try {
      return check(value);
    } catch (err) {
      throw bad(path, (err as Error).message);
    }
  };
  const thingName = checked('thing.name', fill(t.thing.name, ctx, 'thing.name'), checkThingName);
  const attributes = checkAttributes(Object.fromEntries(Object.entries(t.thing.attributes).map(([k, v]) => [k, fill(v, ctx, `thing.attributes.${k}`)])));
  const groups = [...new Set(t.thing.groups.map((g, i) => checked(`thing.groups[${i}]`, fill(g, ctx, `thing.groups[${i}]`), checkGroupName)))];
  return {
    thingName,
    attributes,
    groups,
    override: t.thing.override,
    policies: [...new Set(t.policies)],
    deviceConfiguration: fillJson(t.deviceConfiguration, ctx, 'deviceConfiguration') as Record<string, unknown>,
  };
}

/**
 * The override rule, given the thing as it exists (undefined: none yet).
 * 'do-nothing' keeps an existing thing as it is; 'replace' sets its
 * attributes to the template's; 'merge' adds the template's attributes over
 * the existing ones; 'fail' refuses to provision onto an existing thing.
 */
export function decideThing(rule: OverrideRule, existing: ThingRecord | undefined, attributes: ThingAttributes): ThingChange {
  if (existing === undefined) return { kind: 'create', attributes };
  switch (rule) {
    case 'do-nothing':
      return { kind: 'keep' };
    case 'replace':
      return { kind: 'update', attributes };
    case 'merge': {
      const merged = { ...existing.attributes, ...attributes };
      const same = Object.keys(merged).length === Object.keys(existing.attributes).length && Object.entries(merged).every(([k, v]) => existing.attributes[k] === v);
      return same ? { kind: 'keep' } : { kind: 'update', attributes: checkAttributes(merged) };
    }
    case 'fail':
      throw new CertfleetError('conflict', `thing ${existing.name} already exists and the template's override rule is "fail"`);
  }
}
