import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { clockSkewRange } from './cli/main.js';
import { parseDuration, parsePositiveDuration } from './duration.js';
import type { AgentError } from './errors.js';

const DAY = 86_400_000;

describe('durations', () => {
  const cases: [string, number][] = [
    ['28d', 28 * DAY],
    ['12h', 12 * 3_600_000],
    ['90s', 90_000],
    ['500ms', 500],
    ['2w', 14 * DAY],
    ['1y', 365 * DAY],
    ['-3d', -3 * DAY],
    ['+1.5h', 5_400_000],
  ];
  for (const [text, ms] of cases) it(`reads ${text}`, () => assert.equal(parseDuration(text), ms));

  for (const bad of ['30', 'd', '3 days', '', '1e3s']) {
    it(`refuses ${JSON.stringify(bad)} (a bare number could be seconds or days)`, () => {
      assert.throws(() => parseDuration(bad, '--renew-before'), (e: AgentError) => e.code === 'bad-input' && /--renew-before/.test(e.message));
    });
  }
  it('refuses a negative or zero threshold', () => {
    assert.throws(() => parsePositiveDuration('-1d'), (e: AgentError) => e.code === 'bad-input');
    assert.throws(() => parsePositiveDuration('0s'), (e: AgentError) => e.code === 'bad-input');
  });

  it('reads a clock skew: ± or bare both ways, + ahead only, - behind only', () => {
    assert.deepEqual(clockSkewRange('±2d'), { minMs: -2 * DAY, maxMs: 2 * DAY });
    assert.deepEqual(clockSkewRange('2d'), { minMs: -2 * DAY, maxMs: 2 * DAY });
    assert.deepEqual(clockSkewRange('+2d'), { minMs: 0, maxMs: 2 * DAY });
    assert.deepEqual(clockSkewRange('-2d'), { minMs: -2 * DAY, maxMs: 0 });
  });
});
