import { it } from 'node:test';
import assert from 'node:assert/strict';
import { T0, at } from './test-fixtures.js';
import { describeOnBothDialects } from './test-dialects.js';
import { findingId } from './findings.js';

const DAY = 86_400_000;
const f = (resource: string, message = `m ${resource}`, severity = 'medium') => ({ severity, reasonCode: 'device-certificate-expiring', resourceType: 'certificate', resource, message, mitigations: ['notify'] });
const run = (id: string, t: Date) => ({ id, startedAt: t, finishedAt: t, trigger: 'test', options: {} });
const many = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => f(`cert-${String(from + i).padStart(6, '0')}`));

it('a finding id is the first 128 bits of SHA-256 over (reason, resource type, resource): ids stored by earlier versions stay valid', () => {
  assert.equal(findingId({ reasonCode: 'weak-key', resourceType: 'certificate', resource: 'abc' }), '299d0cbe8f2db534189565202d6b2157');
});

await describeOnBothDialects('audit runs written by difference', ({ fresh }) => {
  it('an open finding whose message, severity or mitigations changed is rewritten, not new; unchanged ones are not written but listed as seen by the latest run', async () => {
    const { store: s, exec } = await fresh();
    await s.recordAuditRun(run('r1', T0), [f('a'), f('b'), f('c')]);
    const r2 = await s.recordAuditRun(run('r2', at(DAY)), [f('a', 'm a, now 3 certificates'), { ...f('b'), severity: 'high' }, { ...f('c'), mitigations: ['notify', 'renew-certificate'] }]);
    assert.deepEqual([r2.newFindingIds, r2.run.resolvedFindings, r2.run.newFindings], [[], 0, 0]);
    const r3 = await s.recordAuditRun(run('r3', at(2 * DAY)), [f('a', 'm a, now 3 certificates'), { ...f('b'), severity: 'high' }, { ...f('c'), mitigations: ['notify', 'renew-certificate'] }]);
    assert.deepEqual(r3.newFindingIds, []);
    const items = (await s.listFindings({ limit: 10 })).items.sort((x, y) => x.resource.localeCompare(y.resource));
    assert.deepEqual(
      items.map((x) => [x.resource, x.message, x.severity, x.mitigations, x.firstSeen, x.lastSeen, x.lastRunId, x.resolvedAt]),
      [
        ['a', 'm a, now 3 certificates', 'medium', ['notify'], T0, at(2 * DAY), 'r3', null],
        ['b', 'm b', 'high', ['notify'], T0, at(2 * DAY), 'r3', null],
        ['c', 'm c', 'medium', ['notify', 'renew-certificate'], T0, at(2 * DAY), 'r3', null],
      ],
    );
    // Found again unchanged in r3: not rewritten (finding-runs.ts), yet listed as last seen by r3.
    assert.deepEqual((await exec("select last_run_id from audit_findings where resource = 'a'")).map((r) => r.last_run_id), ['r2']);
    // Resolved: its last seen is the run before, its own from then on; later runs that do not find it leave it alone.
    await s.recordAuditRun(run('r4', at(3 * DAY)), [f('a', 'm a, now 3 certificates')]);
    await s.recordAuditRun(run('r5', at(4 * DAY)), [f('a', 'm a, now 3 certificates')]);
    const rows = await exec("select resource, resolved_at, last_run_id from audit_findings where resource in ('b', 'c') order by resource");
    assert.deepEqual(rows.map((r) => [r.resource, r.resolved_at, r.last_run_id]), [['b', at(3 * DAY).toISOString(), 'r3'], ['c', at(3 * DAY).toISOString(), 'r3']]);
  });

  it('tens of thousands of findings: inserted, found again, half resolved, reopened, across several statements', async () => {
    const { store: s } = await fresh();
    const first = await s.recordAuditRun(run('r1', T0), many(0, 45_000));
    assert.deepEqual([first.run.findings, first.newFindingIds.length, first.run.resolvedFindings], [45_000, 45_000, 0]);
    const again = await s.recordAuditRun(run('r2', at(DAY)), many(0, 45_000));
    assert.deepEqual([again.newFindingIds.length, again.run.resolvedFindings], [0, 0]);
    const half = await s.recordAuditRun(run('r3', at(2 * DAY)), many(22_500, 46_000));
    assert.deepEqual([half.newFindingIds, half.run.resolvedFindings], [many(45_000, 46_000).map(findingId), 22_500]);
    const back = await s.recordAuditRun(run('r4', at(3 * DAY)), many(0, 46_000));
    assert.equal(back.newFindingIds.length, 22_500, 'the resolved half comes back as new');
    assert.equal(back.run.resolvedFindings, 0);
    const open = await s.listFindings({ limit: 1000, resolved: false, ids: [findingId(f('cert-000000')), findingId(f('cert-030000'))] });
    assert.deepEqual(
      open.items.map((x) => [x.resource, x.firstSeen, x.lastSeen, x.lastRunId]).sort(),
      [['cert-000000', at(3 * DAY), at(3 * DAY), 'r4'], ['cert-030000', T0, at(3 * DAY), 'r4']],
    );
    assert.equal((await s.listFindings({ limit: 1000, resolved: true })).items.length, 0);
  });
});
