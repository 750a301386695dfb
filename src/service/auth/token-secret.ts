// Token secrets: how a token is made, written and checked. A token is `ct_<id>_<secret>` (16 hex
// digits of id, 64 of secret: 256 random bits). Only a salted scrypt hash of the secret is stored;
// node:crypto's scrypt is memory-hard and runs on libuv's thread pool, so checking one does not
// stall the event loop.
import { createHash, randomBytes, scrypt, timingSafeEqual } from "node:crypto";

/** scrypt's cost settings: 16 MiB and some tens of milliseconds per check (cached afterwards). */
const scryptOptions = { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 } as const;
const hashBytes = 32;

/** A token's parts. */
export interface TokenParts {
  readonly id: string;
  readonly secret: string;
}

const tokenPattern = /^ct_([0-9a-f]{16})_([0-9a-f]{64})$/;

/** A fresh token: a random id and secret, and the text a client presents. */
export function newToken(): TokenParts & { readonly text: string } {
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("hex");
  return { id, secret, text: `ct_${id}_${secret}` };
}

/** The parts of a presented token, or undefined when it is not one. */
export function parseToken(text: string): TokenParts | undefined {
  const match = tokenPattern.exec(text.trim());
  if (match === null) return undefined;
  const [, id, secret] = match;
  return id === undefined || secret === undefined ? undefined : { id, secret };
}

function scryptAsync(secret: string, salt: Uint8Array): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(secret, salt, hashBytes, scryptOptions, (error, key) => (error ? reject(error) : resolve(key))),
  );
}

/** The salted hash to store for `secret`, with its fresh salt. */
export async function hashSecret(secret: string): Promise<{ salt: Uint8Array; hash: Uint8Array }> {
  const salt = randomBytes(16);
  return { salt, hash: await scryptAsync(secret, salt) };
}

/** Whether `secret` hashes to `hash` with `salt` (compared in constant time). */
export async function secretMatches(secret: string, salt: Uint8Array, hash: Uint8Array): Promise<boolean> {
  const computed = await scryptAsync(secret, salt);
  return computed.length === hash.length && timingSafeEqual(computed, hash);
}

/** A fast digest of a presented token, to remember tokens already checked without keeping them. */
export function tokenDigest(text: string): string {
  return createHash("sha256").update(text).digest("base64");
}
