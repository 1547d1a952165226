/**
 * Policy resources as templates: literal text and the five variables, parsed
 * once when a document is parsed, filled in per request. Internal to policy/.
 */
import { CertfleetError } from '../../errors.js';

/** What a device presents, to fill the variables of a resource. */
export interface PolicyContext {
  /** The thing the certificate is attached to, if any. */
  thingName?: string;
  thingAttributes?: Readonly<Record<string, string>>;
  certificateId: string;
  subjectCn?: string;
  /** The MQTT client identifier, chosen by the device: never trusted to be tame. */
  clientId: string;
}

export type Variable =
  | { readonly kind: 'thing.name' }
  | { readonly kind: 'thing.attr'; readonly key: string }
  | { readonly kind: 'cert.id' }
  | { readonly kind: 'cert.subject.cn' }
  | { readonly kind: 'client.id' };

/** Literal text, or a variable. */
export type Part = string | Variable;

export interface ResourceTemplate {
  readonly raw: string;
  readonly hasVariables: boolean;
  /** The whole resource, for connect (a client id). */
  readonly parts: readonly Part[];
  /** Split on '/', for topic actions; a level is literal text or, if it holds variables, its parts. */
  readonly levels: readonly (string | readonly Part[])[];
}

const ATTR_KEY = /^[A-Za-z0-9_.-]{1,128}$/;
const SIMPLE_VARIABLES: Readonly<Record<string, Variable>> = {
  'thing.name': { kind: 'thing.name' },
  'cert.id': { kind: 'cert.id' },
  'cert.subject.cn': { kind: 'cert.subject.cn' },
  'client.id': { kind: 'client.id' },
};
/**
 * A filled-in value that would change the shape of a topic filter: a level
 * separator or a wildcard (`+` client id must not widen `things/${client.id}/x`
 * to every thing, the gap AWS IoT documents for ${iot:ClientId}), or NUL,
 * which no topic holds [MQTT-4.7.3-2].
 */
const UNSAFE_IN_TOPIC = /[/+#\u0000]/;

/** Parses `${…}` variables in a resource. `path` names the resource in error messages. */
export function parseTemplate(raw: string, path: string): ResourceTemplate {
  const parts = parseParts(raw, path);
  const hasVariables = parts.some((p) => typeof p !== 'string');
  // Splitting the raw text is safe: no valid variable holds a '/'.
  const levels = raw.split('/').map((level) => (level.includes('${') ? parseParts(level, path) : level));
  return { raw, hasVariables, parts, levels };
}

function parseParts(raw: string, path: string): Part[] {
  const parts: Part[] = [];
  let i = 0;
  while (i < raw.length) {
    const start = raw.indexOf('${', i);
    if (start < 0) {
      parts.push(raw.slice(i));
      break;
    }
    if (start > i) parts.push(raw.slice(i, start));
    const end = raw.indexOf('}', start + 2);
    if (end < 0) throw new CertfleetError('bad-request', `${path}: unterminated variable in "${raw}"`);
    parts.push(parseVariable(raw.slice(start + 2, end), path));
    i = end + 1;
  }
  return parts;
}

function parseVariable(name: string, path: string): Variable {
  const simple = Object.hasOwn(SIMPLE_VARIABLES, name) ? SIMPLE_VARIABLES[name] : undefined;
  if (simple) return simple;
  if (name.startsWith('thing.attr.')) {
    const key = name.slice('thing.attr.'.length);
    if (ATTR_KEY.test(key)) return { kind: 'thing.attr', key };
    throw new CertfleetError('bad-request', `${path}: attribute name in \${${name}} must be 1-128 characters of A-Z a-z 0-9 _ . -`);
  }
  throw new CertfleetError(
    'bad-request',
    `${path}: unknown variable \${${name}} (known: \${thing.name}, \${thing.attr.KEY}, \${cert.id}, \${cert.subject.cn}, \${client.id})`,
  );
}

/**
 * A variable's value, or undefined when it has none: no thing, no such
 * attribute, no CN. An empty value counts as none, so `things/${thing.name}/x`
 * never becomes `things//x`. Attributes are read as own properties only, so
 * `${thing.attr.constructor}` is not Object's constructor.
 */
function resolve(v: Variable, ctx: PolicyContext): string | undefined {
  let value: unknown;
  switch (v.kind) {
    case 'thing.name':
      value = ctx.thingName;
      break;
    case 'thing.attr':
      value = ctx.thingAttributes && Object.hasOwn(ctx.thingAttributes, v.key) ? ctx.thingAttributes[v.key] : undefined;
      break;
    case 'cert.id':
      value = ctx.certificateId;
      break;
    case 'cert.subject.cn':
      value = ctx.subjectCn;
      break;
    case 'client.id':
      value = ctx.clientId;
      break;
  }
  return typeof value === 'string' && value !== '' ? value : undefined;
}

/**
 * The resource as a client id, or undefined if a variable has no value.
 * Compared for equality only, so no value can widen it.
 */
export function fillClientId(t: ResourceTemplate, ctx: PolicyContext): string | undefined {
  if (!t.hasVariables) return t.raw;
  let out = '';
  for (const part of t.parts) {
    const value = typeof part === 'string' ? part : resolve(part, ctx);
    if (value === undefined) return undefined;
    out += value;
  }
  return out;
}

/**
 * The resource as topic filter levels, or undefined if a variable has no
 * value or a value that would change the filter's shape: a '/', '+', '#' or
 * NUL (UNSAFE_IN_TOPIC), or a leading '$' that would move the filter into
 * the reserved `$` topics ($SYS/, $certfleet/) [MQTT-4.7.2-1] when the policy
 * itself did not write one there.
 */
export function fillTopicLevels(t: ResourceTemplate, ctx: PolicyContext): readonly string[] | undefined {
  if (!t.hasVariables) return t.levels as readonly string[];
  const out: string[] = [];
  for (let li = 0; li < t.levels.length; li++) {
    const level = t.levels[li]!;
    if (typeof level === 'string') {
      out.push(level);
      continue;
    }
    let text = '';
    for (let pi = 0; pi < level.length; pi++) {
      const part = level[pi]!;
      if (typeof part === 'string') {
        text += part;
        continue;
      }
      const value = resolve(part, ctx);
      if (value === undefined || UNSAFE_IN_TOPIC.test(value)) return undefined;
      if (li === 0 && pi === 0 && value.startsWith('$')) return undefined;
      text += value;
    }
    out.push(text);
  }
  return out;
}
