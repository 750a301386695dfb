// Authentication over HTTP: every request presents `Authorization: Bearer <token>` (or comes over
// a connection with a verified client certificate whose name is bound to a role) once
// authentication is on, and runs as the principal it names (src/service/auth); /v1/auth manages
// tokens and roles. A missing or bad token is 401 ERR_UNAUTHENTICATED, a token whose role lacks a
// permission 403 ERR_FORBIDDEN naming it.
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { Type } from "typebox";
import { CertBindBody, RolePutBody, RoleRateBody, TokenCreateBody } from "../../api/index.js";
import { type AuthService, anonymous, CairnError, type Principal, runAs } from "../../service/index.js";
import { peerCertificateName } from "../client-tls.js";

/** Who each request in flight acts for, from the app's first hook to its handler. */
const principals = new WeakMap<FastifyRequest, Principal>();

/** Who a request acts for, once the app's first hook ran (anonymous without authentication). */
export function requestPrincipal(request: FastifyRequest): Principal {
  return principals.get(request) ?? anonymous;
}

/**
 * The principal of a request: the token in its Authorization header, checked; else the name of
 * its connection's verified client certificate; else anonymous.
 */
async function principalOf(auth: AuthService, request: FastifyRequest): Promise<Principal> {
  const header = request.headers.authorization;
  const certificate = auth.guard.certificatePrincipal(peerCertificateName(request.raw.socket));
  if (header === undefined) return certificate;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (match?.[1] === undefined) {
    // While authentication is off, a header that is not a bearer token is none of our business.
    if (!auth.guard.enabled()) return certificate;
    throw new CairnError("ERR_UNAUTHENTICATED", "the Authorization header must be 'Bearer <token>'");
  }
  return auth.guard.principalFor(match[1], certificate);
}

/**
 * Authenticates every request and runs its handler as its principal. Routes that anyone may call
 * (health, metrics, the OpenAPI document) check nothing; every other operation checks the
 * principal in the service it calls. Returns the step of the app's first hook that finds a
 * request's principal: undefined when it is known at once (most requests carry no token and need
 * no promise; without a verified client certificate either, no entry here, and
 * {@link requestPrincipal} answers anonymous for them), else the check of the token.
 */
export function registerAuthentication(
  app: FastifyInstance,
  auth: AuthService,
): (request: FastifyRequest) => Promise<void> | undefined {
  // The handler runs inside `done`: everything it awaits keeps the principal.
  app.addHook("preHandler", (request, _reply, done) => runAs(principals.get(request) ?? anonymous, done));
  return (request) => {
    if (request.headers.authorization === undefined) {
      const certificate = auth.guard.certificatePrincipal(peerCertificateName(request.raw.socket));
      if (certificate !== anonymous) principals.set(request, certificate);
      return undefined;
    }
    return principalOf(auth, request).then((principal) => {
      principals.set(request, principal);
    });
  };
}

/** Registers /v1/auth. */
export function registerAuthRoutes(fastify: FastifyInstance, auth: AuthService): void {
  const app = fastify.withTypeProvider<TypeBoxTypeProvider>();
  const tokenId = Type.Object({ id: Type.String({ pattern: "^[0-9a-f]{16}$" }) });
  const roleName = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });
  app.get(
    "/v1/auth/whoami",
    { schema: { summary: "Whether authentication is on, and the caller's token and role" } },
    async () => auth.whoAmI(),
  );
  app.post(
    "/v1/auth/enable",
    { schema: { summary: "Turn authentication on; answers the bootstrap admin token, shown once" } },
    async (_request, reply) => reply.status(201).send(await auth.enable()),
  );
  app.post(
    "/v1/auth/disable",
    { schema: { summary: "Turn authentication off (needs admin:cluster)" } },
    async () => auth.disable(),
  );
  app.post(
    "/v1/auth/tokens",
    { schema: { summary: "Create a token; its secret is in this answer only", body: TokenCreateBody } },
    async (request, reply) =>
      reply.status(201).send(await auth.createToken(request.body.role, request.body.ttlMs)),
  );
  app.get("/v1/auth/tokens", { schema: { summary: "List tokens (never their secrets)" } }, async () =>
    auth.listTokens(),
  );
  app.delete(
    "/v1/auth/tokens/:id",
    { schema: { summary: "Revoke a token on every node", params: tokenId } },
    async (request) => auth.revokeToken(request.params.id),
  );
  app.get("/v1/auth/roles", { schema: { summary: "List roles and their grants" } }, async () =>
    auth.listRoles(),
  );
  app.put(
    "/v1/auth/roles/:name",
    { schema: { summary: "Create or replace a role", params: roleName, body: RolePutBody } },
    async (request) => auth.putRole(request.params.name, request.body.grants),
  );
  app.put(
    "/v1/auth/roles/:name/rate",
    {
      schema: { summary: "Set the rate limit of each token of a role", params: roleName, body: RoleRateBody },
    },
    async (request) =>
      auth.setRoleRate(request.params.name, request.body.requestsPerSecond, request.body.burst),
  );
  app.delete(
    "/v1/auth/roles/:name",
    { schema: { summary: "Remove a role no token or certificate name holds", params: roleName } },
    async (request) => auth.deleteRole(request.params.name),
  );
  const certName = Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }) });
  app.get(
    "/v1/auth/certs",
    { schema: { summary: "List client certificate names bound to roles" } },
    async () => auth.listCertificates(),
  );
  app.put(
    "/v1/auth/certs/:name",
    {
      schema: {
        summary: "Bind a client certificate's name (subject CN) to a role",
        params: certName,
        body: CertBindBody,
      },
    },
    async (request) => auth.bindCertificate(request.params.name, request.body.role),
  );
  app.delete(
    "/v1/auth/certs/:name",
    { schema: { summary: "Unbind a client certificate name", params: certName } },
    async (request) => auth.unbindCertificate(request.params.name),
  );
}
