// Passwords are stored as a salted scrypt hash, never as text (the seed compared plain text): a
// random 16-byte salt per account, scrypt's recommended interactive cost, and a constant-time
// comparison.
import { randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** What an account stores instead of its password. */
export interface PasswordHash {
  readonly algorithm: "scrypt";
  readonly cost: number;
  readonly blockSize: number;
  readonly parallelization: number;
  /** base64 */
  readonly salt: string;
  /** base64 */
  readonly hash: string;
}

const keyLength = 32;

function derive(password: string, salt: Buffer, params: Omit<PasswordHash, "salt" | "hash" | "algorithm">) {
  return new Promise<Buffer>((resolve, reject) => {
    scrypt(
      password,
      salt,
      keyLength,
      { N: params.cost, r: params.blockSize, p: params.parallelization },
      (error, key) => (error === null ? resolve(key) : reject(error)),
    );
  });
}

/** Hashes a new password with a fresh salt. */
export async function hashPassword(password: string): Promise<PasswordHash> {
  const params = { cost: 16_384, blockSize: 8, parallelization: 1 };
  const salt = randomBytes(16);
  const hash = await derive(password, salt, params);
  return { algorithm: "scrypt", ...params, salt: salt.toString("base64"), hash: hash.toString("base64") };
}

/** Whether `password` is the one `stored` was made from. */
export async function verifyPassword(password: string, stored: PasswordHash): Promise<boolean> {
  if (stored.algorithm !== "scrypt") return false;
  const expected = Buffer.from(stored.hash, "base64");
  const actual = await derive(password, Buffer.from(stored.salt, "base64"), stored);
  return expected.length === actual.length && timingSafeEqual(expected, actual);
}
