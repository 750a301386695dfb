// Who a request acts for. Each protocol adapter authenticates its client once (per HTTP request,
// per connection for Redis and the text protocol, per gRPC call) and runs the work it hands to the
// services as that principal; the services find it here and check it where they read or propose.
// AsyncLocalStorage carries it through every await of the request without each of the services'
// dozens of methods taking it as an argument.
import { AsyncLocalStorage } from "node:async_hooks";

/**
 * A principal: nobody yet (`anonymous`), a token's holder, the holder of a verified client
 * certificate (named by its subject CN, as etcd's `--client-cert-auth` names a user), or the node
 * itself (its own sweeps and upkeep, which no client asked for).
 */
export type Principal =
  | { readonly kind: "anonymous" }
  | { readonly kind: "token"; readonly tokenId: string }
  | { readonly kind: "certificate"; readonly name: string }
  | { readonly kind: "system" };

/** The principal of a client that has not authenticated. */
export const anonymous: Principal = { kind: "anonymous" };
/** The node acting on its own. */
export const system: Principal = { kind: "system" };

const context = new AsyncLocalStorage<Principal>();

/**
 * Whether authentication was ever seen on in this process. Until then principals change no
 * decision, and {@link runAs} leaves AsyncLocalStorage off: once used, Node 20 tracks every
 * promise for it, which costs a cluster without authentication for nothing.
 */
let principalsMatter = false;

/** Marks that authentication is on somewhere in this process: principals are tracked from now on. */
export function trackPrincipals(): void {
  principalsMatter = true;
}

/** Runs `work` (and everything it awaits) as `principal`. */
export function runAs<T>(principal: Principal, work: () => T): T {
  return principalsMatter ? context.run(principal, work) : work();
}

/** The principal the current work runs as; anonymous outside {@link runAs}. */
export function currentPrincipal(): Principal {
  return context.getStore() ?? anonymous;
}

/** The principal as one line of text, for the peer link: "", "system", "token:<id>" or "cert:<name>". */
export function encodePrincipal(principal: Principal): string {
  switch (principal.kind) {
    case "anonymous":
      return "";
    case "system":
      return "system";
    case "token":
      return `token:${principal.tokenId}`;
    case "certificate":
      return `cert:${principal.name}`;
  }
}

/** Reads {@link encodePrincipal}'s text; anything unknown is anonymous. */
export function decodePrincipal(text: string): Principal {
  if (text === "system") return system;
  if (text.startsWith("token:")) return { kind: "token", tokenId: text.slice("token:".length) };
  if (text.startsWith("cert:")) return { kind: "certificate", name: text.slice("cert:".length) };
  return anonymous;
}
