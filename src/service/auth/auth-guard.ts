// Decides whether the current principal may do what an operation needs, from the node's own copy
// of the replicated auth state, and turns a presented token or a verified client certificate's
// name into a principal. While authentication
// is off every request is allowed, so a cluster without it behaves as before.
import { CairnError } from "../errors.js";
import type { StateReader } from "../state.js";
import { certNamePattern } from "./auth-command.js";
import { authEnabled, getCertBinding, getRole, getToken, type TokenRecord } from "./auth-state-machine.js";
import { firstUncovered, formatNeed, type Need } from "./permissions.js";
import { anonymous, currentPrincipal, type Principal, trackPrincipals } from "./principal.js";
import { parseToken, secretMatches, tokenDigest } from "./token-secret.js";

/** Failed attempts, for /metrics. */
export interface AuthFailures {
  /** No token, an unknown, revoked or expired one, a wrong secret, or an unbound certificate name. */
  unauthenticated: number;
  /** A valid token whose role lacks a needed permission. */
  forbidden: number;
}

/** What a {@link AuthGuard} reads. */
export interface AuthGuardOptions {
  /** The node's committed state. */
  readonly state: StateReader;
  /** The node's clock, milliseconds since the epoch (token expiry). */
  readonly nowMs: () => number;
  /**
   * Waits until local state holds every write committed before the call (a ReadIndex barrier):
   * a token created through another node a moment ago is found after it.
   */
  readonly barrier?: () => Promise<void>;
}

/** Tokens whose secret was checked, remembered at most; a full table is cleared. */
const checkedTokensMax = 10_000;

/** The refusal of a request without a valid token (or with an unbound `certificate` name). */
export function unauthenticated(
  message = "authentication required: present a token",
  certificate?: string,
): CairnError {
  return new CairnError("ERR_UNAUTHENTICATED", message, certificate !== undefined ? { certificate } : {});
}

/** Checks principals against needs, and tokens against their stored hashes. */
export class AuthGuard {
  readonly #o: AuthGuardOptions;
  /** Digest of a token checked before -> its id and the stored hash it matched. */
  readonly #checked = new Map<string, { readonly id: string; readonly hash: Uint8Array }>();
  readonly failures: AuthFailures = { unauthenticated: 0, forbidden: 0 };

  /** Creates the guard. */
  constructor(options: AuthGuardOptions) {
    this.#o = options;
  }

  /** Whether authentication is on now. */
  enabled(): boolean {
    const on = authEnabled(this.#o.state);
    if (on) trackPrincipals();
    return on;
  }

  /**
   * The principal a presented token stands for. Rejects with ERR_UNAUTHENTICATED (and counts the
   * failure) when it is malformed, unknown, revoked, expired or its secret does not match.
   */
  async authenticate(text: string): Promise<Principal> {
    const parts = parseToken(text);
    if (parts === undefined) throw this.#unauthenticated("the token is malformed");
    let record = getToken(this.#o.state, parts.id);
    if (record === undefined && this.#o.barrier !== undefined) {
      // Created a moment ago through another node: wait until this node applied it.
      await this.#o.barrier();
      record = getToken(this.#o.state, parts.id);
    }
    if (record === undefined) throw this.#unauthenticated("the token is not valid");
    const digest = tokenDigest(text);
    const known = this.#checked.get(digest);
    if (known === undefined || known.id !== record.id || !Buffer.from(known.hash).equals(record.hash)) {
      if (!(await secretMatches(parts.secret, record.salt, record.hash)))
        throw this.#unauthenticated("the token is not valid");
      if (this.#checked.size >= checkedTokensMax) this.#checked.clear();
      this.#checked.set(digest, { id: record.id, hash: record.hash });
    }
    this.#live(record.id);
    trackPrincipals();
    return { kind: "token", tokenId: record.id };
  }

  /**
   * The principal of a client that presented `text`; without one, `otherwise` (its certificate's
   * principal, or anonymous): a token takes precedence over a certificate. A token is checked even
   * where this node has not applied the entry that turned authentication on yet: the leader, which
   * has, would refuse an anonymous write. A bad token is refused only while authentication is on.
   */
  async principalFor(text: string | undefined, otherwise: Principal = anonymous): Promise<Principal> {
    if (text === undefined || text === "") return otherwise;
    try {
      return await this.authenticate(text);
    } catch (error) {
      if (!this.enabled()) return otherwise;
      throw error;
    }
  }

  /**
   * The principal of a client whose verified certificate names it `name` (its subject CN), or
   * anonymous when it has none or a name no binding could hold. Whether the name is bound is
   * decided at each check, so a binding made or removed later applies to open connections too.
   */
  certificatePrincipal(name: string | undefined): Principal {
    if (name === undefined || !certNamePattern.test(name)) return anonymous;
    // From here the principal must travel with the request (a token's does through authenticate).
    trackPrincipals();
    return { kind: "certificate", name };
  }

  /**
   * Whether `principal` names someone authentication accepts now: not anonymous, and not a
   * certificate name bound to no role (a token's liveness is checked where it is used).
   */
  identifies(principal: Principal): boolean {
    switch (principal.kind) {
      case "anonymous":
        return false;
      case "certificate":
        return getCertBinding(this.#o.state, principal.name) !== undefined;
      case "token":
      case "system":
        return true;
    }
  }

  /**
   * Throws unless `principal` (the current one by default) may do everything `needs` lists:
   * ERR_UNAUTHENTICATED without a live token or a bound certificate name, ERR_FORBIDDEN naming the
   * first permission missing.
   */
  check(needs: readonly Need[], principal: Principal = currentPrincipal()): void {
    if (!this.enabled()) return;
    const holder = this.#holderOf(principal);
    if (holder === undefined) return;
    const grants = getRole(this.#o.state, holder.role)?.grants ?? [];
    const missing = firstUncovered(grants, needs);
    if (missing === undefined) return;
    this.failures.forbidden++;
    const permission = formatNeed(missing);
    const name =
      missing.resource === "key"
        ? Buffer.from(missing.key).toString("utf8")
        : missing.resource === "stream"
          ? missing.name
          : undefined;
    throw new CairnError("ERR_FORBIDDEN", `${holder.label} (role ${holder.role}) lacks ${permission}`, {
      missing: permission,
      principal: holder.id,
      ...(name !== undefined ? { name } : {}),
    });
  }

  /**
   * The role `principal` acts with and how a refusal names it; undefined for the node itself.
   * Throws ERR_UNAUTHENTICATED for no one, a dead token or an unbound certificate name.
   */
  #holderOf(principal: Principal): { role: string; label: string; id: string } | undefined {
    switch (principal.kind) {
      case "system":
        return undefined;
      case "anonymous":
        throw this.#unauthenticated();
      case "token": {
        const token = this.#live(principal.tokenId);
        return { role: token.role, label: `token ${token.id}`, id: token.id };
      }
      case "certificate": {
        const binding = getCertBinding(this.#o.state, principal.name);
        if (binding === undefined) {
          throw this.#unauthenticated(
            `certificate name ${principal.name} is not bound to a role: bind it (cairn auth cert bind) or present a token`,
            principal.name,
          );
        }
        return { role: binding.role, label: `certificate ${binding.name}`, id: `cert:${binding.name}` };
      }
    }
  }

  /** The token `id` if it is still valid now; otherwise throws ERR_UNAUTHENTICATED. */
  #live(id: string): TokenRecord {
    const token = getToken(this.#o.state, id);
    if (token === undefined) throw this.#unauthenticated("the token was revoked");
    if (token.expiresAtMs !== 0 && this.#o.nowMs() >= token.expiresAtMs)
      throw this.#unauthenticated("the token has expired");
    return token;
  }

  #unauthenticated(message?: string, certificate?: string): CairnError {
    if (this.enabled()) this.failures.unauthenticated++;
    return unauthenticated(message, certificate);
  }
}
