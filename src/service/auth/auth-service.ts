// Managing authentication for every protocol: turning it on (with a bootstrap admin token, so no
// one is locked out) and off, roles and their grants, tokens (created with a secret shown once,
// listed without secrets, revoked), and client certificate names bound to roles. Changes go through the log like any state; every operation
// here needs admin on the cluster, except turning authentication on while it is off.
import type { AuthTokenCreated, AuthTokenInfo, CertBindingInfo, RoleInfo, WhoAmI } from "../../api/index.js";
import { CairnError, refusalError } from "../errors.js";
import { proposeCommand } from "../propose.js";
import type { ReplicationPort } from "../replication.js";
import type { AuthCommand } from "./index.js";
import {
  type AuthGuard,
  adminRoleName,
  burstMax,
  certNamePattern,
  clusterAdminNeeds,
  currentPrincipal,
  formatGrant,
  getCertBinding,
  getRole,
  getToken,
  grantsPerRoleMax,
  hashSecret,
  listCertBindings,
  listRoles,
  listTokens,
  newToken,
  parseGrant,
  requestsPerSecondMax,
  tokenIdPattern,
} from "./index.js";

const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** The longest token lifetime: ten years. */
export const tokenTtlMsMax = 10 * 365 * 24 * 3600 * 1000;

/** Tokens and roles. */
export class AuthService {
  readonly #log: ReplicationPort;
  readonly #guard: AuthGuard;

  /** Creates the service over the replicated log and the node's guard. */
  constructor(log: ReplicationPort, guard: AuthGuard) {
    this.#log = log;
    this.#guard = guard;
  }

  /** The guard every protocol authenticates its clients with. */
  get guard(): AuthGuard {
    return this.#guard;
  }

  /**
   * Turns authentication on and creates the bootstrap admin token, whose secret only this answer
   * carries. ERR_CONFLICT when it is already on.
   */
  async enable(): Promise<AuthTokenCreated> {
    const token = newToken();
    const { salt, hash } = await hashSecret(token.secret);
    const result = await this.#propose({
      type: "enable",
      token: { id: token.id, role: adminRoleName, salt, hash, ttlMs: 0 },
    });
    if (!result.ok) throw refusalError(result);
    if (result.kind !== "auth.enable") throw new CairnError("ERR_INTERNAL", "enable answered another kind");
    return { id: token.id, token: token.text, role: adminRoleName, expiresAtMs: result.expiresAtMs };
  }

  /** Turns authentication off (tokens and roles are kept for when it is turned on again). */
  async disable(): Promise<{ disabled: boolean }> {
    const result = await this.#propose({ type: "disable" });
    if (result.kind !== "auth.disable" || !result.ok) throw new CairnError("ERR_INTERNAL", "disable failed");
    return { disabled: result.disabled };
  }

  /** Creates a token of `role`, valid for `ttlMs` (absent: until revoked); its secret is in the answer only. */
  async createToken(role: string, ttlMs?: number): Promise<AuthTokenCreated> {
    checkRoleName(role);
    if (ttlMs !== undefined && (!Number.isSafeInteger(ttlMs) || ttlMs < 1 || ttlMs > tokenTtlMsMax)) {
      throw new CairnError("ERR_BAD_REQUEST", `ttlMs must be an integer from 1 to ${tokenTtlMsMax}`);
    }
    // Checked before the scrypt work: a caller without the right learns nothing and costs little.
    this.#log.authorize?.(clusterAdminNeeds);
    const token = newToken();
    const { salt, hash } = await hashSecret(token.secret);
    const result = await this.#propose({
      type: "token-create",
      token: { id: token.id, role, salt, hash, ttlMs: ttlMs ?? 0 },
    });
    if (!result.ok) throw refusalError(result);
    if (result.kind !== "auth.token-create")
      throw new CairnError("ERR_INTERNAL", "create answered another kind");
    return { id: token.id, token: token.text, role, expiresAtMs: result.expiresAtMs };
  }

  /** Every token, without secrets. */
  async listTokens(): Promise<{ tokens: AuthTokenInfo[] }> {
    this.#log.authorize?.(clusterAdminNeeds);
    const nowMs = this.#log.nowMs();
    const tokens = await this.#log.readLinearizable((state) => listTokens(state));
    return {
      tokens: tokens.map((t) => ({
        id: t.id,
        role: t.role,
        createdAtMs: t.createdAtMs,
        expiresAtMs: t.expiresAtMs,
        expired: t.expiresAtMs !== 0 && nowMs >= t.expiresAtMs,
      })),
    };
  }

  /** Revokes a token on every node; `revoked` is false when no such token existed. */
  async revokeToken(id: string): Promise<{ revoked: boolean }> {
    if (!tokenIdPattern.test(id)) throw new CairnError("ERR_BAD_REQUEST", "a token id is 16 hex digits");
    const result = await this.#propose({ type: "token-revoke", id });
    if (result.kind !== "auth.token-revoke" || !result.ok)
      throw new CairnError("ERR_INTERNAL", "revoke failed");
    return { revoked: result.revoked };
  }

  /** Creates or replaces a role from grants written as `read:key:users/` (see parseGrant). */
  async putRole(name: string, grants: readonly string[]): Promise<{ created: boolean }> {
    checkRoleName(name);
    if (name === adminRoleName) throw new CairnError("ERR_BAD_REQUEST", "the admin role is built in");
    if (grants.length === 0 || grants.length > grantsPerRoleMax) {
      throw new CairnError("ERR_BAD_REQUEST", `a role has 1 to ${grantsPerRoleMax} grants`);
    }
    const result = await this.#propose({ type: "role-put", name, grants: grants.map(parseGrant) });
    if (!result.ok) throw refusalError(result);
    if (result.kind !== "auth.role-put")
      throw new CairnError("ERR_INTERNAL", "role put answered another kind");
    return { created: result.created };
  }

  /**
   * Sets the rate limit of each token of role `name`: `requestsPerSecond` refilled, at most
   * `burst` at once (default one second's worth); 0 requests per second removes the limit.
   */
  async setRoleRate(
    name: string,
    requestsPerSecond: number,
    burst?: number,
  ): Promise<{ requestsPerSecond: number; burst: number }> {
    checkRoleName(name);
    if (
      !Number.isSafeInteger(requestsPerSecond) ||
      requestsPerSecond < 0 ||
      requestsPerSecond > requestsPerSecondMax
    ) {
      throw new CairnError(
        "ERR_BAD_REQUEST",
        `requestsPerSecond is an integer from 0 to ${requestsPerSecondMax}`,
      );
    }
    const bucket = burst ?? Math.max(1, requestsPerSecond);
    if (!Number.isSafeInteger(bucket) || bucket < 1 || bucket > burstMax) {
      throw new CairnError("ERR_BAD_REQUEST", `burst is an integer from 1 to ${burstMax}`);
    }
    const rate = { requestsPerSecond, burst: bucket };
    const result = await this.#propose({ type: "role-rate", name, rate });
    if (!result.ok) throw refusalError(result);
    if (result.kind !== "auth.role-rate")
      throw new CairnError("ERR_INTERNAL", "role rate answered another kind");
    return rate;
  }

  /** Removes a role no token holds. */
  async deleteRole(name: string): Promise<{ deleted: boolean }> {
    checkRoleName(name);
    const result = await this.#propose({ type: "role-delete", name });
    if (!result.ok) throw refusalError(result);
    if (result.kind !== "auth.role-delete")
      throw new CairnError("ERR_INTERNAL", "role delete answered another kind");
    return { deleted: result.deleted };
  }

  /** Every role with its grants, the built-in admin role first. */
  async listRoles(): Promise<{ roles: RoleInfo[] }> {
    this.#log.authorize?.(clusterAdminNeeds);
    const roles = await this.#log.readLinearizable((state) => listRoles(state));
    return {
      roles: roles.map((r) => ({
        name: r.name,
        grants: r.grants.map(formatGrant),
        builtIn: r.builtIn,
        ...(r.rate !== undefined ? { rate: r.rate } : {}),
      })),
    };
  }

  /**
   * Binds a client certificate's name (its subject CN) to `role`: a client presenting a verified
   * certificate of that name acts with the role's grants. Replaces an earlier binding of the name.
   */
  async bindCertificate(name: string, role: string): Promise<{ created: boolean }> {
    checkCertName(name);
    checkRoleName(role);
    const result = await this.#propose({ type: "cert-bind", name, role });
    if (!result.ok) throw refusalError(result);
    if (result.kind !== "auth.cert-bind") throw new CairnError("ERR_INTERNAL", "bind answered another kind");
    return { created: result.created };
  }

  /** Removes a certificate name's binding: its holder may do nothing from then on. */
  async unbindCertificate(name: string): Promise<{ unbound: boolean }> {
    checkCertName(name);
    const result = await this.#propose({ type: "cert-unbind", name });
    if (result.kind !== "auth.cert-unbind" || !result.ok)
      throw new CairnError("ERR_INTERNAL", "unbind answered another kind");
    return { unbound: result.unbound };
  }

  /** Every certificate name bound to a role. */
  async listCertificates(): Promise<{ certs: CertBindingInfo[] }> {
    this.#log.authorize?.(clusterAdminNeeds);
    const certs = await this.#log.readLinearizable((state) => listCertBindings(state));
    return { certs: certs.map((c) => ({ name: c.name, role: c.role })) };
  }

  /** Whether authentication is on, and who the caller is (its token or certificate, and role) when it is. */
  whoAmI(state = this.#guard): WhoAmI {
    if (!state.enabled()) return { enabled: false };
    state.check([]);
    const principal = currentPrincipal();
    const [who, roleName] =
      principal.kind === "token"
        ? [
            { tokenId: principal.tokenId },
            this.#log.readStale((s) => getToken(s, principal.tokenId)).value?.role,
          ]
        : principal.kind === "certificate"
          ? [
              { certificate: principal.name },
              this.#log.readStale((s) => getCertBinding(s, principal.name)).value?.role,
            ]
          : [{}, undefined];
    const role = roleName === undefined ? undefined : this.#log.readStale((s) => getRole(s, roleName)).value;
    return {
      enabled: true,
      ...who,
      ...(role !== undefined ? { role: role.name, grants: role.grants.map(formatGrant) } : {}),
    };
  }

  async #propose(command: AuthCommand) {
    return (await proposeCommand(this.#log, { service: "auth", command }, undefined)).result;
  }
}

function checkCertName(name: string): void {
  if (!certNamePattern.test(name)) {
    throw new CairnError(
      "ERR_BAD_REQUEST",
      "a certificate name (subject CN) is 1 to 64 letters, digits, '_', '.', '@', ':' or '-'",
    );
  }
}

function checkRoleName(name: string): void {
  if (!ROLE_NAME.test(name)) {
    throw new CairnError("ERR_BAD_REQUEST", "a role name is 1 to 64 letters, digits, '_', '.' or '-'");
  }
}
