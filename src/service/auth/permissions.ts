// Roles grant permissions on resources, as etcd's key-range permissions and NATS's subject
// permissions do: `read`, `write` or `admin` on key prefixes, stream-name patterns, or the cluster
// itself. `admin` on a resource includes `read` and `write` on it; `write` does not include `read`
// (a producer may append without reading). Pure functions only: the state machine stores grants,
// the guard matches what an operation needs against them.
import { CairnError } from "../errors.js";

/** What may be done. */
export type Permission = "read" | "write" | "admin";

/** What a grant is about. */
export type ResourceKind = "key" | "stream" | "cluster";

/**
 * One grant of a role. `pattern` is a key prefix for keys (`""` is every key), a stream-name
 * pattern for streams (`*` matches any run of characters, anything else itself), unused for the
 * cluster.
 */
export interface Grant {
  readonly permission: Permission;
  readonly resource: ResourceKind;
  readonly pattern: string;
}

/**
 * What one operation needs. Keys are bytes; a range need covers every key in [start, end)
 * (end absent: to the end of the keyspace).
 */
export type Need =
  | { readonly permission: Permission; readonly resource: "key"; readonly key: Uint8Array }
  | {
      readonly permission: Permission;
      readonly resource: "key-range";
      readonly start: Uint8Array;
      readonly end: Uint8Array | undefined;
    }
  | { readonly permission: Permission; readonly resource: "stream"; readonly name: string }
  | { readonly permission: Permission; readonly resource: "cluster" };

/** The built-in role every bootstrap token has: everything. It cannot be changed or removed. */
export const adminRoleName = "admin";

/** The grants of the built-in admin role. */
export const adminGrants: readonly Grant[] = [
  { permission: "admin", resource: "key", pattern: "" },
  { permission: "admin", resource: "stream", pattern: "*" },
  { permission: "admin", resource: "cluster", pattern: "" },
];

/** The most grants one role holds. */
export const grantsPerRoleMax = 64;
/** The longest grant pattern, in bytes. */
export const grantPatternBytesMax = 256;

const permissions: readonly Permission[] = ["read", "write", "admin"];
const resources: readonly ResourceKind[] = ["key", "stream", "cluster"];

function isPermission(value: string): value is Permission {
  return (permissions as readonly string[]).includes(value);
}

function isResource(value: string): value is ResourceKind {
  return (resources as readonly string[]).includes(value);
}

/**
 * Parses a grant written as `<permission>:<resource>[:<pattern>]`: `read:key:users/`,
 * `write:stream:orders.*`, `admin:cluster`. A key pattern `*` (or ending in `*`) means the prefix
 * before the star. Throws ERR_BAD_REQUEST naming what is wrong.
 */
export function parseGrant(text: string): Grant {
  const first = text.indexOf(":");
  const second = first < 0 ? -1 : text.indexOf(":", first + 1);
  const permission = first < 0 ? text : text.slice(0, first);
  const resource = first < 0 ? "" : second < 0 ? text.slice(first + 1) : text.slice(first + 1, second);
  const pattern = second < 0 ? undefined : text.slice(second + 1);
  if (!isPermission(permission) || !isResource(resource)) {
    throw new CairnError(
      "ERR_BAD_REQUEST",
      `grant "${text}" is not <read|write|admin>:<key|stream|cluster>[:<pattern>]`,
    );
  }
  if (resource === "cluster") {
    if (pattern !== undefined && pattern !== "" && pattern !== "*")
      throw new CairnError("ERR_BAD_REQUEST", `grant "${text}": the cluster takes no pattern`);
    return { permission, resource, pattern: "" };
  }
  if (pattern === undefined || pattern === "")
    throw new CairnError("ERR_BAD_REQUEST", `grant "${text}" needs a pattern (use * for all)`);
  if (Buffer.byteLength(pattern) > grantPatternBytesMax)
    throw new CairnError("ERR_BAD_REQUEST", `grant pattern is longer than ${grantPatternBytesMax} bytes`);
  if (resource === "key") {
    if (pattern.indexOf("*") !== -1 && pattern.indexOf("*") !== pattern.length - 1)
      throw new CairnError(
        "ERR_BAD_REQUEST",
        `grant "${text}": a key pattern is a prefix, * only at its end`,
      );
    return { permission, resource, pattern: pattern.endsWith("*") ? pattern.slice(0, -1) : pattern };
  }
  return { permission, resource, pattern };
}

/** The text form {@link parseGrant} reads. */
export function formatGrant(grant: Grant): string {
  if (grant.resource === "cluster") return `${grant.permission}:cluster`;
  if (grant.resource === "key") return `${grant.permission}:key:${grant.pattern}*`;
  return `${grant.permission}:stream:${grant.pattern}`;
}

/** The text form of a need, as a refusal names the missing permission. */
export function formatNeed(need: Need): string {
  switch (need.resource) {
    case "key":
      return `${need.permission}:key:${Buffer.from(need.key).toString("utf8")}`;
    case "key-range":
      return need.start.length === 0 && need.end === undefined
        ? `${need.permission}:key:*`
        : `${need.permission}:key:${Buffer.from(need.start).toString("utf8")}*`;
    case "stream":
      return `${need.permission}:stream:${need.name}`;
    case "cluster":
      return `${need.permission}:cluster`;
  }
}

function permissionCovers(granted: Permission, needed: Permission): boolean {
  return granted === "admin" || granted === needed;
}

function startsWith(bytes: Uint8Array, prefix: Uint8Array): boolean {
  if (prefix.length > bytes.length) return false;
  for (let i = 0; i < prefix.length; i++) if (bytes[i] !== prefix[i]) return false;
  return true;
}

/** Whether `end` (exclusive; undefined: unbounded) stays within the keys starting with `prefix`. */
function endWithin(end: Uint8Array | undefined, prefix: Uint8Array): boolean {
  if (prefix.length === 0) return true;
  if (end === undefined) return false;
  // The smallest key after every key starting with `prefix`: [start, end) stays inside when end <= it.
  const limit = Uint8Array.from(prefix);
  let i = limit.length - 1;
  while (i >= 0 && limit[i] === 0xff) i--;
  if (i < 0) return true;
  limit[i] = (limit[i] ?? 0) + 1;
  const bound = limit.subarray(0, i + 1);
  const n = Math.min(end.length, bound.length);
  for (let j = 0; j < n; j++) {
    const a = end[j] ?? 0;
    const b = bound[j] ?? 0;
    if (a !== b) return a < b;
  }
  return end.length <= bound.length;
}

/** Whether a stream-name pattern matches `name`: `*` matches any run of characters. */
export function streamPatternMatches(pattern: string, name: string): boolean {
  const parts = pattern.split("*");
  if (parts.length === 1) return pattern === name;
  const head = parts[0] ?? "";
  const tail = parts[parts.length - 1] ?? "";
  if (!name.startsWith(head) || name.length < head.length + tail.length || !name.endsWith(tail)) return false;
  let at = head.length;
  const stop = name.length - tail.length;
  for (const middle of parts.slice(1, -1)) {
    const found = name.indexOf(middle, at);
    if (found < 0 || found + middle.length > stop) return false;
    at = found + middle.length;
  }
  return true;
}

const encoder = new TextEncoder();

/** Whether one grant covers `need`. */
export function grantCovers(grant: Grant, need: Need): boolean {
  if (!permissionCovers(grant.permission, need.permission)) return false;
  switch (need.resource) {
    case "key":
      return grant.resource === "key" && startsWith(need.key, encoder.encode(grant.pattern));
    case "key-range": {
      if (grant.resource !== "key") return false;
      const prefix = encoder.encode(grant.pattern);
      return startsWith(need.start, prefix) && endWithin(need.end, prefix);
    }
    case "stream":
      return grant.resource === "stream" && streamPatternMatches(grant.pattern, need.name);
    case "cluster":
      return grant.resource === "cluster";
  }
}

/** The first of `needs` that no grant covers, or undefined when the grants cover them all. */
export function firstUncovered(grants: readonly Grant[], needs: readonly Need[]): Need | undefined {
  return needs.find((need) => !grants.some((grant) => grantCovers(grant, need)));
}
