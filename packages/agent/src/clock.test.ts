import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BUILD_TIME_FLOOR, TimeFloor } from './clock.js';
import type { AgentError } from './errors.js';
import { issueLeaf, makeIntermediate, makeRoot, type TestCa } from './testing/pki-fixtures.js';

const DAY = 86_400_000;
const FLOOR = new Date('2026-06-01T00:00:00Z');
const EPOCH = () => new Date(0); // a device without an RTC, booted at 1970
let work: string;
let root: TestCa;

/** The server's chain, leaf first, issued at `now` for `days`. */
function serverChain(now: Date, days = 90): string[] {
  const issuing = makeIntermediate(root, 'CN=Issuing', { now: new Date(FLOOR.getTime() - 400 * DAY) });
  return [issueLeaf(issuing, { profile: 'server', name: 'CN=localhost', now, validityDays: days }).certPem, issuing.cert.toPem()];
}

before(async () => {
  work = await mkdtemp(join(tmpdir(), 'certfleet-clock-'));
  root = makeRoot('CN=Root', { now: new Date(FLOOR.getTime() - 800 * DAY) });
});
after(() => rm(work, { recursive: true, force: true }));

describe('TimeFloor', () => {
  it('starts at the build-time floor and believes a sane wall clock only', async () => {
    const dir = await mkdtemp(join(work, 'a-'));
    assert.equal((await TimeFloor.open(dir, { wallClock: EPOCH })).floor().getTime(), BUILD_TIME_FLOOR.getTime());
    const cases: [string, Date, 'wall-clock' | 'time-floor'][] = [
      ['1970 (no RTC)', new Date(0), 'time-floor'],
      ['one second before the floor', new Date(FLOOR.getTime() - 1000), 'time-floor'],
      ['a week after the floor', new Date(FLOOR.getTime() + 7 * DAY), 'wall-clock'],
      ['year 2099 (garbage RTC)', new Date('2099-01-01T00:00:00Z'), 'time-floor'],
      ['invalid date', new Date(Number.NaN), 'time-floor'],
    ];
    for (const [name, wall, basis] of cases) {
      const clock = await TimeFloor.open(dir, { buildFloor: FLOOR, wallClock: () => wall, monotonic: () => 0 });
      assert.equal(clock.basis(), basis, name);
      assert.equal(clock.trustedNow().getTime(), basis === 'wall-clock' ? wall.getTime() : FLOOR.getTime(), name);
    }
  });

  it('advances the floor with uptime, so a device at 1970 still sees time pass', async () => {
    let uptime = 5_000;
    const clock = await TimeFloor.open(await mkdtemp(join(work, 'b-')), { buildFloor: FLOOR, wallClock: EPOCH, monotonic: () => uptime });
    uptime += 3 * DAY;
    assert.equal(clock.trustedNow().getTime(), FLOOR.getTime() + 3 * DAY);
  });

  it('acceptServerTime raises the floor monotonically and persists it across reboots', async () => {
    const dir = await mkdtemp(join(work, 'c-'));
    const clock = await TimeFloor.open(dir, { buildFloor: FLOOR, wallClock: EPOCH, monotonic: () => 0 });
    const later = new Date(FLOOR.getTime() + 30 * DAY);
    assert.equal(await clock.acceptServerTime(later), true);
    assert.equal(await clock.acceptServerTime(new Date(FLOOR.getTime() + 10 * DAY)), false, 'never lowered');
    assert.deepEqual(JSON.parse(await readFile(join(dir, 'time-floor.json'), 'utf8')), { floor: later.toISOString() });
    const rebooted = await TimeFloor.open(dir, { buildFloor: FLOOR, wallClock: EPOCH, monotonic: () => 0 });
    assert.equal(rebooted.trustedNow().getTime(), later.getTime());
    await assert.rejects(rebooted.acceptServerTime(new Date('2199-01-01T00:00:00Z')), (e: AgentError) => e.code === 'bad-input');
  });

  it('falls back to the build floor when the file is damaged', async () => {
    const dir = await mkdtemp(join(work, 'd-'));
    await writeFile(join(dir, 'time-floor.json'), '{"floor": "yesterday"');
    assert.equal((await TimeFloor.open(dir, { buildFloor: FLOOR, wallClock: EPOCH })).floor().getTime(), FLOOR.getTime());
  });

  describe('validateServerChain on a device at 1970', () => {
    const open = async () => TimeFloor.open(await mkdtemp(join(work, 'v-')), { buildFloor: FLOOR, wallClock: EPOCH, monotonic: () => 0 });

    it('accepts a chain valid at the floor, checking it at the floor', async () => {
      const r = (await open()).validateServerChain(serverChain(new Date(FLOOR.getTime() - 10 * DAY)), [root.cert]);
      assert.equal(r.basis, 'time-floor');
      assert.equal(r.at.getTime(), FLOOR.getTime());
      assert.equal(r.path.length, 3);
    });

    it('accepts a chain issued after the floor (checked at its issuance, the latest instant it proves)', async () => {
      const issued = new Date(FLOOR.getTime() + 60 * DAY);
      const r = (await open()).validateServerChain(serverChain(issued), [root.cert]);
      assert.equal(r.at.getTime(), issued.getTime() - 3600_000, 'the leaf notBefore (backdated an hour)');
    });

    it('refuses a certificate that expired before the floor', async () => {
      const expired = serverChain(new Date(FLOOR.getTime() - 100 * DAY), 30);
      await assert.rejects(async () => (await open()).validateServerChain(expired, [root.cert]), (e: AgentError) => e.code === 'expired-before-floor');
    });

    it('refuses a chain to a root it does not trust', async () => {
      const other = makeRoot('CN=Other', { now: new Date(FLOOR.getTime() - 800 * DAY) });
      await assert.rejects(
        async () => (await open()).validateServerChain(serverChain(FLOOR), [other.cert]),
        (e: AgentError) => e.code === 'chain-invalid',
      );
    });
  });

  it('with a believable wall clock, validates at the wall clock (a not-yet-valid chain is refused)', async () => {
    const wall = new Date(FLOOR.getTime() + 5 * DAY);
    const clock = await TimeFloor.open(await mkdtemp(join(work, 'w-')), { buildFloor: FLOOR, wallClock: () => wall, monotonic: () => 0 });
    assert.equal(clock.validateServerChain(serverChain(FLOOR).join(''), [root.cert]).at.getTime(), wall.getTime());
    await assert.rejects(
      async () => clock.validateServerChain(serverChain(new Date(wall.getTime() + 10 * DAY)), [root.cert]),
      (e: AgentError) => e.code === 'chain-invalid' && /not valid until/.test(e.message),
    );
  });
});
