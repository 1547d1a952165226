/**
 * ROCA (CVE-2017-15361): RSA moduli made by the Infineon RSALib have the
 * form k·M + (65537^a mod M) for a primorial M, so for every small prime p
 * the modulus mod p lies in the subgroup 65537 generates mod p. A random
 * modulus passes that test for all 38 primes below with probability far
 * below 2^-40 (Nemec et al., "The Return of Coppersmith's Attack", CCS 2017,
 * and their public detector).
 */
const PRIMES = [3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167];

/** For each prime, the residues 65537^k mod p. */
const SUBGROUPS: ReadonlyArray<readonly [number, ReadonlySet<number>]> = PRIMES.map((p) => {
  const g = 65537 % p;
  const set = new Set<number>();
  let x = 1;
  do {
    set.add(x);
    x = (x * g) % p;
  } while (!set.has(x));
  return [p, set] as const;
});

export const ROCA_PRIMES: readonly number[] = PRIMES;

/** True if the modulus carries the ROCA fingerprint. */
export function hasRocaFingerprint(modulus: bigint): boolean {
  for (const [p, residues] of SUBGROUPS) if (!residues.has(Number(modulus % BigInt(p)))) return false;
  return true;
}
