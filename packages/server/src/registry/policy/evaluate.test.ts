import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { evaluate, parsePolicyDocument, type PolicyAction, type PolicyContext, type PolicyDocument, type PolicyStatement } from './index.js';

const allow = (actions: PolicyAction[], ...resources: string[]): PolicyStatement => ({ effect: 'allow', actions, resources });
const deny = (actions: PolicyAction[], ...resources: string[]): PolicyStatement => ({ effect: 'deny', actions, resources });
const policy = (...statements: PolicyStatement[]): PolicyDocument => parsePolicyDocument({ statements });

/** A device policy as the README would show it. */
const DEVICE = policy(
  allow(['connect'], '${thing.name}'),
  allow(['publish', 'receive'], 'things/${thing.name}/#'),
  allow(['subscribe'], 'things/${thing.name}/#'),
  allow(['publish'], 'sites/${thing.attr.site}/telemetry'),
);
const CTX: PolicyContext = { thingName: 't1', thingAttributes: { site: 'paris' }, certificateId: 'c0ffee', subjectCn: 'meter-1', clientId: 't1' };

interface Row {
  name: string;
  policies: PolicyDocument[];
  action: PolicyAction;
  resource: string;
  context?: Partial<PolicyContext>;
  expect: 'allowed' | 'explicit-deny' | 'no-allow';
  /** [policyIndex, statementIndex] of the deciding statement. */
  at?: [number, number];
}

const rows: Row[] = [
  // connect: a client id, equal after variables are filled in; nothing else is special.
  { name: 'connect as the thing name', policies: [DEVICE], action: 'connect', resource: 't1', expect: 'allowed', at: [0, 0] },
  { name: 'connect as another client id', policies: [DEVICE], action: 'connect', resource: 't2', expect: 'no-allow' },
  { name: 'connect without a thing: ${thing.name} has no value', policies: [DEVICE], action: 'connect', resource: 't1', context: { thingName: undefined }, expect: 'no-allow' },
  { name: 'connect with ${client.id}', policies: [policy(allow(['connect'], '${client.id}'))], action: 'connect', resource: 'anything', context: { clientId: 'anything' }, expect: 'allowed', at: [0, 0] },
  { name: 'connect with ${client.id} and an empty client id (empty is no value)', policies: [policy(allow(['connect'], '${client.id}'))], action: 'connect', resource: '', context: { clientId: '' }, expect: 'no-allow' },
  { name: 'connect as prefix-${cert.id}', policies: [policy(allow(['connect'], 'dev-${cert.id}'))], action: 'connect', resource: 'dev-c0ffee', expect: 'allowed', at: [0, 0] },
  { name: 'connect as ${cert.subject.cn}, without a CN', policies: [policy(allow(['connect'], '${cert.subject.cn}'))], action: 'connect', resource: 'meter-1', context: { subjectCn: undefined }, expect: 'no-allow' },
  { name: 'connect: * is not a wildcard', policies: [policy(allow(['connect'], '*'))], action: 'connect', resource: 't1', expect: 'no-allow' },
  { name: 'connect: * is literally *', policies: [policy(allow(['connect'], '*'))], action: 'connect', resource: '*', expect: 'allowed', at: [0, 0] },
  { name: 'connect: # is not a wildcard', policies: [policy(allow(['connect'], 'dev/#'))], action: 'connect', resource: 'dev/1', expect: 'no-allow' },

  // publish and receive: a topic name against each resource as a filter.
  { name: 'publish under things/${thing.name}/#', policies: [DEVICE], action: 'publish', resource: 'things/t1/temp', expect: 'allowed', at: [0, 1] },
  { name: 'publish to the parent of #', policies: [DEVICE], action: 'publish', resource: 'things/t1', expect: 'allowed', at: [0, 1] },
  { name: 'publish under another thing', policies: [DEVICE], action: 'publish', resource: 'things/t2/temp', expect: 'no-allow' },
  { name: 'publish with ${thing.attr.site}', policies: [DEVICE], action: 'publish', resource: 'sites/paris/telemetry', expect: 'allowed', at: [0, 3] },
  { name: 'publish to another site', policies: [DEVICE], action: 'publish', resource: 'sites/lyon/telemetry', expect: 'no-allow' },
  { name: 'publish with the attribute missing', policies: [DEVICE], action: 'publish', resource: 'sites/paris/telemetry', context: { thingAttributes: {} }, expect: 'no-allow' },
  { name: 'publish with no attributes at all', policies: [DEVICE], action: 'publish', resource: 'sites/paris/telemetry', context: { thingAttributes: undefined }, expect: 'no-allow' },
  { name: 'an inherited attribute is not an attribute', policies: [DEVICE], action: 'publish', resource: 'sites/paris/telemetry', context: { thingAttributes: Object.create({ site: 'paris' }) as Record<string, string> }, expect: 'no-allow' },
  { name: 'an empty thing name is no value (no things//x)', policies: [DEVICE], action: 'publish', resource: 'things//x', context: { thingName: '' }, expect: 'no-allow' },
  { name: 'a topic name holding a wildcard is never allowed', policies: [policy(allow(['publish'], '#'))], action: 'publish', resource: 'things/+', expect: 'no-allow' },
  { name: 'an empty topic is never allowed', policies: [policy(allow(['publish'], '#'))], action: 'publish', resource: '', expect: 'no-allow' },
  { name: 'receive under things/${thing.name}/#', policies: [DEVICE], action: 'receive', resource: 'things/t1/cmd', expect: 'allowed', at: [0, 1] },
  { name: 'receive: # does not reach $ topics', policies: [policy(allow(['receive'], '#'))], action: 'receive', resource: '$SYS/broker/uptime', expect: 'no-allow' },
  { name: 'a $ topic the policy spells out', policies: [policy(allow(['publish'], '$certfleet/things/${thing.name}/#'))], action: 'publish', resource: '$certfleet/things/t1/renew', expect: 'allowed', at: [0, 0] },
  { name: 'an action the statement does not list', policies: [policy(allow(['publish'], '#'))], action: 'receive', resource: 'a', expect: 'no-allow' },

  // subscribe: the requested filter must be covered by an allowed one.
  { name: 'subscribe to things/t1/#', policies: [DEVICE], action: 'subscribe', resource: 'things/t1/#', expect: 'allowed', at: [0, 2] },
  { name: 'subscribe to a narrower filter', policies: [DEVICE], action: 'subscribe', resource: 'things/t1/a/+', expect: 'allowed', at: [0, 2] },
  { name: 'subscribe to # under things/t1/#', policies: [DEVICE], action: 'subscribe', resource: '#', expect: 'no-allow' },
  { name: 'subscribe to things/+/cmd under things/t1/#', policies: [DEVICE], action: 'subscribe', resource: 'things/+/cmd', expect: 'no-allow' },
  { name: 'subscribe to a malformed filter', policies: [policy(allow(['subscribe'], '#'))], action: 'subscribe', resource: 'a/#/b', expect: 'no-allow' },
  { name: 'subscribe to $SYS/# under #', policies: [policy(allow(['subscribe'], '#'))], action: 'subscribe', resource: '$SYS/#', expect: 'no-allow' },

  // Values are values: never wildcards, level separators, or the start of a $ topic.
  { name: 'client id + does not widen things/${client.id}/data', policies: [policy(allow(['subscribe'], 'things/${client.id}/data'))], action: 'subscribe', resource: 'things/+/data', context: { clientId: '+' }, expect: 'no-allow' },
  { name: 'client id # does not widen things/${client.id}', policies: [policy(allow(['subscribe'], 'things/${client.id}'))], action: 'subscribe', resource: 'things/#', context: { clientId: '#' }, expect: 'no-allow' },
  { name: 'client id # does not widen a publish either', policies: [policy(allow(['publish'], 'things/${client.id}'))], action: 'publish', resource: 'things/x', context: { clientId: '#' }, expect: 'no-allow' },
  { name: 'a thing name with / adds no level', policies: [DEVICE], action: 'publish', resource: 'things/a/b/x', context: { thingName: 'a/b' }, expect: 'no-allow' },
  { name: 'a CN of + does not match any level', policies: [policy(allow(['receive'], 'cn/${cert.subject.cn}'))], action: 'receive', resource: 'cn/x', context: { subjectCn: '+' }, expect: 'no-allow' },
  { name: 'an attribute of # does not match everything', policies: [DEVICE], action: 'publish', resource: 'sites/x/telemetry', context: { thingAttributes: { site: '#' } }, expect: 'no-allow' },
  { name: 'client id $certfleet does not reach $ topics', policies: [policy(allow(['subscribe'], '${client.id}/#'))], action: 'subscribe', resource: '$certfleet/#', context: { clientId: '$certfleet' }, expect: 'no-allow' },
  { name: 'the same policy for a tame client id', policies: [policy(allow(['subscribe'], '${client.id}/#'))], action: 'subscribe', resource: 'dev-7/#', context: { clientId: 'dev-7' }, expect: 'allowed', at: [0, 0] },
  { name: 'a value is not expanded again', policies: [DEVICE], action: 'publish', resource: 'sites/t1/telemetry', context: { thingAttributes: { site: '${client.id}' } }, expect: 'no-allow' },
  { name: 'a value that looks like a variable stays literal', policies: [DEVICE], action: 'publish', resource: 'sites/${client.id}/telemetry', context: { thingAttributes: { site: '${client.id}' } }, expect: 'allowed', at: [0, 3] },

  // Deny wins over any allow; nothing allowed is denied.
  { name: 'nothing attached', policies: [], action: 'publish', resource: 'things/t1/x', expect: 'no-allow' },
  { name: 'only a deny that does not match', policies: [policy(deny(['publish'], 'a'))], action: 'publish', resource: 'b', expect: 'no-allow' },
  { name: 'deny in a later policy wins over an allow', policies: [DEVICE, policy(allow(['publish'], 'x'), deny(['publish'], 'things/+/secret'))], action: 'publish', resource: 'things/t1/secret', expect: 'explicit-deny', at: [1, 1] },
  { name: 'deny before allow in one policy', policies: [policy(deny(['publish'], 'things/t1/secret'), allow(['publish'], '#'))], action: 'publish', resource: 'things/t1/secret', expect: 'explicit-deny', at: [0, 0] },
  { name: 'the deny leaves the rest allowed', policies: [policy(deny(['publish'], 'things/t1/secret'), allow(['publish'], '#'))], action: 'publish', resource: 'things/t1/open', expect: 'allowed', at: [0, 1] },
  { name: 'subscribe overlapping a denied filter', policies: [DEVICE, policy(deny(['subscribe'], 'things/+/secret'))], action: 'subscribe', resource: 'things/t1/#', expect: 'explicit-deny', at: [1, 0] },
  { name: 'subscribe with + overlapping a denied topic', policies: [DEVICE, policy(deny(['subscribe'], 'things/t1/secret'))], action: 'subscribe', resource: 'things/t1/+', expect: 'explicit-deny', at: [1, 0] },
  { name: 'subscribe beside a denied filter', policies: [DEVICE, policy(deny(['subscribe'], 'things/t1/secret'))], action: 'subscribe', resource: 'things/t1/open/#', expect: 'allowed', at: [0, 2] },
  { name: 'a deny whose variable has no value does not deny', policies: [DEVICE, policy(deny(['publish'], 'things/${thing.name}/${thing.attr.locked}'))], action: 'publish', resource: 'things/t1/x', expect: 'allowed', at: [0, 1] },
  { name: 'the same deny with the value present', policies: [DEVICE, policy(deny(['publish'], 'things/${thing.name}/${thing.attr.locked}'))], action: 'publish', resource: 'things/t1/x', context: { thingAttributes: { locked: 'x' } }, expect: 'explicit-deny', at: [1, 0] },
  { name: 'a deny of connect', policies: [DEVICE, policy(deny(['connect'], 't1'))], action: 'connect', resource: 't1', expect: 'explicit-deny', at: [1, 0] },
  { name: 'the first allow is reported', policies: [policy(allow(['publish'], 'a/#'), allow(['publish'], '#'))], action: 'publish', resource: 'a/b', expect: 'allowed', at: [0, 0] },
];

describe('evaluate', () => {
  for (const row of rows) {
    it(row.name, () => {
      const decision = evaluate(row.policies, { action: row.action, resource: row.resource, context: { ...CTX, ...row.context } });
      assert.equal(decision.reason, row.expect);
      assert.equal(decision.allowed, row.expect === 'allowed');
      assert.deepEqual(decision.statement, row.at && { policyIndex: row.at[0], statementIndex: row.at[1] });
    });
  }

  it('takes documents that were not parsed, checking them once', () => {
    const plain: PolicyDocument = { statements: [{ effect: 'allow', actions: ['publish'], resources: ['things/${thing.name}/#'] }] };
    const request = { action: 'publish', resource: 'things/t1/x', context: CTX } as const;
    assert.equal(evaluate([plain], request).allowed, true);
    assert.equal(evaluate([plain], request).allowed, true);
    const broken = { statements: [{ effect: 'allow', actions: ['publish'], resources: ['a/#/b'] }] } as PolicyDocument;
    assert.throws(() => evaluate([broken], request), { code: 'bad-request' });
  });

  it('decides a request in about a microsecond', () => {
    const policies = [DEVICE, policy(deny(['subscribe'], 'things/+/secret'))];
    const requests = [
      { action: 'publish', resource: 'sites/paris/telemetry', context: CTX },
      { action: 'subscribe', resource: 'things/t1/#', context: CTX },
    ] as const;
    const n = 50_000;
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) evaluate(policies, requests[i % 2]!);
    const perCall = Number(process.hrtime.bigint() - start) / n;
    // Generous, so a loaded CI machine passes; it catches per-call parsing or regex building.
    assert.ok(perCall < 20_000, `${perCall.toFixed(0)} ns per evaluation`);
  });
});
