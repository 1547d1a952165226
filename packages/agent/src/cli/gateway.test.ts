import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AgentError } from '../errors.js';
import { networkIdentityOf, templateParameters } from './gateway.js';

const refused = (fn: () => unknown, message: RegExp) => assert.throws(fn, (e: unknown) => e instanceof AgentError && e.code === 'bad-input' && message.test(e.message));

describe('gateway bootstrap flags', () => {
  it('--param k=v pairs become template parameters; the value may hold "="', () => {
    assert.deepEqual(templateParameters([]), {});
    assert.deepEqual(templateParameters(['Model=x7', 'Note=a=b', 'Empty=']), { Model: 'x7', Note: 'a=b', Empty: '' });
  });

  for (const [pairs, why] of [
    [['Model'], /NAME=VALUE/],
    [['=x'], /NAME=VALUE/],
    [['Model=a', 'Model=b'], /given twice/],
  ] as const) {
    it(`refuses --param ${pairs.join(' ')}`, () => refused(() => templateParameters(pairs), why));
  }

  it('takes exactly one of --imsi and --imei', () => {
    assert.deepEqual(networkIdentityOf({ imsi: ' 001010123456789 ' }), { type: 'imsi', value: '001010123456789' });
    assert.deepEqual(networkIdentityOf({ imei: '49015420323751' }), { type: 'imei', value: '49015420323751' });
    refused(() => networkIdentityOf({}), /exactly one/);
    refused(() => networkIdentityOf({ imsi: '1', imei: '2' }), /exactly one/);
  });
});
