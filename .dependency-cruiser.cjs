/**
 * Import boundaries from DESIGN.md ("Architecture: separation of duties"),
 * checked in CI: pki imports nothing of ours; the signer only pki; the broker
 * never the signer; the agent only pki; only the store imports the database
 * drivers.
 */
const DB_DRIVERS = '^node_modules/(kysely|better-sqlite3|pg|pg-[a-z-]+)/';
module.exports = {
  forbidden: [
    {
      name: 'pki-is-pure',
      comment: 'pki imports nothing of ours and does no I/O beyond node:crypto',
      severity: 'error',
      from: { path: '^packages/pki/src', pathNot: '(\\.test\\.ts$|/testing/)' },
      to: { path: '^packages/(server|agent|console)/|^node_modules/(kysely|better-sqlite3|pg|fastify|aedes|mqtt)/' },
    },
    {
      name: 'signer-only-pki',
      comment: 'the signer sees pki, its own files, the store interfaces and the error type; nothing that decides',
      severity: 'error',
      from: { path: '^packages/server/src/signer/', pathNot: '\\.test\\.ts$' },
      to: { path: '^packages/server/src/(registry|http|broker|cli|node|provisioning|revocation|lifecycle|gateway|events)/' },
    },
    {
      name: 'broker-never-signer',
      severity: 'error',
      from: { path: '^packages/server/src/broker/' },
      to: { path: '^packages/server/src/signer/' },
    },
    {
      name: 'agent-only-pki',
      severity: 'error',
      from: { path: '^packages/agent/' },
      to: { path: '^packages/(server|console)/' },
    },
    {
      name: 'only-store-speaks-sql',
      severity: 'error',
      from: { pathNot: '^packages/server/src/store/' },
      to: { path: DB_DRIVERS },
    },
    {
      name: 'no-unresolvable',
      comment: 'an import that does not resolve would slip past every rule above',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true, viaOnly: { pathNot: '^node_modules' } },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'], extensions: ['.ts', '.js'] },
  },
};
