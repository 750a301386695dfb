// The supervisor's calls to the cluster, over the nodes' public HTTP API: status and liveness of
// one node, and membership changes through any running node (followers hand them to the leader).
import type { ClusterStatus, JoinAnswer, WhoAmI } from "../api/index.js";
import { CairnClient, CairnClientError } from "../client/index.js";
import type { ClusterCalls } from "./supervisor.js";
import { ControlError } from "./supervisor.js";

/**
 * The supervisor's cluster calls over HTTP, with the admin token `token()` answers once the
 * cluster asks for tokens (docs/security.md).
 */
export function httpClusterCalls(token: () => string | undefined = () => undefined): ClusterCalls {
  const headers = (): Record<string, string> => {
    const t = token();
    return t === undefined ? {} : { authorization: `Bearer ${t}` };
  };
  /** A client over `endpoints` for one membership call: short attempts, a bounded retry budget. */
  const clientFor = (endpoints: readonly string[]): CairnClient => {
    const t = token();
    return new CairnClient({
      endpoints,
      requestTimeoutMs: 5_000,
      retryBudgetMs: 15_000,
      ...(t !== undefined ? { token: t } : {}),
    });
  };
  return {
    async status(httpUrl, timeoutMs) {
      const response = await fetch(`${httpUrl}/v1/cluster`, {
        headers: headers(),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) throw new Error(`${httpUrl} answered ${response.status}`);
      return (await response.json()) as ClusterStatus;
    },
    async live(httpUrl, timeoutMs) {
      try {
        const response = await fetch(`${httpUrl}/health/live`, { signal: AbortSignal.timeout(timeoutMs) });
        await response.body?.cancel();
        return response.ok;
      } catch {
        return false;
      }
    },
    async join(endpoints, name, peerAddress) {
      const answer = (await clientFor(endpoints).request(
        "POST",
        "/v1/cluster/members",
        { name, peerAddress },
        `supervisor-add-${name}-${peerAddress}`,
      )) as JoinAnswer;
      return { id: answer.id };
    },
    async remove(endpoints, id) {
      try {
        await clientFor(endpoints).request(
          "DELETE",
          `/v1/cluster/members/${id}`,
          undefined,
          `supervisor-remove-${id}`,
        );
      } catch (error) {
        // A retry after an answer lost in transit finds the member gone: the removal is done.
        if (!(error instanceof CairnClientError && error.code === "ERR_NOT_FOUND")) throw error;
      }
    },
    async transfer(endpoints, id) {
      await clientFor(endpoints).request(
        "POST",
        "/v1/cluster/leader",
        { transferTo: id },
        `supervisor-transfer-${id}-${Date.now()}`,
      );
    },
  };
}

/**
 * Checks a control call's Authorization header against the cluster (any of `endpoints`): allowed
 * while the cluster asks for no token; otherwise the token must be valid and hold admin:cluster.
 */
export async function authorizeControl(
  endpoints: readonly string[],
  authorization: string | undefined,
): Promise<void> {
  let answer: { status: number; body: WhoAmI | undefined } | undefined;
  for (const endpoint of endpoints) {
    try {
      const response = await fetch(`${endpoint}/v1/auth/whoami`, {
        headers: authorization !== undefined ? { authorization } : {},
        signal: AbortSignal.timeout(3_000),
      });
      answer = {
        status: response.status,
        body: response.ok ? ((await response.json()) as WhoAmI) : undefined,
      };
      await response.body?.cancel().catch(() => undefined);
      break;
    } catch {
      // Try the next node.
    }
  }
  if (answer === undefined) throw new ControlError("ERR_UNAVAILABLE", "no node answers to check the token");
  if (answer.status === 401) throw new ControlError("ERR_UNAUTHENTICATED", "the cluster asks for a token");
  if (answer.body === undefined)
    throw new ControlError("ERR_UNAVAILABLE", `a node answered ${answer.status}`);
  if (!answer.body.enabled) return;
  if (!(answer.body.grants ?? []).includes("admin:cluster"))
    throw new ControlError("ERR_FORBIDDEN", "the control API needs a token with admin:cluster");
}
