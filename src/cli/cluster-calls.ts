// The supervisor's calls to the cluster, over the nodes' public HTTP API: status and liveness of
// one node, and membership changes through any running node (followers hand them to the leader).
import type { ClusterStatus, JoinAnswer } from "../api/index.js";
import { CairnClient, CairnClientError } from "../client/index.js";
import type { ClusterCalls } from "./supervisor.js";

/** A client over `endpoints` for one membership call: short attempts, a bounded retry budget. */
function clientFor(endpoints: readonly string[]): CairnClient {
  return new CairnClient({ endpoints, requestTimeoutMs: 5_000, retryBudgetMs: 15_000 });
}

/** The supervisor's cluster calls over HTTP. */
export const httpClusterCalls: ClusterCalls = {
  async status(httpUrl, timeoutMs) {
    const response = await fetch(`${httpUrl}/v1/cluster`, { signal: AbortSignal.timeout(timeoutMs) });
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
