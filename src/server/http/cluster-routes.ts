// The cluster endpoints: status for everyone, and membership changes and leadership transfer,
// which the leader carries out (a follower's membership service hands them over).

import { Readable } from "node:stream";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance } from "fastify";
import { Type } from "typebox";
import { JoinBody, TransferBody } from "../../api/index.js";
import type { ClusterStatus, Membership, SnapshotBackup } from "../../service/index.js";

/** What the cluster routes serve. */
export interface ClusterRoutesOptions {
  /** GET /v1/cluster. */
  status(): ClusterStatus;
  /** Membership changes; absent on a node that does not manage membership. */
  readonly membership?: Membership;
  /** GET /v1/cluster/snapshot (a backup); absent on a node without snapshots. */
  backup?(): Promise<SnapshotBackup>;
}

/** The response header that carries a backup's snapshot index (the file's header has it too). */
export const snapshotIndexHeader = "cairn-snapshot-index";

/** Registers /v1/cluster routes (membership calls on a follower reach the leader through the service). */
export function registerClusterRoutes(fastify: FastifyInstance, options: ClusterRoutesOptions): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  app.get(
    "/v1/cluster",
    { schema: { summary: "Members, roles, leader, terms, indexes and per-peer lag" } },
    async () => options.status(),
  );
  const backup = options.backup;
  if (backup !== undefined) {
    app.get(
      "/v1/cluster/snapshot",
      {
        schema: {
          summary:
            "A backup: a snapshot of the replicated state as of this call, as a checksummed snapshot file (admin)",
        },
      },
      async (_request, reply) => {
        const taken = await backup();
        return reply
          .header("content-type", "application/octet-stream")
          .header("content-length", taken.bytes)
          .header(snapshotIndexHeader, taken.meta.index)
          .send(Readable.from(taken.read(), { objectMode: false }));
      },
    );
  }
  const membership = options.membership;
  if (membership === undefined) return;
  app.post(
    "/v1/cluster/members",
    {
      schema: {
        summary: "Add a node: registered, added as a learner, promoted once caught up",
        body: JoinBody,
      },
    },
    async (request) => membership.join(request.body.name, request.body.peerAddress),
  );
  app.delete(
    "/v1/cluster/members/:id",
    {
      schema: { summary: "Remove a member", params: Type.Object({ id: Type.Integer({ minimum: 1 }) }) },
    },
    async (request) => {
      await membership.remove(request.params.id);
      return { removed: request.params.id };
    },
  );
  app.post(
    "/v1/cluster/leader",
    {
      schema: {
        summary: "Hand leadership to another voter",
        body: TransferBody,
      },
    },
    async (request, reply) => {
      await membership.transferLeader(request.body.transferTo);
      return reply.status(202).send({ transferTo: request.body.transferTo });
    },
  );
}
